import { expect, test, type Browser, type BrowserContext, type Page } from '@playwright/test'
import { disposeDemos, startDemo, type DemoProcess } from './helpers/demo-process.js'
import { RECONNECT, httpSession, recordStatuses, statusTrail, whoami } from './helpers/demo-page.js'
import { startDelayProxy, type DelayProxy } from './helpers/delay-proxy.js'
import { startPassportApp, type PassportApp, type PassportView } from './helpers/passport-app.js'
import { registerWithToken } from './helpers/raw-register.js'
import { storedToken } from './helpers/recorded-tab.js'

// Sign-in and sign-out as users do them, through a network that delays every HTTP response by
// 0–250 ms while WebSocket frames pass at once: the browser stores a login's cookie some time
// after the server sent it (and after ss:rejoin reached the tabs). Every sign-in must land,
// every tab must follow it, none may end; a sign-out must end every tab and retire the token.
//
// SIGN_IN_RUNS sets the sign-ins per loop (100 for the full check; CI runs fewer).
const RUNS = Number(process.env.SIGN_IN_RUNS ?? 5)

let proxy: DelayProxy | undefined
let passport: PassportApp | undefined
let demo: DemoProcess | undefined
const contexts: BrowserContext[] = []

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
  await Promise.all(contexts.splice(0).map((context) => context.close()))
  await proxy?.close()
  await passport?.close()
  proxy = passport = demo = undefined
  await disposeDemos()
})

/** What went wrong in the pages (script errors, failed requests), for the failure message. */
const troubles: string[] = []

async function newContext(browser: Browser): Promise<BrowserContext> {
  const context = await browser.newContext()
  contexts.push(context)
  troubles.length = 0
  context.on('page', (page) => {
    page.on('pageerror', (err) => troubles.push(`pageerror: ${err.message}`))
    page.on('requestfailed', (request) => troubles.push(`requestfailed: ${request.url()} ${request.failure()?.errorText ?? ''}`))
  })
  return context
}

async function closeContext(context: BrowserContext): Promise<void> {
  contexts.splice(contexts.indexOf(context), 1)
  await context.close()
}

type PassportWindow = Window & { client?: { status: string; call(method: string): Promise<unknown> }; trail: string[]; ended: string[] }

const passportWhoami = (page: Page) => page.evaluate(() => (window as unknown as PassportWindow).client!.call('whoami') as Promise<PassportView>)
/** The page's client status (undefined until its script has run). */
const passportStatus = (page: Page) => page.evaluate(() => (window as unknown as PassportWindow).client?.status)
const passportTrail = (page: Page) => page.evaluate(() => (window as unknown as PassportWindow).trail ?? [])
const passportEnded = (page: Page) => page.evaluate(() => (window as unknown as PassportWindow).ended)
/** GET /me as the page's own fetch: the session its cookie names for plain HTTP. */
const passportMe = (page: Page) => page.evaluate(async () => (await (await fetch('/me')).json()) as PassportView)

async function passportReady(page: Page): Promise<void> {
  try {
    await expect.poll(() => passportStatus(page), RECONNECT).toBe('ready')
  } catch (err) {
    throw new Error(`${(err as Error).message}\npage troubles: ${troubles.join('\n') || 'none'}\ntrail: ${await passportTrail(page).catch(() => [])}`)
  }
}

async function passportSignIn(page: Page, name: string): Promise<void> {
  await page.locator('#username').fill(name)
  await page.locator('#signin-submit').click()
  await expect(page.locator('#user')).toHaveText(name, RECONNECT)
}

