import { expect, test, type Page } from '@playwright/test'
import { startBalancer, type Balancer } from './helpers/balancer.js'
import { disposeDemos, startDemo, type DemoProcess } from './helpers/demo-process.js'
import { registerWithToken } from './helpers/raw-register.js'
import {
  BACK_TIMEOUT,
  cookieSession,
  expectEndedForGood,
  expectListedTabs,
  openRecordedTab,
  serverView,
  signIn,
  storedToken,
} from './helpers/recorded-tab.js'
import { startRedis, type RedisServer } from './helpers/redis-server.js'
import { recordSocketTraffic, type SocketTraffic } from './helpers/socket-traffic.js'
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js'

// Two demo processes on one Redis (sessions, links, Socket.IO adapter) behind one address. A
// tab whose node dies comes back on the other one, in the same session with the same tab id;
// sign-out handled by one node ends the tabs the other holds.

let redis: RedisServer | undefined
let proxy: TcpProxy | undefined
let balancer: Balancer | undefined
let nodes: DemoProcess[] = []

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus) {
    for (const [i, node] of nodes.entries()) await testInfo.attach(`node-${'ab'[i]}-output`, { body: node.output(), contentType: 'text/plain' })
  }
  await proxy?.close()
  await balancer?.close()
  proxy = undefined
  balancer = undefined
  nodes = []
  await disposeDemos()
  await redis?.stop()
  redis = undefined
})

/** Redis, and two demo nodes on it (same secrets, same key prefixes). */
async function startNodes(): Promise<[DemoProcess, DemoProcess]> {
  redis = await startRedis()
  const env = { REDIS_URL: redis.url }
  nodes = await Promise.all([startDemo({ env }), startDemo({ env })])
  return nodes as [DemoProcess, DemoProcess]
}

/** The counts the answers to the page's `counter.increment` calls carried, per call, and how often each was sent. */
function increments(traffic: SocketTraffic) {
  return traffic.calls('counter.increment').map((call) => ({ sends: call.sends, counts: call.replies.map((reply) => (reply.ok ? (reply.r as { count: number }).count : reply.e?.code)) }))
}

/** The Engine.IO id of the page's socket (SS_TEST `window.client`): a new one on every reconnect. */
async function socketIdOf(page: Page): Promise<string> {
  const id = await page.evaluate(() => (window as unknown as { client?: { socket: { id?: string } } }).client?.socket.id)
  expect(id).toBeTruthy()
  return id!
}

async function clickRpc(page: Page, times: number): Promise<void> {
  for (let i = 0; i < times; i++) await page.getByTestId('counter-rpc').click()
}

test('should bring a tab back on the other node when its node dies: same session, same tab id, queued calls run once', async ({ context }) => {
  test.setTimeout(90_000)
  const [a, b] = await startNodes()
  proxy = await startTcpProxy(a.port)
  const tab = await openRecordedTab(context, proxy.url)
  await signIn(tab.page, 'Ada')
  await clickRpc(tab.page, 1)
  await expect(tab.page.getByTestId('counter')).toHaveText('1')
  const before = await serverView(tab.page)

  // Node A crashes; until the balancer notices, connections to it are refused.
  const from = tab.statuses.history().length
  await a.kill()
  await tab.statuses.reached('offline', { from })
  await clickRpc(tab.page, 2)
  expect(tab.traffic.calls('counter.increment')).toHaveLength(1)
  proxy.retarget(b.port)

  await expect(tab.page.getByTestId('status')).toHaveText('ready', { timeout: BACK_TIMEOUT })
  await expect(tab.page.getByTestId('counter')).toHaveText('3', { timeout: BACK_TIMEOUT })
  // Node B holds it now, in the same session, as the same tab, and lists only live tabs.
  expect(await serverView(tab.page)).toEqual(before)
  await expect(tab.page.getByTestId('user-name')).toHaveText('Ada')
  await expectListedTabs(tab.page, [before.tabId])
  await expect.poll(() => tab.traffic.registered().at(-1)).toMatchObject({ restored: true, reason: null })
  // Each call ran once, in order: the one from before the crash and the two queued during it.
  await expect.poll(() => increments(tab.traffic), { timeout: BACK_TIMEOUT }).toEqual([1, 2, 3].map((count) => ({ sends: 1, counts: [count] })))
  expect(tab.statuses.history()).not.toContain('ended')
  expect(await cookieSession(tab.page, b.url)).toMatchObject({ sessionId: before.sessionId, userId: 'ada', count: 3 })
})

