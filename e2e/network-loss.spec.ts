import { expect, test, type Page } from '@playwright/test'
import { disposeDemos, startDemo, type DemoProcess } from './helpers/demo-process.js'
import { BACK_TIMEOUT, cookieSession, counterOf, openRecordedTab, serverView, type Tab } from './helpers/recorded-tab.js'
import type { SocketTraffic } from './helpers/socket-traffic.js'
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js'

// Network loss. The page is loaded through a TCP proxy, so its socket goes
// through it too; the proxy cuts (every connection destroyed, new ones refused), drops
// silently (connections open, no byte passes: only the heartbeat notices) and restores.
// Calls made meanwhile wait in the client and run once each, in order, after the tab is back.
// The plain cut runs in every engine (scenarios/network-loss.spec.ts); here, what Chromium's
// own page API can show: each call on the wire, a silent drop, and setOffline.

let demo: DemoProcess | undefined
let proxy: TcpProxy | undefined

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
  await proxy?.close()
  proxy = undefined
  demo = undefined
  await disposeDemos()
})

/** Clicks "+1 over the socket" `times` times; each click is one `counter.increment` call. */
async function clickRpc(page: Page, times: number): Promise<void> {
  for (let i = 0; i < times; i++) await page.getByTestId('counter-rpc').click()
}

/**
 * Every `counter.increment` call of the page: how often it went on the wire, and the counts its
 * answers carried (an answer for each send that reached the server and came back).
 */
function increments(traffic: SocketTraffic): Array<{ sends: number; counts: unknown[] }> {
  return traffic.calls('counter.increment').map((call) => ({
    sends: call.sends,
    counts: call.replies.map((reply) => (reply.ok ? (reply.r as { count: number }).count : reply.e?.code)),
  }))
}

/** `[{ sends, counts: [from + 1] }, { sends, counts: [from + 2] }, …]`: run once each, in the order sent. */
function ranInOrder(from: number, n: number, sends: number) {
  return Array.from({ length: n }, (_, i) => ({ sends, counts: [from + i + 1] }))
}

/** Neither `ended` nor `closed` ever showed: the tab never gave up its session. */
function expectNeverEnded(tab: Tab): void {
  expect(tab.statuses.history()).not.toContain('ended')
  expect(tab.statuses.history()).not.toContain('closed')
}

test('should notice a silent drop by the heartbeat and come back into the same session, running calls sent into it once', async ({ context }) => {
  test.setTimeout(90_000)
  // A short heartbeat: the drop is noticed after about interval + timeout (3 s), not 45 s.
  demo = await startDemo({ env: { SS_PING_INTERVAL_MS: '1000', SS_PING_TIMEOUT_MS: '2000' } })
  proxy = await startTcpProxy(demo.port)
  const tab = await openRecordedTab(context, proxy.url)
  const { page, statuses, traffic } = tab
  const before = await serverView(page)
  const start = await counterOf(page)

  const from = statuses.history().length
  proxy.drop()
  // The page still believes it is connected: these calls are sent into the void.
  await clickRpc(page, 2)
  await statuses.reached('offline', { from })
  // Restored as soon as the page says offline, before its first retry (250–500 ms later) could
  // open a connection into the drop: that one would wait out Socket.IO's 20 s connect timeout.
  proxy.restore()

  await expect(page.getByTestId('status')).toHaveText('ready', { timeout: BACK_TIMEOUT })
  await expect(page.getByTestId('counter')).toHaveText(String(start + 2), { timeout: BACK_TIMEOUT })
  await expect(page.getByTestId('last-event')).toHaveText('reconnected after network loss')
  expect(await serverView(page)).toEqual(before)
  // Each call went out twice (lost in the drop, then again after register) and ran once, in order.
  await expect.poll(() => increments(traffic), { timeout: BACK_TIMEOUT }).toEqual(ranInOrder(start, 2, 2))
  await expect.poll(() => traffic.registered().length).toBe(2)
  expect(traffic.registered()[1]).toMatchObject({ restored: true, reason: null })
  expectNeverEnded(tab)
  expect(await cookieSession(page, demo.url)).toMatchObject({ sessionId: before.sessionId, count: start + 2 })
})

test('should go offline with context.setOffline and come back into the same session, running queued calls once', async ({ context }) => {
  test.setTimeout(60_000)
  demo = await startDemo()
  // A 127.0.0.1 page: Chromium fires the window `offline` event socket.io-client listens to
  // only when the page host is not localhost.
  const tab = await openRecordedTab(context, demo.url)
  const { page, statuses, traffic } = tab
  const before = await serverView(page)
  const start = await counterOf(page)

  const from = statuses.history().length
  await context.setOffline(true)
  await statuses.reached('offline', { from })
  await expect(page.getByTestId('last-event')).toHaveText(/^(network lost: the browser is offline|connection lost, retrying in)/)
  await clickRpc(page, 2)
  expect(traffic.calls('counter.increment')).toHaveLength(0)

  await context.setOffline(false)
  await expect(page.getByTestId('status')).toHaveText('ready', { timeout: BACK_TIMEOUT })
  await expect(page.getByTestId('counter')).toHaveText(String(start + 2), { timeout: BACK_TIMEOUT })
  await expect(page.getByTestId('last-event')).toHaveText('reconnected after network loss')
  expect(await serverView(page)).toEqual(before)
  await expect.poll(() => increments(traffic), { timeout: BACK_TIMEOUT }).toEqual(ranInOrder(start, 2, 1))
  expectNeverEnded(tab)
  expect(await cookieSession(page, demo.url)).toMatchObject({ sessionId: before.sessionId, count: start + 2 })
})