test.describe('passport-local behind a slow network', () => {
  test.beforeEach(async () => {
    passport = await startPassportApp()
    proxy = await startDelayProxy(passport.port)
  })

  test('should land every sign-in made right after the page loads, in the socket and in plain HTTP', async ({ browser }) => {
    test.setTimeout(30_000 + RUNS * 8_000)
    for (let i = 0; i < RUNS; i++) {
      const context = await newContext(browser)
      const page = await context.newPage()
      await page.goto(proxy!.url)
      // No wait for the socket: the form goes while its first handshake is on the way.
      await passportSignIn(page, `user${i}`)
      await passportReady(page)
      const socket = await passportWhoami(page)
      expect(socket.user, `sign-in ${i}`).toBe(`user${i}`)
      expect(await passportMe(page), `sign-in ${i}`).toEqual(socket)
      expect(await passportEnded(page)).toEqual([])
      await closeContext(context)
    }
  })

  test('should take both open tabs into the signed-in session on every sign-in, none ended or offline', async ({ browser }) => {
    test.setTimeout(30_000 + RUNS * 10_000)
    for (let i = 0; i < RUNS; i++) {
      const context = await newContext(browser)
      const first = await context.newPage()
      await first.goto(proxy!.url)
      await passportReady(first)
      const second = await context.newPage()
      await second.goto(proxy!.url)
      await passportReady(second)
      await passportSignIn(first, `user${i}`)
      // The other tab follows by itself: rejoining, then ready in the new session.
      await expect.poll(async () => (await passportWhoami(second)).user, RECONNECT).toBe(`user${i}`)
      await passportReady(second)
      const view = await passportWhoami(second)
      expect(await passportMe(second), `sign-in ${i}`).toEqual(view)
      // The tab that signed in is a new page load (the form's redirect).
      await passportReady(first)
      expect((await passportWhoami(first)).sessionId).toBe(view.sessionId)
      const trail = await passportTrail(second)
      expect(trail, `sign-in ${i}`).not.toContain('offline')
      expect(trail, `sign-in ${i}`).not.toContain('ended')
      expect(await passportEnded(second)).toEqual([])
      await closeContext(context)
    }
  })

  test('should end every tab on passport logout and refuse the pre-logout token', async ({ browser }) => {
    const context = await newContext(browser)
    const first = await context.newPage()
    await first.goto(proxy!.url)
    await passportReady(first)
    await passportSignIn(first, 'ada')
    await passportReady(first)
    const second = await context.newPage()
    await second.goto(proxy!.url)
    await passportReady(second)
    expect((await passportWhoami(second)).user).toBe('ada')
    const token = await storedToken(second)
    expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/)

    await first.locator('#signout-submit').click()
    await expect(first.locator('#user')).toHaveText('', RECONNECT)
    await expect.poll(() => passportEnded(second), RECONNECT).toEqual(['logout'])
    expect(await passportStatus(second)).toBe('ended')
    // The old token opens nothing of the signed-out session (nor of anyone's).
    expect(await registerWithToken(passport!.url, token)).toMatchObject({ registered: { restored: false, reason: 'revoked-token', newSession: true } })
  })

  test('should store the provisional cookie a WebSocket 101 sets, in Chromium', async ({ browser }) => {
    const context = await newContext(browser)
    const page = await context.newPage()
    const polls: string[] = []
    page.on('request', (request) => {
      if (request.url().includes('transport=polling')) polls.push(request.url())
    })
    // Straight to the app: the page and the bundle set no cookie; the socket is WebSocket-only.
    await page.goto(`${passport!.url}/?ws=1`)
    await passportReady(page)
    expect(polls).toEqual([])
    const cookies = await context.cookies()
    expect(cookies.map((cookie) => cookie.name)).toEqual(['connect.sid.ss'])
    // It names the socket's session, for plain HTTP too.
    expect((await passportMe(page)).sessionId).toBe((await passportWhoami(page)).sessionId)
  })
})

test.describe('the demo behind a slow network', () => {
  test.beforeEach(async () => {
    demo = await startDemo()
    proxy = await startDelayProxy(demo.port)
  })

  test('should land every sign-in made right after the page loads', async ({ browser }) => {
    test.setTimeout(30_000 + RUNS * 8_000)
    for (let i = 0; i < RUNS; i++) {
      const context = await newContext(browser)
      const page = await context.newPage()
      await page.goto(proxy!.url)
      await page.getByTestId('signin-name').fill(`User${i}`)
      await page.getByTestId('signin-submit').click()
      await expect(page.getByTestId('user-name'), `sign-in ${i}`).toHaveText(`User${i}`, RECONNECT)
      await expect(page.getByTestId('status')).toHaveText('ready', RECONNECT)
      const socket = await whoami(page)
      expect(await httpSession(page), `sign-in ${i}`).toMatchObject({ sessionId: socket.sessionId, userId: `user${i}` })
      await closeContext(context)
    }
  })

  test('should take the other open tab into the signed-in session on every sign-in, never offline or ended', async ({ browser }) => {
    test.setTimeout(30_000 + RUNS * 10_000)
    for (let i = 0; i < RUNS; i++) {
      const context = await newContext(browser)
      const first = await context.newPage()
      await first.goto(proxy!.url)
      await expect(first.getByTestId('status')).toHaveText('ready', RECONNECT)
      const second = await context.newPage()
      await second.goto(proxy!.url)
      await expect(second.getByTestId('status')).toHaveText('ready', RECONNECT)
      await recordStatuses(second)
      await first.getByTestId('signin-name').fill(`User${i}`)
      await first.getByTestId('signin-submit').click()
      await expect(second.getByTestId('user-name'), `sign-in ${i}`).toHaveText(`User${i}`, RECONNECT)
      await expect(second.getByTestId('status')).toHaveText('ready', RECONNECT)
      const view = await whoami(second)
      expect(await httpSession(second), `sign-in ${i}`).toMatchObject({ sessionId: view.sessionId, userId: `user${i}` })
      await expect(first.getByTestId('user-name')).toHaveText(`User${i}`, RECONNECT)
      expect((await whoami(first)).sessionId).toBe(view.sessionId)
      const trail = await statusTrail(second)
      expect(trail, `sign-in ${i}`).not.toContain('offline')
      expect(trail, `sign-in ${i}`).not.toContain('ended')
      await closeContext(context)
    }
  })
})
