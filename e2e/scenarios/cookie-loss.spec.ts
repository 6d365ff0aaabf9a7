import { disposeDemos, startDemo, type DemoProcess } from '../helpers/demo-process.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'
import { COOKIE_NAME, PROVISIONAL_COOKIE, click, httpSession, openDemoTab, recordStatuses, signIn, statusTrail, textOf, waitText, whoami } from '../engines/demo-tab.js'
import type { EngineContext, EnginePage } from '../engines/engine-test.js'
import { expect, test } from '../engines/engine-test.js'

// The session cookie expires or is deleted while the page stays open: the tab keeps its session
// through its link token, and plain HTTP gets the cookie back, for the same session, in every
// engine: on the next reconnect, or at once with restoreCookie() while connected.

let demo: DemoProcess | undefined
let proxy: TcpProxy | undefined

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
  await proxy?.close()
  proxy = undefined
  demo = undefined
  await disposeDemos()
})

const socketId = (page: EnginePage) => page.evaluate(() => (window as unknown as { client: { socket: { id?: string } } }).client.socket.id ?? null)

/** A signed-in tab with one call counted, loaded through a TCP proxy the test can cut. */
async function signedInThroughProxy(profile: EngineContext): Promise<EnginePage> {
  demo = await startDemo()
  proxy = await startTcpProxy(demo.port)
  const page = await openDemoTab(profile, proxy.url)
  await signIn(page, 'Ada')
  await click(page, 'counter-rpc')
  await waitText(page, 'counter', '1')
  return page
}

/** The network goes away and comes back while the cookie is gone; `clicks` calls are made meanwhile. */
async function reconnectThroughNetworkLoss(page: EnginePage, clicks: number): Promise<void> {
  proxy!.cut()
  await waitText(page, 'status', 'offline')
  const shown = await textOf(page, 'counter')
  for (let i = 0; i < clicks; i++) await click(page, 'counter-rpc')
  // Queued, not lost and not applied yet.
  expect(await textOf(page, 'counter')).toBe(shown)
  proxy!.restore()
  await waitText(page, 'status', 'ready')
}

for (const loss of ['expired in the browser', 'deleted'] as const) {
  test(`should restore the same session through the token on reconnect after the cookie was ${loss}`, async ({ profile }) => {
    test.setTimeout(60_000)
    const page = await signedInThroughProxy(profile)
    const before = await whoami(page)
    expect((await httpSession(page)).sessionId).toBe(before.sessionId)

    if (loss === 'deleted') await profile.clearCookies(proxy!.url)
    // The browser's own clock drops it: the cookie is rewritten to expire 1 s from now.
    else await profile.expireCookie(proxy!.url, COOKIE_NAME, 1_000)
    await expect.poll(async () => (await httpSession(page)).sessionId, { timeout: 10_000 }).toBeNull()
    expect(await profile.cookies(proxy!.url)).toEqual([])
    // The socket still holds the session.
    expect(await whoami(page)).toEqual(before)

    await reconnectThroughNetworkLoss(page, 3)
    await waitText(page, 'last-event', 'restored after cookie loss')
    await waitText(page, 'user-name', 'Ada')
    await waitText(page, 'counter', '4')
    expect(await whoami(page)).toEqual(before)
    // A cookie is back, for the same session: the SDK's provisional one (it never sets the
    // session cookie itself). Plain HTTP sees the session through it, every call counted once.
    expect((await profile.cookies(proxy!.url)).map((cookie) => cookie.name)).toEqual([PROVISIONAL_COOKIE])
    expect(await httpSession(page)).toEqual({ sessionId: before.sessionId, count: 4, userId: 'ada' })
    await click(page, 'counter-http')
    await waitText(page, 'counter', '5')
    expect(await httpSession(page)).toEqual({ sessionId: before.sessionId, count: 5, userId: 'ada' })
  })
}

for (const [name, path, userId] of [
  ['the React hook page', '/', 'ada'],
  ['the <script> page', '/plain.html', null],
] as const) {
  test(`should put a deleted cookie back with restoreCookie() while connected on ${name}, counting the HTTP call once`, async ({ profile }) => {
    demo = await startDemo()
    const page = await openDemoTab(profile, demo.url + path)
    if (userId) await signIn(page, 'Ada')
    await click(page, 'counter-http')
    await waitText(page, 'counter', '1')
    const before = await whoami(page)
    const socketBefore = await socketId(page)
    await recordStatuses(page)

    await profile.clearCookies(demo.url)
    expect((await httpSession(page)).sessionId).toBeNull()
    // POST /api/counter answers 401; the page calls restoreCookie() and retries once.
    await click(page, 'counter-http')

    await waitText(page, 'counter', '2')
    await waitText(page, 'last-event', 'restored after cookie loss')
    expect(await textOf(page, 'action-error')).toBeFalsy()
    // No reconnect: the same Engine.IO session, and the client never left ready.
    expect(await socketId(page)).toBe(socketBefore)
    expect(await statusTrail(page)).toEqual([])
    expect(await whoami(page)).toEqual(before)
    // The SDK's provisional cookie, never the session cookie itself.
    expect((await profile.cookies(demo.url)).map((cookie) => cookie.name)).toEqual([PROVISIONAL_COOKIE])
    expect(await httpSession(page)).toEqual({ sessionId: before.sessionId, count: 2, userId })
  })
}