test('should end the tabs one node holds when the other node handles the sign-out', async ({ context }) => {
  test.setTimeout(90_000)
  const [a, b] = await startNodes()
  proxy = await startTcpProxy(a.port)
  const onA = await openRecordedTab(context, proxy.url)
  await signIn(onA.page, 'Ada')
  // Every connection so far went to A; this page's socket keeps its Engine.IO id while it stays.
  const socketOfA = await socketIdOf(onA.page)
  // New connections go to B from now on: this page, its socket and its requests.
  proxy.retarget(b.port)
  const onB = await openRecordedTab(context, proxy.url)
  const [viewA, viewB] = [await serverView(onA.page), await serverView(onB.page)]
  expect(viewB.sessionId).toBe(viewA.sessionId)
  expect(viewB.tabId).not.toBe(viewA.tabId)
  const ids = [viewA.tabId, viewB.tabId]
  // Tab lists and emits cross nodes: each page lists both tabs, and a call on B shows on A.
  for (const tab of [onA, onB]) await expectListedTabs(tab.page, ids)
  await clickRpc(onB.page, 1)
  await expect(onA.page.getByTestId('counter')).toHaveText('1')
  // A's page still has the connection it made to A.
  expect(await socketIdOf(onA.page)).toBe(socketOfA)
  const token = await storedToken(onA.page)
  const attemptsOfA = onA.traffic.attempts()

  await onB.page.getByTestId('signout').click()

  await Promise.all([expectEndedForGood(onB, 'ended: you signed out'), expectEndedForGood(onA, 'ended: signed out in another tab')])
  // It was ended over that connection, by node A, never having opened another.
  expect(onA.traffic.attempts()).toBe(attemptsOfA)
  expect(await cookieSession(onA.page, a.url)).toMatchObject({ sessionId: null })
  // Both nodes refuse the old token.
  for (const node of [a, b]) expect(await registerWithToken(node.url, token)).toMatchObject({ registered: { restored: false, reason: 'revoked-token' } })
})

test.describe('behind a balancer that is not sticky', () => {
  test('should keep a tab in its session on WebSocket only while its reconnects alternate nodes', async ({ context }) => {
    // A page that ignored the meta tag would open with Socket.IO's default long-polling: every
    // poll landing on the other node is refused (400 "Session ID unknown"), and the tab never
    // gets ready.
    test.setTimeout(90_000)
    const [a, b] = await startNodes()
    balancer = await startBalancer([a.port, b.port])
    const page = await context.newPage()
    const traffic = recordSocketTraffic(page)
    await page.goto(balancer.url)
    // Redis mode tells the page to use WebSocket only...
    await expect(page.locator('meta[name="session-socket-transports"]')).toHaveAttribute('content', 'websocket')
    // ...and the page opens no long-polling request.
    await expect.poll(() => traffic.attempts()).toBeGreaterThan(0)
    expect(traffic.polls()).toBe(0)
    await expect(page.getByTestId('status')).toHaveText('ready', { timeout: BACK_TIMEOUT })
    await signIn(page, 'Ada')
    const before = await serverView(page)

    for (let round = 1; round <= 3; round++) {
      balancer.cut()
      await clickRpc(page, 1)
      await expect(page.getByTestId('status')).toHaveText('ready', { timeout: BACK_TIMEOUT })
      await expect(page.getByTestId('counter')).toHaveText(String(round), { timeout: BACK_TIMEOUT })
      expect(await serverView(page)).toEqual(before)
    }
    expect(traffic.polls()).toBe(0)
    expect(balancer.connections().every((n) => n > 0)).toBe(true)
  })
})
