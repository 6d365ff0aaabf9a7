import { expect, test, type BrowserContext, type Page } from '@playwright/test'
import { disposeDemos, startDemo, type DemoProcess } from './helpers/demo-process.js'
import {
  RECONNECT,
  httpSession,
  incrementOverRpc,
  openTab,
  recordStatuses,
  sessionCookie,
  signIn,
  socketId,
  statusTrail,
  whoami,
} from './helpers/demo-page.js'
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js'

// The session cookie expires or is deleted while the page stays open; the tab keeps its
// session through its link token, and plain HTTP gets the cookie back, for the same session.

/** Cookie lifetime for the expiry test: the browser drops it this long after sign-in. */
const COOKIE_MAX_AGE_MS = 10_000

let demo: DemoProcess | undefined
let proxy: TcpProxy | undefined

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
  await proxy?.close()
  proxy = undefined
  demo = undefined
  await disposeDemos()
})

/** A signed-in tab, loaded through a TCP proxy the test can cut. */
async function signedInThroughProxy(context: BrowserContext, env: Record<string, string> = {}): Promise<Page> {
  demo = await startDemo({ env })
  proxy = await startTcpProxy(demo.port)
  const page = await openTab(context, proxy.url)
  await signIn(page, 'Ada')
  return page
}

/**
 * The network goes away and comes back while the cookie is gone; `clicks` calls are made
 * while the tab is offline. Resolves once the tab is ready again.
 */
async function reconnectThroughNetworkLoss(page: Page, clicks: number): Promise<void> {
  proxy!.cut()
  await expect(page.getByTestId('status')).toHaveText('offline', RECONNECT)
  const shown = await page.getByTestId('counter').textContent()
  for (let i = 0; i < clicks; i++) await page.getByTestId('counter-rpc').click()
  // Queued, not lost and not applied yet.
  await expect(page.getByTestId('counter')).toHaveText(shown!)
  proxy!.restore()
  await expect(page.getByTestId('status')).toHaveText('ready', RECONNECT)
}

test.describe('cookie expiry and deletion', () => {
  test('should restore the same session through the token after the cookie expired in the browser', async ({ context }) => {
    test.setTimeout(90_000)
    // The cookie and the stored session get the same lifetime, but every call resets the
    // stored one (touch interval 0) and nothing re-sends the cookie: socket activity keeps
    // the session alive on the server while the browser's cookie runs out.
    const page = await signedInThroughProxy(context, { SESSION_MAX_AGE_MS: String(COOKIE_MAX_AGE_MS), SESSION_TOUCH_INTERVAL_MS: '0' })
    const before = await whoami(page)
    expect((await httpSession(page)).sessionId).toBe(before.sessionId)

    // The user keeps working over the socket until the browser stops sending the cookie.
    let count = 0
    await expect
      .poll(
        async () => {
          await incrementOverRpc(page, ++count)
          return (await httpSession(page)).sessionId
        },
        { timeout: COOKIE_MAX_AGE_MS + 30_000, intervals: [500] },
      )
      .toBeNull()
    expect(await sessionCookie(context)).toBeUndefined()
    // The socket still holds the session: the server kept it alive.
    expect(await whoami(page)).toEqual(before)

    await reconnectThroughNetworkLoss(page, 2)
    count += 2

    await expect(page.getByTestId('last-event')).toHaveText('restored after cookie loss')
    await expect(page.getByTestId('user-name')).toHaveText('Ada')
    await expect(page.getByTestId('counter')).toHaveText(String(count))
    expect(await whoami(page)).toEqual(before)
    // The cookie is back, for the same session: plain HTTP sees it, with every call counted once.
    expect(await sessionCookie(context)).toBeDefined()
    expect(await httpSession(page)).toEqual({ sessionId: before.sessionId, count, userId: 'ada' })
  })

  test('should restore the same session through the token after the cookie was deleted', async ({ context }) => {
    test.setTimeout(60_000)
    const page = await signedInThroughProxy(context)
    await incrementOverRpc(page, 1)
    const before = await whoami(page)

    await context.clearCookies()
    expect((await httpSession(page)).sessionId).toBeNull()
    await reconnectThroughNetworkLoss(page, 3)

    await expect(page.getByTestId('last-event')).toHaveText('restored after cookie loss')
    await expect(page.getByTestId('user-name')).toHaveText('Ada')
    await expect(page.getByTestId('counter')).toHaveText('4')
    expect(await whoami(page)).toEqual(before)
    expect(await sessionCookie(context)).toBeDefined()
    expect(await httpSession(page)).toEqual({ sessionId: before.sessionId, count: 4, userId: 'ada' })

    // HTTP calls count in that session too.
    await page.getByTestId('counter-http').click()
    await expect(page.getByTestId('counter')).toHaveText('5')
    expect(await httpSession(page)).toEqual({ sessionId: before.sessionId, count: 5, userId: 'ada' })
  })

  test('should put a deleted cookie back with restoreCookie() while the socket stays connected, and count the HTTP call once', async ({ context }) => {
    demo = await startDemo()
    const page = await openTab(context, demo.url)
    await signIn(page, 'Ada')
    await page.getByTestId('counter-http').click()
    await expect(page.getByTestId('counter')).toHaveText('1')
    const before = await whoami(page)
    const socketBefore = await socketId(page)
    await recordStatuses(page)

    await context.clearCookies()
    expect((await httpSession(page)).sessionId).toBeNull()
    // POST /api/counter answers 401 NO_SESSION; the page calls restoreCookie() and retries once.
    await page.getByTestId('counter-http').click()

    await expect(page.getByTestId('counter')).toHaveText('2')
    await expect(page.getByTestId('last-event')).toHaveText('restored after cookie loss')
    await expect(page.getByTestId('action-error')).toHaveCount(0)
    await expect(page.getByTestId('user-name')).toHaveText('Ada')
    // No reconnect: the same Engine.IO session, and the client never left ready.
    expect(await socketId(page)).toBe(socketBefore)
    expect(await statusTrail(page)).toEqual([])
    expect(await whoami(page)).toEqual(before)
    expect(await sessionCookie(context)).toBeDefined()
    expect(await httpSession(page)).toEqual({ sessionId: before.sessionId, count: 2, userId: 'ada' })
  })

  test('should put a deleted cookie back with restoreCookie() on the plain <script> page too', async ({ context }) => {
    demo = await startDemo()
    const page = await openTab(context, `${demo.url}/plain.html`)
    await page.getByTestId('counter-http').click()
    await expect(page.getByTestId('counter')).toHaveText('1')
    const before = await whoami(page)
    const socketBefore = await socketId(page)
    await recordStatuses(page)

    await context.clearCookies()
    await page.getByTestId('counter-http').click()

    await expect(page.getByTestId('counter')).toHaveText('2')
    await expect(page.getByTestId('last-event')).toHaveText('restored after cookie loss')
    await expect(page.getByTestId('action-error')).toBeEmpty()
    expect(await socketId(page)).toBe(socketBefore)
    expect(await statusTrail(page)).toEqual([])
    expect(await whoami(page)).toEqual(before)
    expect(await httpSession(page)).toEqual({ sessionId: before.sessionId, count: 2, userId: null })
  })
})
