import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Server } from 'socket.io'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { MemoryStore } from 'express-session'
import { MemoryLinkStore, type TabSeen } from '@session-socket/node'
import { SqliteLinkStore } from '@session-socket/node/sqlite'
import { streamBase } from '@session-socket/protocol'
import { DEFAULT_DURABLE, DurableEvents } from '../src/durable.js'
import type { EventRead } from '../src/link-store.js'
import { memoryTabIdStorage, type PageEvent, type PageLifecycle, type SessionSocket } from '@session-socket/browser'
import { createDurableCalls, memoryDurableCallStorage, type DurableSettled } from '@session-socket/browser/durable'
import { startTestServer, type TestServer, type TestServerOptions } from '@session-socket/test-helpers/test-server'
import { startCookieJarProxy, type CookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, waitForStatus } from '@session-socket/test-helpers/clients'

let server: TestServer | undefined
let proxy: CookieJarProxy | undefined

afterEach(async () => {
  closeAllClients()
  await proxy?.close()
  await server?.close()
  proxy = server = undefined
})

async function start(options: TestServerOptions = {}) {
  server = await startTestServer(options)
  proxy = await startCookieJarProxy(server.port)
  const browser = makeBrowser(proxy.url)
  const tab = browser.open()
  await waitForStatus(tab)
  const { sessionId } = (await tab.call('whoami')) as { sessionId: string }
  return { browser, tab, sessionId }
}

/** A page the test moves into the back/forward cache and out of it. */
function bfcachePage(): PageLifecycle & { emit(event: PageEvent): void } {
  const listeners = new Set<(event: PageEvent) => void>()
  return {
    hidden: () => false,
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    emit(event) {
      for (const listener of [...listeners]) listener(event)
    },
  }
}

