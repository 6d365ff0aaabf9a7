import { expect, test, type BrowserContext, type Page } from '@playwright/test'
import { unsign } from 'cookie-signature'
import { TEST_SECRETS, disposeDemos, startDemo, type DemoProcess } from './helpers/demo-process.js'
import { RECONNECT, cookieSessionId, httpSession, incrementOverRpc, openTab, sessionCookie, signIn, whoami, type Whoami } from './helpers/demo-page.js'

// A deploy changes the cookie secret. Users stay signed in, in the same session, and end up
// with a cookie signed with the new secret.

/** The secret the running demo signs with (the first of TEST_SECRETS). */
const OLD_SECRET = TEST_SECRETS.split(',')[0]!
const NEW_SECRET = 'e2e-secret-after-deploy'

let demo: DemoProcess | undefined

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
  demo = undefined
  await disposeDemos()
})

/** The secret that signed the browser's session cookie, checked with cookie-signature. */
async function cookieSignedWith(context: BrowserContext): Promise<{ old: boolean; new: boolean; sessionId: string }> {
  const cookie = await sessionCookie(context)
  if (!cookie) throw new Error('the browser has no session cookie')
  const value = decodeURIComponent(cookie.value).slice('s:'.length)
  return { old: unsign(value, OLD_SECRET) !== false, new: unsign(value, NEW_SECRET) !== false, sessionId: cookieSessionId(cookie.value) }
}

/** A signed-in tab with a counter at 1, and what the server knows of it. */
async function signedIn(context: BrowserContext): Promise<{ page: Page; before: Whoami }> {
  demo = await startDemo()
  const page = await openTab(context, demo.url)
  await signIn(page, 'Ada')
  await incrementOverRpc(page, 1)
  const before = await whoami(page)
  expect(await cookieSignedWith(context)).toEqual({ old: true, new: false, sessionId: before.sessionId })
  return { page, before }
}

/** Deploys: a clean stop (SIGTERM), then a start with `secrets`; one call is made while down. */
async function deploy(page: Page, secrets: string): Promise<void> {
  expect(await demo!.stop()).toEqual({ code: 0, signal: null })
  await expect(page.getByTestId('status')).toHaveText('offline', RECONNECT)
  await page.getByTestId('counter-rpc').click()
  await demo!.restart({ env: { SESSION_SECRETS: secrets } })
  await expect(page.getByTestId('status')).toHaveText('ready', RECONNECT)
}

test.describe('a deploy with a new cookie secret', () => {
  test('should keep the user signed in with the old secret still listed, and sign the next cookie with the new one', async ({ context }) => {
    test.setTimeout(60_000)
    const { page, before } = await signedIn(context)

    await deploy(page, `${NEW_SECRET},${OLD_SECRET}`)

    // The old cookie still verifies: the handshake names the session, nothing to restore.
    await expect(page.getByTestId('last-event')).toHaveText('reconnected after server restart')
    await expect(page.getByTestId('user-name')).toHaveText('Ada')
    await expect(page.getByTestId('counter')).toHaveText('2', RECONNECT)
    expect(await whoami(page)).toEqual(before)
    expect(await httpSession(page)).toEqual({ sessionId: before.sessionId, count: 2, userId: 'ada' })

    // The next response that writes the session re-signs the cookie with the new secret.
    await page.getByTestId('counter-http').click()
    await expect(page.getByTestId('counter')).toHaveText('3')
    expect(await cookieSignedWith(context)).toEqual({ old: false, new: true, sessionId: before.sessionId })
    expect(await httpSession(page)).toEqual({ sessionId: before.sessionId, count: 3, userId: 'ada' })
  })

  test('should keep the user signed in through the token when the old secret is gone, and restore a cookie signed with the new one', async ({ context }) => {
    test.setTimeout(60_000)
    const { page, before } = await signedIn(context)

    await deploy(page, NEW_SECRET)

    // The handshake's cookie no longer verifies; the token brings the tab back into its
    // session and the SDK restores the cookie, signed with the new secret.
    await expect(page.getByTestId('last-event')).toHaveText('restored after cookie loss')
    await expect(page.getByTestId('user-name')).toHaveText('Ada')
    await expect(page.getByTestId('counter')).toHaveText('2', RECONNECT)
    expect(await whoami(page)).toEqual(before)
    expect(await cookieSignedWith(context)).toEqual({ old: false, new: true, sessionId: before.sessionId })
    expect(await httpSession(page)).toEqual({ sessionId: before.sessionId, count: 2, userId: 'ada' })

    await page.getByTestId('counter-http').click()
    await expect(page.getByTestId('counter')).toHaveText('3')
    await expect(page.getByTestId('action-error')).toHaveCount(0)
    expect(await httpSession(page)).toEqual({ sessionId: before.sessionId, count: 3, userId: 'ada' })

    // A reload is a fresh page load on the new cookie: still signed in, same session.
    await page.reload()
    await expect(page.getByTestId('status')).toHaveText('ready', RECONNECT)
    await expect(page.getByTestId('user-name')).toHaveText('Ada')
    expect((await whoami(page)).sessionId).toBe(before.sessionId)
  })
})
