import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest'
import { memoryTabIdStorage, type SessionSocket, type Status } from '@session-socket/browser'
import { hashSecret, SessionSocketError, type SessionSocketServer, type TabInfo } from '@session-socket/node'
import { RedisLinkStore } from '@session-socket/node/redis'
import { EVENTS, type CallReply } from '@session-socket/protocol'
import { createClient } from 'redis'
import { startCluster, type Cluster, type ClusterNode, type ClusterOptions, type RedisTarget } from './helpers/cluster.js'
import { startCookieJarProxy, type CookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, nextStatus, waitForStatus } from '@session-socket/test-helpers/clients'
import { rawRegister } from './helpers/raw-client.js'
import { startRedis, type RedisServer } from '@session-socket/test-helpers/redis-server'
import { startRedisCluster, type RedisCluster } from '@session-socket/test-helpers/redis-cluster'

let cluster: Cluster | undefined
const proxies: CookieJarProxy[] = []
const cleanups: Array<() => Promise<void> | void> = []

/* One redis-server and one Redis Cluster for the whole file, each started when first needed. */
let redisServer: Promise<RedisServer> | undefined
let redisCluster: Promise<RedisCluster> | undefined
const oneRedis = () => (redisServer ??= startRedis())
const threeShards = () => (redisCluster ??= startRedisCluster())

afterAll(async () => {
  const started = await Promise.allSettled([redisServer, redisCluster])
  for (const result of started) if (result.status === 'fulfilled') await result.value?.stop()
})