/** Collects what a tab applies of `event`, and resolves once `count` arrived. */
function collect(tab: SessionSocket, event: string) {
  const got: unknown[] = []
  let wake: () => void = () => {}
  tab.on(event, (value: unknown) => {
    got.push(value)
    wake()
  })
  return {
    got,
    until: (count: number, timeout = 5000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${got.length}/${count} ${event} events`)), timeout)
        const check = () => {
          if (got.length >= count) {
            clearTimeout(timer)
            resolve()
          }
        }
        wake = check
        check()
      }),
  }
}

describe('durable events', () => {
  it('should deliver durable events to a connected tab once, in order, and forget them once acknowledged', async () => {
    const links = new MemoryLinkStore()
    const { tab } = await start({ links })
    const news = collect(tab, 'news')
    for (let i = 1; i <= 20; i++) await server!.ss.toTab(tab.tabId, { durable: true }).emit('news', i)
    await news.until(20)
    expect(news.got).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
    await vi.waitFor(async () => {
      const read = await links.readEvents(tab.tabId, 0, Date.now())
      expect(read.events).toEqual([])
      expect(read.lastSeq % 1_000_000).toBe(20)
    }, { timeout: 2000 })
  })

  it('should give a tab cut from the network all 100 tab events and 50 session events once, in order, when it returns', async () => {
    const { tab, sessionId } = await start()
    const news = collect(tab, 'news')
    proxy!.cut()
    await waitForStatus(tab, 'offline')
    for (let i = 1; i <= 150; i++) {
      if (i % 3 === 0) await server!.ss.toSession(sessionId, { durable: true }).emit('news', i)
      else await server!.ss.toTab(tab.tabId, { durable: true }).emit('news', i)
    }
    await waitForStatus(tab, 'ready')
    await news.until(150)
    // Whatever the server sent before this answer has been applied: a duplicate would show.
    await tab.call('whoami')
    expect(news.got).toEqual(Array.from({ length: 150 }, (_, i) => i + 1))
  })

  it('should replay across a server restart with the same stores', async () => {
    const links = new MemoryLinkStore()
    const sessionStore = new MemoryStore()
    const { tab } = await start({ links, sessionStore })
    const news = collect(tab, 'news')
    await server!.ss.toTab(tab.tabId, { durable: true }).emit('news', 'before')
    await news.until(1)
    const port = server!.port
    await server!.close()
    await waitForStatus(tab, 'offline')
    // Sent by another process while this one is down: stored, nobody connected.
    const other = await startTestServer({ links, sessionStore })
    await other.ss.toTab(tab.tabId, { durable: true }).emit('news', 'while down')
    await other.close()
    server = await startTestServer({ links, sessionStore, port })
    await waitForStatus(tab, 'ready')
    await news.until(2)
    expect(news.got).toEqual(['before', 'while down'])
  })

  it('should reach a session tab that is away and still within the window', async () => {
    const { browser, tab, sessionId } = await start()
    const page = bfcachePage()
    const away = browser.open({ page })
    await waitForStatus(away)
    const news = collect(tab, 'news')
    const awayNews = collect(away, 'news')
    // Into the back/forward cache: the page closes its socket, and the server lets the tab go.
    page.emit('pagehide')
    await vi.waitFor(async () => expect(await server!.io.in(`tab:${away.tabId}`).fetchSockets()).toEqual([]))
    const result = await server!.ss.toSession(sessionId, { durable: true }).emit('news', 'for both')
    expect(Object.keys(result.seqs).sort()).toEqual([tab.tabId, away.tabId].sort())
    await news.until(1)
    expect(awayNews.got).toEqual([])
    // Back from the cache, the same page reconnects and gets what it missed.
    page.emit('pageshow')
    await awayNews.until(1)
    expect(awayNews.got).toEqual(['for both'])
    expect(news.got).toEqual(['for both'])
  })

  it('should reach the tabs of a user\'s browser that has no tab open, and no other user\'s', async () => {
    server = await startTestServer({ ss: { identify: (session) => session.userId } })
    const signIn = async (user: string) => {
      const jar = await startCookieJarProxy(server!.port)
      await fetch(`${jar.url}/login?user=${user}`, { method: 'POST' })
      const tab = makeBrowser(jar.url).open()
      await waitForStatus(tab)
      return { jar, tab }
    }
    const ann = await signIn('ann')
    const bob = await signIn('bob')
    try {
      const away = ann.tab.tabId
      ann.tab.close()
      bob.tab.close()
      await vi.waitFor(async () => expect(await server!.io.fetchSockets()).toEqual([]))
      const result = await server.ss.toUser('ann', { durable: true }).emit('news', 'for ann')
      expect(Object.keys(result.seqs)).toEqual([away])
      expect((await server.links.readEvents(away, 0, Date.now())).events.map((e) => e.args)).toEqual([['for ann']])
      expect((await server.links.readEvents(bob.tab.tabId, 0, Date.now())).events).toEqual([])
    } finally {
      await ann.jar.close()
      await bob.jar.close()
    }
  })

  it('should tell the tab about a gap when events expired while it was away', async () => {
    let offset = 0
    const { tab } = await start({ ss: { durable: { window: 1_000 }, now: () => Date.now() + offset } })
    const news = collect(tab, 'news')
    const gaps: unknown[] = []
    tab.on('gap', (info) => gaps.push(info))
    proxy!.cut()
    await waitForStatus(tab, 'offline')
    await server!.ss.toTab(tab.tabId, { durable: true }).emit('news', 'lost')
    offset = 5_000
    await server!.ss.toTab(tab.tabId, { durable: true }).emit('news', 'kept')
    await waitForStatus(tab, 'ready')
    await news.until(1)
    expect(news.got).toEqual(['kept'])
    // The stream had expired: 'kept' opened a new one, in a later block.
    expect(gaps).toHaveLength(1)
    expect((gaps[0] as { to: number }).to % 1_000_000).toBe(0)
  })

  it('should refuse events over a tab\'s quota and say which tabs', async () => {
    const { tab } = await start({ ss: { durable: { maxEvents: 3 } } })
    proxy!.cut()
    await waitForStatus(tab, 'offline')
    for (let i = 0; i < 3; i++) expect((await server!.ss.toTab(tab.tabId, { durable: true }).emit('news', i)).refused).toEqual([])
    await expect(server!.ss.toTab(tab.tabId, { durable: true }).emit('news', 3)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' })
    // Session-wide, the send goes to the other tabs and names the full one.
    const { sessionId } = (await (await fetch(`${proxy!.url}/whoami`)).json()) as { sessionId: string }
    expect((await server!.ss.toSession(sessionId, { durable: true }).emit('news', 4)).refused).toEqual([tab.tabId])
  })

  it('should apply a duplicated or early event once, in order', async () => {
    const { tab } = await start()
    const news = collect(tab, 'news')
    const room = server!.io.to(`tab:${tab.tabId}`)
    // Out of order and twice, as a replay racing live sends would deliver them.
    const b = 2_000_000_000_000_000
    room.emit('ss:event', { seq: b + 2, e: 'news', a: ['b'] })
    room.emit('ss:event', { seq: b + 1, e: 'news', a: ['a'] })
    room.emit('ss:event', { seq: b + 1, e: 'news', a: ['a'] })
    room.emit('ss:event', { seq: b + 3, e: 'news', a: ['c'] })
    room.emit('ss:event', { seq: b + 2, e: 'news', a: ['b'] })
    await news.until(3)
    // The duplicates went out before this answer: applied twice, they would show by now.
    await tab.call('whoami')
    expect(news.got).toEqual(['a', 'b', 'c'])
  })

  it('should refuse durable sends that are not JSON or use a reserved name', async () => {
    const { tab } = await start()
    await expect(server!.ss.toTab(tab.tabId, { durable: true }).emit('ss:ended', 1)).rejects.toThrow(/"ss:ended" is a reserved event name/)
    await expect(server!.ss.toTab(tab.tabId, { durable: true }).emit('news', new Uint8Array(2))).rejects.toThrow(/plain JSON data/)
  })
})

describe('durable calls', () => {
  it('should keep calls made offline across a reload and run each once, in order', async () => {
    const runs: string[] = []
    const { browser, tab } = await start({
      setup: (ss) =>
        ss.method('order.place', (params: { sku: string }) => {
          runs.push(params.sku)
          return { placed: params.sku }
        }),
    })
    const storage = memoryDurableCallStorage()
    const tabIds = memoryTabIdStorage()
    tab.close()
    proxy!.cut()
    const offline = browser.open({ tabIdStorage: tabIds, autoConnect: false })
    const durable = createDurableCalls(offline, { storage })
    for (const sku of ['a', 'b', 'c']) void durable.call('order.place', { sku }).catch(() => undefined)
    await expect.poll(async () => (await durable.list()).map((c) => c.params)).toEqual([{ sku: 'a' }, { sku: 'b' }, { sku: 'c' }])
    // The page goes away (no close(): a reload) and comes back with the same tab id.
    const reloaded = browser.open({ tabIdStorage: tabIds })
    const settled: Array<Pick<DurableSettled, 'ok' | 'result'>> = []
    createDurableCalls(reloaded, { storage }).onSettled((s) => settled.push({ ok: s.ok, result: s.result }))
    await waitForStatus(reloaded)
    await expect.poll(() => settled.length, { timeout: 3000 }).toBe(3)
    expect(settled).toEqual(['a', 'b', 'c'].map((sku) => ({ ok: true, result: { placed: sku } })))
    expect(runs).toEqual(['a', 'b', 'c'])
    expect(await storage.list(reloaded.tabId)).toEqual([])
  })

  it('should not run a durable call twice when it was sent, its answer lost, and the page reloaded', async () => {
    let runs = 0
    const storage = memoryDurableCallStorage()
    const tabIds = memoryTabIdStorage()
    server = await startTestServer({
      setup: (ss) =>
        ss.method('pay', (_p, ctx) => {
          runs++
          ctx.socket.conn.close()
          return 'paid'
        }),
    })
    proxy = await startCookieJarProxy(server.port)
    const browser = makeBrowser(proxy.url)
    const first = browser.open({ tabIdStorage: tabIds, backoff: () => 10_000 })
    await waitForStatus(first)
    void createDurableCalls(first, { storage }).call('pay').catch(() => undefined)
    await waitForStatus(first, 'offline')
    expect(runs).toBe(1)
    expect((await storage.list(first.tabId)).map((c) => c.sent)).toEqual([true])
    const reloaded = browser.open({ tabIdStorage: tabIds })
    const settled = new Promise((resolve) => createDurableCalls(reloaded, { storage }).onSettled(resolve))
    expect(await settled).toMatchObject({ ok: true, result: 'paid' })
    expect(runs).toBe(1)
  })

  it('should settle with TIMEOUT, not resend, a call sent before a reload longer ago than the ttl', async () => {
    let runs = 0
    const storage = memoryDurableCallStorage()
    server = await startTestServer({ setup: (ss) => ss.method('work', () => ++runs) })
    const tab = makeBrowser(server.url).open({ tabIdStorage: memoryTabIdStorage('old-tab') })
    await storage.put('old-tab', { id: 'oldcall', method: 'work', params: null, createdAt: Date.now() - 700_000, sent: true })
    const settled = new Promise<DurableSettled>((resolve) => createDurableCalls(tab, { storage }).onSettled(resolve))
    expect(await settled).toMatchObject({ id: 'oldcall', ok: false, error: { code: 'TIMEOUT' } })
    await waitForStatus(tab)
    expect(runs).toBe(0)
    expect(await storage.list('old-tab')).toEqual([])
  })

  it('should take call(…, { durable: true }) once createDurableCalls(s) is set up, and say what is missing before', async () => {
    const storage = memoryDurableCallStorage()
    server = await startTestServer()
    const tab = makeBrowser(server.url).open({ autoConnect: false })
    expect(() => tab.call('whoami', undefined, { durable: true })).toThrow(/needs createDurableCalls\(s\) from '@session-socket\/browser\/durable'/)
    const durable = createDurableCalls(tab, { storage })
    const answer = tab.call('whoami', undefined, { durable: true })
    await expect.poll(async () => (await durable.list()).length).toBe(1)
    tab.connect()
    await expect(answer).resolves.toMatchObject({ tabId: tab.tabId })
    expect(await durable.list()).toEqual([])
  })

  it('should cancel a waiting durable call', async () => {
    server = await startTestServer()
    const tab = makeBrowser(server.url).open({ autoConnect: false })
    const durable = createDurableCalls(tab, { storage: memoryDurableCallStorage() })
    const pending = durable.call('whoami')
    await expect.poll(async () => (await durable.list()).length).toBe(1)
    const [waiting] = await durable.list()
    expect(await durable.cancel(waiting!.id)).toBe(true)
    await expect(pending).rejects.toMatchObject({ code: 'CANCELLED' })
    expect(await durable.list()).toEqual([])
    expect(await durable.cancel('nope')).toBe(false)
  })
})

describe('durable events for a tab that never had any', () => {
  it('should replay a whole new stream without a gap', async () => {
    const { tab } = await start()
    const news = collect(tab, 'news')
    const gaps: unknown[] = []
    tab.on('gap', (g) => gaps.push(g))
    proxy!.cut()
    await waitForStatus(tab, 'offline')
    for (const n of [1, 2, 3]) await server!.ss.toTab(tab.tabId, { durable: true }).emit('news', n)
    await waitForStatus(tab, 'ready')
    await news.until(3)
    expect(news.got).toEqual([1, 2, 3])
    expect(gaps).toEqual([])
  })
})

/** A real memory store that also notes the size of every recordTabs batch and counts stream reads. */
class BatchCountingStore extends MemoryLinkStore {
  readonly batches: number[] = []
  reads = 0
  override recordTabs(tabs: readonly TabSeen[], now: number, windowMs: number): Promise<number[]> {
    this.batches.push(tabs.length)
    return super.recordTabs(tabs, now, windowMs)
  }
  override readEvents(tabId: string, afterSeq: number, now: number): Promise<EventRead> {
    this.reads++
    return super.readEvents(tabId, afterSeq, now)
  }
}

describe('tabs seen', () => {
  // DurableEvents needs a namespace only to emit; this server is attached to nothing.
  const io = new Server()
  const cleanups: Array<() => unknown> = []
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn()
  })

  it('should write the tabs seen in one event-loop turn with one store call, and answer each its last seq', async () => {
    const links = new BatchCountingStore()
    const now = Date.now()
    const durable = new DurableEvents(links, io.of('/'), () => now, DEFAULT_DURABLE)
    const b = streamBase(now)
    await links.appendEvent('busy', { event: 'e', args: [], bytes: 1 }, now + 60_000, { maxEvents: 10, maxBytes: 100 }, now)

    const first = [durable.seen('s1', 'busy'), durable.seen('s1', 'fresh'), durable.seen('s2', 'other'), durable.seen('s1', 'busy')]
    // Still one batch after an await in the same turn (a register resumed by a microtask).
    await Promise.resolve()
    first.push(durable.seen('s3', 'late'))
    expect(await Promise.all(first)).toEqual([b + 1, b, b, b + 1, b])
    expect(links.batches).toEqual([5])
    expect((await links.sessionTabs('s1', now)).sort()).toEqual(['busy', 'fresh'])

    // The next turn is the next batch.
    expect(await durable.seen('s1', 'fresh')).toBe(b)
    expect(links.batches).toEqual([5, 1])
  })

  it('should split a turn with more tabs than one batch carries into several store calls', async () => {
    const links = new BatchCountingStore()
    const now = Date.now()
    const durable = new DurableEvents(links, io.of('/'), () => now, DEFAULT_DURABLE)
    const seen = Array.from({ length: 1200 }, (_, n) => durable.seen(`s${n % 100}`, `t${n}`))
    expect(new Set(await Promise.all(seen))).toEqual(new Set([streamBase(now)]))
    expect(links.batches).toEqual([512, 512, 176])
    expect(await links.sessionTabs('s7', now)).toHaveLength(12)
  })

  it('should not read the stream of a tab that reconnects having missed nothing, and replay what a tab missed', async () => {
    const links = new BatchCountingStore()
    const { tab } = await start({ links })
    const news = collect(tab, 'news')
    await server!.ss.toTab(tab.tabId, { durable: true }).emit('news', 'one')
    await news.until(1)
    const reads = links.reads

    proxy!.cut()
    await waitForStatus(tab, 'offline')
    await waitForStatus(tab, 'ready')
    expect(links.reads).toBe(reads)
    await server!.ss.toTab(tab.tabId, { durable: true }).emit('news', 'two')
    await news.until(2)

    proxy!.cut()
    await waitForStatus(tab, 'offline')
    await server!.ss.toTab(tab.tabId, { durable: true }).emit('news', 'three')
    await waitForStatus(tab, 'ready')
    await news.until(3)
    expect(links.reads).toBe(reads + 1)
    expect(news.got).toEqual(['one', 'two', 'three'])
  })

  it('should reject every caller of a batch with the store\'s typed error, and write the next batch once the store is back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ss-seen-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const path = join(dir, 'links.db')
    const owner = new SqliteLinkStore({ path, sweepIntervalMs: 0 })
    cleanups.push(() => owner.close())
    const db = new Database(path, { timeout: 50 })
    cleanups.push(() => db.close())
    const links = new SqliteLinkStore({ database: db, sweepIntervalMs: 0 })
    const locker = new Database(path)
    cleanups.push(() => locker.close())
    const now = Date.now()
    const durable = new DurableEvents(links, io.of('/'), () => now, DEFAULT_DURABLE)

    locker.exec('BEGIN IMMEDIATE')
    const refused = await Promise.allSettled([durable.seen('s1', 'a'), durable.seen('s1', 'b'), durable.seen('s2', 'c')])
    locker.exec('ROLLBACK')
    for (const result of refused) {
      expect(result.status).toBe('rejected')
      expect((result as PromiseRejectedResult).reason).toMatchObject({ code: 'STORE_UNAVAILABLE', retryAfter: 1000 })
    }
    // Nothing of the refused batch was written: it was one transaction.
    expect(await links.sessionTabs('s1', now)).toEqual([])

    expect(await Promise.all([durable.seen('s1', 'a'), durable.seen('s2', 'c')])).toEqual([streamBase(now), streamBase(now)])
    expect(await links.sessionTabs('s2', now)).toEqual(['c'])
  })
})