afterEach(async () => {
  closeAllClients()
  for (const proxy of proxies.splice(0)) await proxy.close()
  await cluster?.close()
  cluster = undefined
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A browser's cookie jar pointed at `node`; `retarget` moves it to another node. */
async function jarTo(node: ClusterNode): Promise<CookieJarProxy> {
  const proxy = await startCookieJarProxy(node.server.port)
  proxies.push(proxy)
  return proxy
}

async function whoami(tab: SessionSocket): Promise<{ sessionId: string; tabId: string }> {
  return (await tab.call('whoami')) as { sessionId: string; tabId: string }
}

/** Resolves with the reason of the tab's `ended` event; rejects after `timeout` ms. */
function ended(tab: SessionSocket, timeout = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tab ${tab.tabId} did not end within ${timeout} ms (status ${tab.status})`)), timeout)
    tab.on('ended', (reason) => {
      clearTimeout(timer)
      resolve(reason)
    })
  })
}

/** Resolves when the tab receives app event `name` with payload `value`. */
function received(tab: SessionSocket, name: string, value: unknown, timeout = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`tab ${tab.tabId} got no '${name}' ${JSON.stringify(value)} within ${timeout} ms`))
    }, timeout)
    const off = tab.on(name, (payload: unknown) => {
      if (payload !== value) return
      clearTimeout(timer)
      off()
      resolve()
    })
  })
}

/** The ids of the `ss:call` packets the tab puts on the wire for `method` from now on, resends included. */
function callSends(tab: SessionSocket, method: string): string[] {
  const ids: string[] = []
  tab.socket.onAnyOutgoing((event: string, payload: { id: string; m: string }) => {
    if (event === EVENTS.CALL && payload.m === method) ids.push(payload.id)
  })
  return ids
}

/** Every status the tab goes through from now on. */
function statusLog(tab: SessionSocket): Status[] {
  const log: Status[] = []
  tab.on('status', (state) => log.push(state.status))
  return log
}

async function connectRedis(url: string) {
  const client = createClient({ url })
  client.on('error', () => {})
  await client.connect()
  return client
}

/**
 * Starts two nodes on `redis` and opens one browser's first tab on node A and its second on
 * node B (the proxy in front points at B afterwards).
 */
async function tabOnEachNode(redis: string | RedisTarget, options?: ClusterOptions) {
  cluster = await startCluster(redis, options)
  const [a, b] = [cluster.node(0), cluster.node(1)]
  const proxy = await jarTo(a)
  const browser = makeBrowser(proxy.url)
  const onA = browser.open()
  await waitForStatus(onA)
  proxy.retarget(b.server.port)
  const onB = browser.open()
  await waitForStatus(onB)
  return { a, b, proxy, browser, onA, onB }
}

/** A method that records which node ran it, to count executions. */
function tally(runs: string[]) {
  return (ss: SessionSocketServer, _app: unknown, node: number) => {
    ss.method('tally', (params: { n: number }) => {
      runs.push(`${node}:${params.n}`)
      return { n: params.n, node }
    })
  }
}

function socketIds(node: ClusterNode): Set<string> {
  return new Set(node.server.io.of('/').sockets.keys())
}

function tabIds(tabs: TabInfo[]): string[] {
  return tabs.map((tab) => tab.tabId).sort()
}

/** Where the nodes of a test keep their state: both backends run the same tests. */
const BACKENDS = [
  { name: 'one Redis (redis-adapter)', target: async (): Promise<RedisTarget> => ({ kind: 'single', url: (await oneRedis()).url }) },
  {
    name: 'Redis Cluster, 3 masters and 3 replicas (sharded adapter)',
    target: async (): Promise<RedisTarget> => ({ kind: 'cluster', rootNodes: (await threeShards()).rootNodes }),
  },
]

describe.each(BACKENDS)('session-socket across nodes on $name, RedisLinkStore, connect-redis', (backend) => {
  let target: RedisTarget
  beforeAll(async () => {
    target = await backend.target()
  }, 60_000)

  it('should reach tabs held by another node with toSession and toTab, and list them with tabs()', async () => {
    const { a, b, proxy, browser, onA, onB: onB1 } = await tabOnEachNode(target)
    const onB2 = browser.open()
    await waitForStatus(onB2)
    const { sessionId } = await whoami(onA)
    expect((await whoami(onB1)).sessionId).toBe(sessionId)
    expect(socketIds(a).size).toBe(1)
    expect(socketIds(b).size).toBe(2)

    const tabs = await a.server.ss.tabs(sessionId)
    expect(tabIds(tabs)).toEqual([onA.tabId, onB1.tabId, onB2.tabId].sort())
    const heldByB = tabs.filter((tab) => socketIds(b).has(tab.socketId))
    expect(tabIds(heldByB)).toEqual([onB1.tabId, onB2.tabId].sort())
    expect(heldByB.every((tab) => typeof tab.since === 'number')).toBe(true)

    const got: string[] = []
    for (const [name, tab] of [['a', onA], ['b1', onB1], ['b2', onB2]] as const) tab.on('news', (text: string) => got.push(`${name}:${text}`))
    const allArrived = [onA, onB1, onB2].map((tab) => received(tab, 'news', 'all'))
    // Published in this order on one connection, so 'only-b1' reaches B before 'all' does.
    a.server.ss.toTab(onB1.tabId).emit('news', 'only-b1')
    a.server.ss.toSession(sessionId).emit('news', 'all')
    await Promise.all(allArrived)
    expect(got.sort()).toEqual(['a:all', 'b1:all', 'b1:only-b1', 'b2:all'])
  })

  it('should reach tabs held by another node with toUser, and with durable toSession, toTab and toUser', async () => {
    cluster = await startCluster(target, { ss: { identify: (session) => session.userId } })
    const [a, b] = [cluster.node(0), cluster.node(1)]
    // Bob signs in on a laptop (its tab on B) and a phone (its tab on A).
    const signIn = async (tabNode: ClusterNode) => {
      const proxy = await jarTo(a)
      expect((await fetch(`${proxy.url}/login?user=bob`, { method: 'POST' })).status).toBe(200)
      proxy.retarget(tabNode.server.port)
      const tab = makeBrowser(proxy.url).open()
      await waitForStatus(tab)
      return { tab, ...(await whoami(tab)) }
    }
    const laptop = await signIn(b)
    const phone = await signIn(a)
    expect(laptop.sessionId).not.toBe(phone.sessionId)

    const plain = [laptop, phone].map(({ tab }) => received(tab, 'news', 'to bob'))
    a.server.ss.toUser('bob').emit('news', 'to bob')
    await Promise.all(plain)

    // Durable: kept for each tab (any node's store) and delivered live to the node holding it.
    const bySession = received(laptop.tab, 'news', 'durable to the laptop session')
    expect(Object.keys((await a.server.ss.toSession(laptop.sessionId, { durable: true }).emit('news', 'durable to the laptop session')).seqs)).toEqual([laptop.tabId])
    await bySession
    const byTab = received(phone.tab, 'news', 'durable to the phone tab')
    await b.server.ss.toTab(phone.tabId, { durable: true }).emit('news', 'durable to the phone tab')
    await byTab
    const byUser = [laptop, phone].map(({ tab }) => received(tab, 'news', 'durable to bob'))
    const sent = await a.server.ss.toUser('bob', { durable: true }).emit('news', 'durable to bob')
    expect(Object.keys(sent.seqs).sort()).toEqual([laptop.tabId, phone.tabId].sort())
    await Promise.all(byUser)
  })

  it('should end the tabs held by another node with reason logout on HTTP logout, and refuse the revoked token on every node', async () => {
    const { a, b, proxy, browser, onA, onB } = await tabOnEachNode(target)
    const token = await browser.tokens.get()
    expect(token).toBeTypeOf('string')
    const { sessionId } = await whoami(onB)

    proxy.retarget(a.server.port)
    const endings = [ended(onA), ended(onB)]
    const left = [a, b].map((node) => new Promise((resolve) => node.server.ss.on('tab:close', resolve)))
    const response = await fetch(`${proxy.url}/logout`, { method: 'POST' })
    expect(response.status).toBe(204)
    expect(await Promise.all(endings)).toEqual(['logout', 'logout'])
    expect(onB.state).toEqual({ status: 'ended', reason: 'logout' })
    expect((await b.server.links.getLink(hashSecret(token!)))?.revokedAt).toBeTypeOf('number')
    await Promise.all(left)
    expect(await a.server.ss.tabs(sessionId)).toEqual([])

    for (const node of [a, b]) {
      const replay = await rawRegister(node.server.url, { token: token!, tabId: `replay-${node.index}` })
      try {
        expect(replay.reply).toMatchObject({ restored: false, reason: 'revoked-token', newSession: true })
      } finally {
        replay.close()
      }
    }
  })

  it('should end the tabs on every node with reason expired when the session expires in Redis', async () => {
    // connect-redis turns the cookie's maxAge into the key's TTL (whole seconds, rounded up).
    const { a, b, proxy, browser, onA, onB } = await tabOnEachNode(target, { session: { cookie: { maxAge: 1500 } }, ss: { sessionCheckInterval: 100 } })
    const token = (await browser.tokens.get())!
    const endings = [ended(onA, 6000), ended(onB, 6000)]
    expect(await Promise.all(endings)).toEqual(['expired', 'expired'])
    expect((await a.server.links.getLink(hashSecret(token)))?.revokedAt).toBeTypeOf('number')
  })

  it('should replace the socket on one node when the same tab registers on another', async () => {
    cluster = await startCluster(target)
    const [a, b] = [cluster.node(0), cluster.node(1)]
    const proxy = await jarTo(a)
    const browser = makeBrowser(proxy.url)
    const tabIdStorage = memoryTabIdStorage()
    const before = browser.open({ tabIdStorage })
    await waitForStatus(before)
    const { sessionId } = await whoami(before)
    const leftA = new Promise<string | undefined>((resolve) => a.server.ss.on('tab:close', (event) => resolve(event.reason)))

    // The reloaded page comes back through another node while the old socket still looks alive.
    proxy.retarget(b.server.port)
    const after = browser.open({ tabIdStorage })
    await waitForStatus(after)
    expect(after.tabId).toBe(before.tabId)
    await waitForStatus(before, 'closed')
    expect(before.state).toMatchObject({ status: 'closed', error: { code: 'CLOSED' } })
    await leftA
    expect(socketIds(a).size).toBe(0)

    const tabs = await a.server.ss.tabs(sessionId)
    expect(tabs).toHaveLength(1)
    expect(tabs[0]).toMatchObject({ tabId: after.tabId })
    expect(socketIds(b).has(tabs[0]!.socketId)).toBe(true)
    expect(after.status).toBe('ready')
  })

  it('should move a tab whose node crashed to another node, same session and tab id, and run its queued calls once', async () => {
    const runs: string[] = []
    cluster = await startCluster(target, { setup: tally(runs) })
    const [a, b] = [cluster.node(0), cluster.node(1)]
    const proxy = await jarTo(a)
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    const before = await whoami(tab)
    expect(await tab.call('tally', { n: 0 })).toEqual({ n: 0, node: 0 })

    const offline = waitForStatus(tab, 'offline')
    await a.crash()
    await offline
    const calls = [1, 2, 3, 4, 5].map((n) => tab.call('tally', { n }))
    proxy.retarget(b.server.port)
    expect(await waitForStatus(tab, 'ready')).toMatchObject({ restored: true, reason: null })
    expect(await Promise.all(calls)).toEqual([1, 2, 3, 4, 5].map((n) => ({ n, node: 1 })))
    // Once each. (On a cluster, calls sent together may start in another order: their claims
    // are answered by different shards.)
    expect(runs.sort()).toEqual(['0:0', '1:1', '1:2', '1:3', '1:4', '1:5'])
    expect(await whoami(tab)).toEqual(before)
    expect(tabIds(await b.server.ss.tabs(before.sessionId))).toEqual([before.tabId])
  })

  it('should answer a call whose node crashed after running it from the stored result, without running it again', async () => {
    const runs: string[] = []
    let crashAfterNextResult = false
    cluster = await startCluster(target, {
      setup: tally(runs),
      // Node 0 dies right after storing a result, before its reply leaves: the reply is lost.
      links: (client, prefix, node) =>
        node === 0
          ? new (class extends RedisLinkStore {
              override async finishCall(key: string, reply: CallReply, ttlMs: number, now: number): Promise<void> {
                await super.finishCall(key, reply, ttlMs, now)
                if (!crashAfterNextResult) return
                crashAfterNextResult = false
                void cluster!.node(0).crash()
              }
            })({ client, prefix })
          : new RedisLinkStore({ client, prefix }),
    })
    const [, b] = [cluster.node(0), cluster.node(1)]
    const proxy = await jarTo(cluster.node(0))
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    crashAfterNextResult = true
    const offline = waitForStatus(tab, 'offline')
    const call = tab.call('tally', { n: 1 })
    await offline
    proxy.retarget(b.server.port)
    await waitForStatus(tab, 'ready')
    expect(await call).toEqual({ n: 1, node: 0 })
    expect(runs).toEqual(['0:1'])
  })

  it('should end the tabs of a user held by another node with endUser', async () => {
    cluster = await startCluster(target, { ss: { identify: (session) => session.userId } })
    const [a, b] = [cluster.node(0), cluster.node(1)]
    const laptop = await jarTo(a)
    const phone = await jarTo(b)
    const tabs: SessionSocket[] = []
    for (const [proxy, tabNode] of [[laptop, b], [phone, a]] as const) {
      expect((await fetch(`${proxy.url}/login?user=bob`, { method: 'POST' })).status).toBe(200)
      proxy.retarget(tabNode.server.port)
      const tab = makeBrowser(proxy.url).open()
      await waitForStatus(tab)
      tabs.push(tab)
    }
    const stranger = makeBrowser((await jarTo(b)).url).open()
    await waitForStatus(stranger)
    expect(socketIds(b).size).toBe(2)

    const endings = tabs.map((tab) => ended(tab))
    await a.server.ss.endUser('bob')
    expect(await Promise.all(endings)).toEqual(['logout', 'logout'])
    for (const proxy of [laptop, phone]) {
      const who = (await (await fetch(`${proxy.url}/whoami`)).json()) as { userId: string | null }
      expect(who.userId).toBeNull()
    }
    expect(stranger.status).toBe('ready')
    await expect.poll(() => socketIds(b).size).toBe(1)
  })

  it('should sign out with endUser a browser of the user whose tab was on another node and is closed now', async () => {
    cluster = await startCluster(target, { ss: { identify: (session) => session.userId } })
    const [a, b] = [cluster.node(0), cluster.node(1)]
    const signIn = async (user: string, node: ClusterNode) => {
      const proxy = await jarTo(node)
      expect((await fetch(`${proxy.url}/login?user=${user}`, { method: 'POST' })).status).toBe(200)
      const browser = makeBrowser(proxy.url)
      const tab = browser.open()
      await waitForStatus(tab)
      return { proxy, tab, ...(await whoami(tab)), token: (await browser.tokens.get())! }
    }
    const laptop = await signIn('bob', b)
    const stranger = await signIn('alice', b)
    laptop.tab.close()
    stranger.tab.close()
    await expect.poll(() => socketIds(b).size).toBe(0)

    await a.server.ss.endUser('bob')
    const sessionStore = a.server.sessionStore
    const stored = (sid: string) => new Promise((resolve) => sessionStore.get(sid, (_err, data) => resolve(data ?? null)))
    expect(await stored(laptop.sessionId)).toBeNull()
    expect(await stored(stranger.sessionId)).toMatchObject({ userId: 'alice' })
    const cookie = (proxy: CookieJarProxy) => [...proxy.jar].map(([k, v]) => `${k}=${v}`).join('; ')
    const back = await rawRegister(b.server.url, { token: laptop.token, tabId: laptop.tabId }, { Cookie: cookie(laptop.proxy) })
    expect(back.reply).toMatchObject({ restored: false, reason: 'revoked-token', newSession: true })
    back.close()
    const strangerBack = await rawRegister(b.server.url, { token: stranger.token, tabId: stranger.tabId }, { Cookie: cookie(stranger.proxy) })
    expect(strangerBack.reply).toMatchObject({ restored: true, reason: null })
    strangerBack.close()
  })

})

describe('session-socket across nodes on one Redis: outages', () => {
  it('should refuse a register with a retryable STORE_UNAVAILABLE while another node does not answer, and let it in once that node is gone', async () => {
    const redis = await oneRedis()
    cluster = await startCluster(redis.url, { requestsTimeout: 300 })
    const a = cluster.node(0)
    // A frozen node: subscribed to the adapter's requests (so counted), never answering.
    const frozen = await connectRedis(redis.url)
    cleanups.push(() => {
      if (frozen.isOpen) frozen.destroy()
    })
    await frozen.subscribe(`${cluster.adapterKey}-request#/#`, () => {})
    const tab = makeBrowser(a.server.url).open()
    const log = statusLog(tab)
    const refused = await nextStatus(tab, (state) => state.status !== 'connecting' && state.status !== 'registering')
    expect(refused).toMatchObject({ status: 'offline', error: { code: 'STORE_UNAVAILABLE' } })
    frozen.destroy()
    expect(await waitForStatus(tab, 'ready')).toMatchObject({ status: 'ready' })
    expect(log).not.toContain('closed')
  })

  it('should survive a Redis outage: calls wait and run once, registers retry, tabs come back to their session with no link lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ss-cluster-aof-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const own = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] })
    cleanups.push(() => own.stop())
    const runs: string[] = []
    const { a, b, proxy, browser, onA, onB } = await tabOnEachNode(own.url, { setup: tally(runs) })
    const { sessionId } = await whoami(onA)
    const token = (await browser.tokens.get())!
    const committed = await a.server.links.getLink(hashSecret(token))
    expect(committed).toMatchObject({ sessionId })

    await own.stop()

    // A connected tab's call is refused by the server (STORE_UNAVAILABLE, retryable) and the
    // client keeps re-sending the same call id: the handler has not run, the tab stays ready.
    const earlySends = callSends(onA, 'tally')
    const early = onA.call('tally', { n: 1 })
    await vi.waitFor(() => expect(earlySends.length).toBeGreaterThanOrEqual(2), { timeout: 3000 })
    expect(new Set(earlySends).size).toBe(1)
    expect(runs).toEqual([])
    expect(onA.status).toBe('ready')

    // A tab opening now cannot register: a retryable connect_error, the tab keeps trying.
    const late = browser.open()
    const lateLog = statusLog(late)
    const openedAt = performance.now()
    const lateOffline = await nextStatus(late, (state) => state.status === 'offline')
    const registerRefusedMs = performance.now() - openedAt
    expect(lateOffline).toMatchObject({ status: 'offline', error: { code: 'STORE_UNAVAILABLE', retryAfter: 1000 } })

    // The connected tabs lose their connections too: they go offline, and calls made now wait.
    const aLog = statusLog(onA)
    const bLog = statusLog(onB)
    const dropped = [waitForStatus(onA, 'offline'), waitForStatus(onB, 'offline')]
    proxy.cut()
    await Promise.all(dropped)
    const queued = [onA.call('tally', { n: 2 }), onB.call('tally', { n: 3 })]
    // Each reconnect attempt through the proxy (now pointing at B) is refused the same way.
    await nextStatus(onA, (state) => state.status === 'offline' && state.error?.code === 'STORE_UNAVAILABLE')

    const restartAt = performance.now()
    const reconnected = Promise.all(
      cluster!.nodes.flatMap((node) => node.redisClients).map((client) => new Promise((resolve) => client.once('ready', resolve))),
    ).then(() => performance.now() - restartAt)
    await own.restart()
    const upAt = performance.now()
    const back = await Promise.all([late, onA, onB].map((tab) => waitForStatus(tab, 'ready', 8000).then((state) => ({ state, ms: performance.now() - upAt }))))
    for (const { state } of back) expect(state).toMatchObject({ restored: true, reason: null })
    for (const log of [lateLog, aLog, bLog]) {
      expect(log).not.toContain('ended')
      expect(log).not.toContain('closed')
    }
    expect(await Promise.all(queued)).toEqual([{ n: 2, node: 1 }, { n: 3, node: 1 }])
    // The call held during the outage ran once, after it.
    expect(await early).toEqual({ n: 1, node: 1 })
    expect(runs.sort()).toEqual(['1:1', '1:2', '1:3'])
    for (const tab of [late, onA, onB]) expect((await whoami(tab)).sessionId).toBe(sessionId)

    // No committed link lost: the token's record came back from the append-only file as it was.
    const record = await b.server.links.getLink(hashSecret(token))
    expect(record).toMatchObject({ sessionId, createdAt: committed!.createdAt, expiresAt: committed!.expiresAt })
    expect(record?.revokedAt).toBeUndefined()
    expect(await browser.tokens.get()).toBe(token)

    // Emits cross nodes again once the adapter has resubscribed: emit until one arrives.
    let delivered = false
    late.on('news', (text: string) => {
      if (text === 'back') delivered = true
    })
    await vi.waitFor(
      () => {
        if (!delivered) a.server.ss.toSession(sessionId).emit('news', 'back')
        expect(delivered).toBe(true)
      },
      { timeout: 8000, interval: 50 },
    )
    const adapterBackMs = performance.now() - upAt
    expect(tabIds(await a.server.ss.tabs(sessionId))).toEqual([late.tabId, onA.tabId, onB.tabId].sort())

    if (process.env.SS_REPORT) {
      console.info(
        JSON.stringify({
          restartMs: Math.round(upAt - restartAt),
          redisClientsReadyMs: Math.round(await reconnected),
          registerRefusedMs: Math.round(registerRefusedMs),
          readyAfterRestartMs: back.map(({ ms }) => Math.round(ms)),
          adapterBackMs: Math.round(adapterBackMs),
        }),
      )
    }
  })

  it('should hold calls and refuse registers within the timeouts while Redis stops answering, and recover when it answers again', async () => {
    const own = await startRedis()
    cleanups.push(() => own.stop())
    const runs: string[] = []
    // A stalled Redis runs the claims it queued once it resumes, after their senders gave up:
    // the call then waits for its claim's lease (short here; callLease, 60 s by default).
    cluster = await startCluster(own.url, { setup: tally(runs), ss: { callLease: 3_000 } })
    const proxy = await jarTo(cluster.node(0))
    const browser = makeBrowser(proxy.url)
    const tab = browser.open()
    await waitForStatus(tab)
    const { sessionId } = await whoami(tab)

    // SIGSTOP: connections stay open, nothing answers (a stalled or partitioned Redis).
    own.pause()
    // The call waits out the stall (the server refuses it after the store's 2 s command
    // timeout, the client re-sends the same id) and runs once Redis answers again.
    const heldSends = callSends(tab, 'tally')
    const held = tab.call('tally', { n: 1 })

    // Meanwhile a tab opening now cannot register.
    const late = browser.open()
    const lateLog = statusLog(late)
    const openedAt = performance.now()
    const offline = await nextStatus(late, (state) => state.status !== 'connecting' && state.status !== 'registering', 10_000)
    const registerRefusedMs = performance.now() - openedAt
    expect(offline).toMatchObject({ status: 'offline', error: { code: 'STORE_UNAVAILABLE' } })

    await vi.waitFor(() => expect(heldSends.length).toBeGreaterThanOrEqual(2), { timeout: 5000 })
    expect(new Set(heldSends).size).toBe(1)
    expect(runs).toEqual([])

    own.resume()
    const resumedAt = performance.now()
    expect(await waitForStatus(late, 'ready', 8000)).toMatchObject({ restored: true })
    const readyAfterResumeMs = performance.now() - resumedAt
    expect(lateLog).not.toContain('ended')
    expect(lateLog).not.toContain('closed')
    expect((await whoami(late)).sessionId).toBe(sessionId)
    expect(await held).toEqual({ n: 1, node: 0 })
    expect(await tab.call('tally', { n: 2 })).toEqual({ n: 2, node: 0 })
    expect(runs).toEqual(['0:1', '0:2'])

    if (process.env.SS_REPORT) {
      console.info(JSON.stringify({ paused: true, registerRefusedMs: Math.round(registerRefusedMs), readyAfterResumeMs: Math.round(readyAfterResumeMs) }))
    }
  })
})

describe('session-socket across nodes on Redis Cluster: failover', () => {
  let redis: RedisCluster
  beforeAll(async () => {
    redis = await threeShards()
  }, 60_000)

  /** One browser: its cookie jar (pointed at A), a tab on A and a tab on B. */
  async function browserOnBothNodes(a: ClusterNode, b: ClusterNode) {
    const proxy = await jarTo(a)
    const browser = makeBrowser(proxy.url)
    const onA = browser.open()
    await waitForStatus(onA)
    proxy.retarget(b.server.port)
    const onB = browser.open()
    await waitForStatus(onB)
    proxy.retarget(a.server.port)
    return { proxy, browser, tabs: [onA, onB], sessionId: (await whoami(onA)).sessionId, token: (await browser.tokens.get())! }
  }

  // Both failover tests get 60 s: a kill, cluster-node-timeout (1 s), the promotion, the clients'
  // topology refresh and a reconnect of every tab take 5–8 s here, and can pass the 20 s default
  // on a loaded CI machine.
  it('should keep tabs in their sessions and run every call once while a master dies and its replica takes over, losing no committed link', async () => {
    // Where the test stood when it failed (a timeout says nothing else): each phase and when it began.
    const startedAt = performance.now()
    const phases: string[] = []
    const phase = (name: string) => phases.push(`${name} +${Math.round(performance.now() - startedAt)} ms`)
    onTestFailed(() => console.error(`failover phases: ${phases.join(', ')}`))
    const runs = new Map<string, number>()
    cluster = await startCluster(
      { kind: 'cluster', rootNodes: redis.rootNodes },
      {
        // A claim the dying master had written comes back with its replica: the call then waits
        // out this lease (60 s by default) before it runs.
        ss: { callLease: 3000 },
        setup: (ss, _app, node) =>
          ss.method('tally', (params: { id: string }) => {
            runs.set(params.id, (runs.get(params.id) ?? 0) + 1)
            return { id: params.id, node }
          }),
      },
    )
    const [a, b] = [cluster.node(0), cluster.node(1)]
    // The master to kill holds the adapter's channel (every message between the nodes); the
    // browsers' links are spread over the shards: open browsers until one has its link there.
    phase('nodes up')
    const victim = await redis.masterOf(`${cluster.adapterKey}#/#`)
    const linkKey = (token: string) => `${cluster!.linkPrefix}link:${hashSecret(token)}`
    const browsers: Array<Awaited<ReturnType<typeof browserOnBothNodes>>> = []
    let linksOnVictim = 0
    while (browsers.length < 3 || (linksOnVictim === 0 && browsers.length < 9)) {
      const browser = await browserOnBothNodes(a, b)
      browsers.push(browser)
      if ((await redis.masterOf(linkKey(browser.token))) === victim) linksOnVictim++
    }
    phase(`${browsers.length} browsers`)
    const tabs = browsers.flatMap((browser) => browser.tabs)
    const logs = tabs.map(statusLog)
    await redis.waitForReplication()
    phase('replicated')

    // Every tab calls, one call after another, until told to stop.
    let stopping = false
    const counts = { calls: 0, answered: 0, failed: 0 }
    const loops = tabs.map(async (tab, t) => {
      for (let n = 0; !stopping; n++) {
        counts.calls++
        const id = `${t}:${n}`
        const reply = await tab.call('tally', { id }).then(
          (r) => r as { id: string },
          (err: unknown) => {
            counts.failed++
            throw err
          },
        )
        expect(reply.id).toBe(id)
        counts.answered++
      }
    })
    await vi.waitFor(() => expect(counts.answered).toBeGreaterThan(30), { timeout: 5000 })

    phase('calls flowing')
    const killedAt = performance.now()
    victim.server.kill()
    try {
      await redis.waitUntilHealthy()
      const promotedMs = Math.round(performance.now() - killedAt)
      phase('replica promoted')
      // Calls keep being answered once the nodes' clients found the promoted replica.
      const answeredAtPromotion = counts.answered
      await vi.waitFor(() => expect(counts.answered).toBeGreaterThan(answeredAtPromotion + 60), { timeout: 10_000 })
      stopping = true
      await Promise.all(loops)
      const callsBackMs = Math.round(performance.now() - killedAt)
      phase('calls back')

      for (const log of logs) {
        expect(log).not.toContain('ended')
        expect(log).not.toContain('closed')
      }
      const runTwice = [...runs.values()].filter((count) => count > 1).length
      expect(counts.failed).toBe(0)
      expect(counts.answered).toBe(counts.calls)
      expect(runs.size).toBe(counts.calls)
      expect(runTwice).toBe(0)

      // Every tab reconnects (its connection cut) and comes back into its session with its token.
      const back = tabs.map((tab) => nextStatus(tab, (state) => state.status === 'ready', 10_000))
      for (const browser of browsers) browser.proxy.cut()
      const states = await Promise.all(back)
      phase('tabs reconnected')
      const linksLost = states.filter((state) => state.status === 'ready' && state.reason === 'unknown-token').length
      for (const state of states) expect(state).toMatchObject({ status: 'ready', restored: true, reason: null })
      for (const browser of browsers) {
        for (const tab of browser.tabs) expect((await whoami(tab)).sessionId).toBe(browser.sessionId)
        expect(await browser.browser.tokens.get()).toBe(browser.token)
        expect((await b.server.links.getLink(hashSecret(browser.token)))?.sessionId).toBe(browser.sessionId)
      }
      expect(linksLost).toBe(0)

      // Events cross nodes again (the sharded subscriptions followed the promoted replica).
      phase('links checked')
      const onB = browsers[0]!.tabs[1]!
      let delivered = false
      onB.on('news', (text: string) => {
        if (text === 'after failover') delivered = true
      })
      await vi.waitFor(
        () => {
          if (!delivered) a.server.ss.toSession(browsers[0]!.sessionId).emit('news', 'after failover')
          expect(delivered).toBe(true)
        },
        { timeout: 5000, interval: 50 },
      )
      console.info(
        `failover: ${JSON.stringify({ calls: counts.calls, answered: counts.answered, runTwice, linksLost, tabs: tabs.length, linksOnVictim, promotedMs, callsBackMs })}`,
      )
    } finally {
      stopping = true
      await Promise.allSettled(loops)
      await redis.restart(victim)
    }
  }, 60_000)

  it('should register a tab whose link the failover lost (acknowledged, not yet replicated) into a new link of its cookie session', async () => {
    cluster = await startCluster({ kind: 'cluster', rootNodes: redis.rootNodes })
    const a = cluster.node(0)
    const proxy = await jarTo(a)
    const first = makeBrowser(proxy.url).open()
    await waitForStatus(first)
    const { sessionId } = await whoami(first)
    await redis.waitForReplication()

    // From now on no master's writes reach its replica: the next link is acknowledged only.
    const masters = (await redis.state()).filter((n) => n.role === 'master' && n.slots.length > 0)
    const reconnect = await Promise.all(masters.map(({ address }) => redis.isolateReplicas(redis.nodes.find((n) => n.address === address)!)))
    // Another browser profile with the same cookies (no token yet): a new link in the session.
    const browser = makeBrowser(proxy.url)
    const second = browser.open()
    await waitForStatus(second)
    const token = (await browser.tokens.get())!
    expect((await whoami(second)).sessionId).toBe(sessionId)
    const victim = await redis.masterOf(`${cluster.linkPrefix}link:${hashSecret(token)}`)
    const logs = [first, second].map(statusLog)

    victim.server.kill()
    try {
      for (const restore of reconnect) await restore()
      await redis.waitUntilHealthy()
      // The promoted replica never had it.
      await vi.waitFor(async () => expect(await a.server.links.getLink(hashSecret(token))).toBeNull(), { timeout: 10_000, interval: 100 })

      const back = [first, second].map((tab) => nextStatus(tab, (state) => state.status === 'ready', 10_000))
      proxy.cut()
      const [firstBack, secondBack] = await Promise.all(back)
      expect(firstBack).toMatchObject({ restored: true, reason: null })
      // Its token is unknown now: the cookie names the session, and the tab gets a new link in it.
      expect(secondBack).toMatchObject({ restored: false, reason: 'unknown-token' })
      expect((await whoami(second)).sessionId).toBe(sessionId)
      const newToken = await browser.tokens.get()
      expect(newToken).not.toBe(token)
      expect((await a.server.links.getLink(hashSecret(newToken!)))?.sessionId).toBe(sessionId)
      for (const log of logs) expect(log).not.toContain('ended')
      console.info(`failover, unreplicated link: ${JSON.stringify({ linksLost: 1, tabsEnded: 0, sameSession: true })}`)
    } finally {
      for (const restore of reconnect) await restore().catch(() => {})
      await redis.restart(victim)
    }
  }, 60_000)
})
