import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient, type RedisClientType } from 'redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { SessionSocketError, streamBase } from '@session-socket/protocol'
import { RedisLinkStore } from '../../src/stores/redis.js'
import { startRedis, type RedisServer, type StartRedisOptions } from '@session-socket/test-helpers/redis-server'
import { linkStoreContract } from './contract.js'
import { durableEventChecks } from './durable-events.js'

type Client = RedisClientType

let redis: RedisServer | undefined
let shared: Client | undefined
let sharedResp2: RedisClientType<{}, {}, {}, 2> | undefined
let prefixNo = 0
const nextPrefix = () => `ss-test-${process.pid}-${++prefixNo}:`

/** A client configured as the store's docs ask: no offline queue, quick reconnects. */
async function connect(url: string, extra: { disableOfflineQueue?: boolean } = {}): Promise<Client> {
  const client = createClient({
    url,
    disableOfflineQueue: extra.disableOfflineQueue ?? true,
    socket: { connectTimeout: 1000, reconnectStrategy: (retries) => Math.min(50 * (retries + 1), 300) },
  })
  // node-redis throws 'error' events that have no listener; the outage tests cause many.
  client.on('error', () => {})
  await client.connect()
  return client
}

async function close(client: Client | undefined): Promise<void> {
  if (client?.isOpen) client.destroy()
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

beforeAll(async () => {
  redis = await startRedis()
  shared = await connect(redis.url)
  sharedResp2 = createClient({ url: redis.url, RESP: 2, disableOfflineQueue: true })
  sharedResp2.on('error', () => {})
  await sharedResp2.connect()
})

afterAll(async () => {
  if (sharedResp2?.isOpen) sharedResp2.destroy()
  await close(shared)
  await redis?.stop()
})

linkStoreContract(
  'RedisLinkStore',
  async () => {
    const store = new RedisLinkStore({ client: shared!, prefix: nextPrefix() })
    return { store, cleanup: () => store.close() }
  },
  { expiresByItself: true },
)

// Replies differ between RESP2 and RESP3 for some types; the store must read both.
linkStoreContract(
  'RedisLinkStore (RESP2 client)',
  async () => {
    const store = new RedisLinkStore({ client: sharedResp2!, prefix: nextPrefix() })
    return { store, cleanup: () => store.close() }
  },
  { expiresByItself: true },
)

durableEventChecks('RedisLinkStore', async () => {
  const store = new RedisLinkStore({ client: shared!, prefix: nextPrefix() })
  return { store, cleanup: () => store.close() }
})

durableEventChecks('RedisLinkStore (RESP2 client)', async () => {
  const store = new RedisLinkStore({ client: sharedResp2!, prefix: nextPrefix() })
  return { store, cleanup: () => store.close() }
})

describe('RedisLinkStore', () => {
  const cleanups: Array<() => Promise<void> | void> = []
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn()
  })

  async function client(url = redis!.url, extra: { disableOfflineQueue?: boolean } = {}): Promise<Client> {
    const c = await connect(url, extra)
    cleanups.push(() => close(c))
    return c
  }

  async function server(options?: StartRedisOptions): Promise<RedisServer> {
    const s = await startRedis(options)
    cleanups.push(() => s.stop())
    return s
  }

  const record = (sessionId: string, now: number, ttl = 60_000) => ({
    sessionId,
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + ttl,
  })

  it('sets Redis expiries on links, session indexes, codes and results', async () => {
    const prefix = nextPrefix()
    const store = new RedisLinkStore({ client: shared!, prefix })
    const now = Date.now()
    await store.putLink('h1', record('s1', now, 60_000))
    await store.putLink('h2', record('s1', now, 120_000))
    await store.putRestoreCode('c1', { sessionId: 's1', expiresAt: now + 30_000 })
    await store.finishCall('k1', { ok: true, r: 1 }, 10_000, now)

    expect(await shared!.pExpireTime(`${prefix}link:h1`)).toBe(now + 60_000)
    expect(await shared!.pExpireTime(`${prefix}link:h2`)).toBe(now + 120_000)
    expect(await shared!.pExpireTime(`${prefix}sess:s1`)).toBe(now + 120_000)
    expect(await shared!.pExpireTime(`${prefix}code:c1`)).toBe(now + 30_000)
    expect(await shared!.pExpireTime(`${prefix}call:k1`)).toBe(now + 10_000)
    expect((await shared!.sMembers(`${prefix}sess:s1`)).sort()).toEqual(['h1', 'h2'])

    await store.close()
    expect(shared!.isReady).toBe(true)
    await expect(store.getLink('h1')).rejects.toThrow(/closed/)
  })

  it('keeps a set of links per user that expires with its latest link, and sweep prunes what went', async () => {
    const prefix = nextPrefix()
    const store = new RedisLinkStore({ client: shared!, prefix })
    const now = Date.now()
    await store.putLink('short', { ...record('s1', now, 150), userId: 'u1' })
    await store.putLink('long', { ...record('s2', now, 60_000), userId: 'u1' })
    expect(await shared!.pExpireTime(`${prefix}user:u1`)).toBe(now + 60_000)
    expect((await shared!.sMembers(`${prefix}user:u1`)).sort()).toEqual(['long', 'short'])

    // Moving a session to another user moves its links to that user's set, with their expiry.
    expect(await store.setSessionUser('s2', 'u2')).toBe(1)
    expect(await shared!.sMembers(`${prefix}user:u2`)).toEqual(['long'])
    expect(await shared!.pExpireTime(`${prefix}user:u2`)).toBe(now + 60_000)

    const deadline = Date.now() + 3000
    while ((await store.getLink('short')) !== null && Date.now() < deadline) await sleep(25)
    expect(await shared!.sMembers(`${prefix}user:u1`)).toEqual(['short'])
    // s1's session set expired with its only link; u1's set outlived it (it was kept for 'long').
    expect(await store.sweep(Date.now())).toBe(1)
    expect(await shared!.exists(`${prefix}user:u1`)).toBe(0)
    expect(await store.userSessions('u2', Date.now())).toEqual(['s2'])
    expect(await store.sweep(Date.now())).toBe(0)
  })

  it('sweep prunes index entries of links Redis expired', async () => {
    const prefix = nextPrefix()
    const store = new RedisLinkStore({ client: shared!, prefix })
    const now = Date.now()
    await store.putLink('short', record('s1', now, 150))
    await store.putLink('long', record('s1', now, 60_000))
    const deadline = Date.now() + 3000
    while ((await store.getLink('short')) !== null && Date.now() < deadline) await sleep(25)
    expect(await store.getLink('short')).toBeNull()
    expect(await shared!.sMembers(`${prefix}sess:s1`)).toHaveLength(2)

    expect(await store.sweep(Date.now())).toBe(1)
    expect(await shared!.sMembers(`${prefix}sess:s1`)).toEqual(['long'])
    expect(await store.sweep(Date.now())).toBe(0)
  })

  it('is atomic across two connections: claims, codes, revoking one session twice at once', async () => {
    const prefix = nextPrefix()
    const a = new RedisLinkStore({ client: shared!, prefix })
    const b = new RedisLinkStore({ client: await client(), prefix })
    const now = Date.now()

    for (let round = 0; round < 10; round++) {
      const claims = await Promise.all([a, b, a, b].map((s) => s.claimCall(`k${round}`, 60_000, now)))
      expect(claims.filter((c) => c.state === 'new')).toHaveLength(1)

      await a.putRestoreCode(`c${round}`, { sessionId: 's', expiresAt: now + 60_000 })
      const takes = await Promise.all([a, b, b, a].map((s) => s.takeRestoreCode(`c${round}`, now)))
      expect(takes.filter((t) => t !== null)).toHaveLength(1)

      for (let i = 0; i < 20; i++) await a.putLink(`r${round}-${i}`, record(`from${round}`, now))
      const counts = await Promise.all([a.revokeSession(`from${round}`, now), b.revokeSession(`from${round}`, now + 1)])
      // One script ran entirely before the other: it revoked all 20, the other none.
      expect(counts.sort((x, y) => x - y)).toEqual([0, 20])
    }
  })

  it('rejects with STORE_UNAVAILABLE within the command timeout while Redis is down, and works again after restart', async () => {
    const own = await server()
    const c = await client(own.url)
    const queueing = await client(own.url, { disableOfflineQueue: false })
    const store = new RedisLinkStore({ client: c, prefix: nextPrefix() })
    const lenient = new RedisLinkStore({ client: queueing, prefix: nextPrefix() })
    const now = Date.now()
    await store.putLink('h1', record('s1', now))

    await own.stop()
    for (const s of [store, lenient]) {
      for (const op of [
        () => s.getLink('h1'),
        () => s.putLink('h2', record('s1', now)),
        () => s.claimCall('k', 1000, now),
        () => s.appendEvent('t', { event: 'e', args: [], bytes: 1 }, now + 1000, { maxEvents: 10, maxBytes: 100 }, now),
        () => s.recordTabs([{ sessionId: 's1', tabId: 't' }, { sessionId: 's2', tabId: 'u' }], now, 1000),
        () => s.setSessionUser('s1', 'u1'),
        () => s.userSessions('u1', now),
      ]) {
        const started = Date.now()
        const err = await op().then(() => null, (e: unknown) => e)
        // At once when the client already saw the disconnect; otherwise by the store's 2 s
        // command timeout (a command sent just before the client noticed). Never a hang.
        expect(Date.now() - started).toBeLessThan(3000)
        expect(err).toBeInstanceOf(SessionSocketError)
        expect(err).toMatchObject({ code: 'STORE_UNAVAILABLE', retryAfter: 1000 })
      }
    }

    await own.restart()
    const deadline = Date.now() + 5000
    let ok = false
    for (let attempt = 0; attempt < 100 && Date.now() < deadline && !ok; attempt++) {
      ok = await store.putLink('h3', record('s1', Date.now())).then(() => true, () => false)
      if (!ok) await sleep(50)
    }
    expect(ok).toBe(true)
    expect((await store.getLink('h3'))?.sessionId).toBe('s1')
    expect(await store.revokeSession('s1', Date.now())).toBe(1)
  })

  it('rejects within commandTimeoutMs when Redis stops answering on an open connection', async () => {
    const own = await server()
    const c = await client(own.url)
    const store = new RedisLinkStore({ client: c, prefix: nextPrefix(), commandTimeoutMs: 300 })
    await store.putLink('h1', record('s1', Date.now()))
    own.pause()
    cleanups.push(() => own.resume())
    const started = Date.now()
    await expect(store.getLink('h1')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' })
    expect(Date.now() - started).toBeLessThan(1000)
    own.resume()
    expect((await store.getLink('h1'))?.sessionId).toBe('s1')
  })

  it('keeps every committed link through a Redis crash with appendfsync always', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ss-redis-aof-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const own = await server({ args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] })
    const c = await client(own.url)
    const prefix = nextPrefix()
    const store = new RedisLinkStore({ client: c, prefix })
    const now = Date.now()
    const written: string[] = []
    for (let i = 0; i < 200; i++) {
      await store.putLink(`h${i}`, record(`s${i % 5}`, now))
      written.push(`h${i}`)
    }
    await store.putRestoreCode('code', { sessionId: 's0', expiresAt: now + 60_000 })

    own.kill()
    await own.restart()
    const fresh = new RedisLinkStore({ client: await client(own.url), prefix })
    const missing: string[] = []
    for (const hash of written) if ((await fresh.getLink(hash)) === null) missing.push(hash)
    expect(missing).toEqual([])
    expect(await fresh.revokeSession('s0', now)).toBe(40)
    expect(await fresh.takeRestoreCode('code', now)).toEqual({ sessionId: 's0', expiresAt: now + 60_000 })
  })
  it('sets Redis expiries on session tabs, streams and events', async () => {
    const prefix = nextPrefix()
    const store = new RedisLinkStore({ client: shared!, prefix })
    const now = Date.now()
    const quota = { maxEvents: 10, maxBytes: 1000 }
    const ev = { event: 'e', args: [], bytes: 1 }

    await store.recordTabs([{ sessionId: 's1', tabId: 't1' }], now, 60_000)
    await store.recordTabs([{ sessionId: 's1', tabId: 't2' }], now, 120_000)
    await store.recordTabs([{ sessionId: 's1', tabId: 't2' }], now, 30_000)
    // The set lives as long as its latest tab, which is t1 once t2 was seen with a shorter window.
    expect(await shared!.pExpireTime(`${prefix}tabs:s1`)).toBe(now + 60_000)

    // recordTabs started t1's (empty) stream for its window.
    expect(await shared!.pExpireTime(`${prefix}stream:t1`)).toBe(now + 60_000)
    // Events live as long as their stream.
    await store.appendEvent('t1', ev, now + 10_000, quota, now)
    expect(await shared!.pExpireTime(`${prefix}stream:t1`)).toBe(now + 60_000)
    expect(await shared!.pExpireTime(`${prefix}events:t1`)).toBe(now + 60_000)
    await store.recordTabs([{ sessionId: 's1', tabId: 't1' }], now + 1000, 60_000)
    expect(await shared!.pExpireTime(`${prefix}stream:t1`)).toBe(now + 61_000)
    expect(await shared!.pExpireTime(`${prefix}events:t1`)).toBe(now + 60_000)
    await store.appendEvent('t1', ev, now + 20_000, quota, now)
    expect(await shared!.pExpireTime(`${prefix}stream:t1`)).toBe(now + 61_000)
    expect(await shared!.pExpireTime(`${prefix}events:t1`)).toBe(now + 61_000)

    // A refused append writes nothing, not even an empty stream.
    await expect(store.appendEvent('t9', { event: 'e', args: [], bytes: 5000 }, now + 10_000, quota, now)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' })
    expect(await shared!.exists([`${prefix}stream:t9`, `${prefix}events:t9`])).toBe(0)
  })

  it('forgets the byte total of events Redis dropped by itself, and keeps numbering', async () => {
    const prefix = nextPrefix()
    const store = new RedisLinkStore({ client: shared!, prefix })
    const now = Date.now()
    const base = streamBase(now)
    const quota = { maxEvents: 10, maxBytes: 1000 }
    const ev = (n: number) => ({ event: 'e', args: [n], bytes: 400 })
    await store.appendEvent('t1', ev(1), now + 60_000, quota, now)
    await store.appendEvent('t1', ev(2), now + 60_000, quota, now)
    await expect(store.appendEvent('t1', ev(3), now + 60_000, quota, now)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' })

    // As when the events key expired or was evicted (maxmemory) while the stream lived on.
    await shared!.del(`${prefix}events:t1`)
    expect(await store.readEvents('t1', base, now)).toEqual({ lastSeq: base + 2, gap: true, events: [] })
    expect(await store.appendEvent('t1', ev(3), now + 60_000, quota, now)).toBe(base + 3)
    expect(await store.appendEvent('t1', ev(4), now + 60_000, quota, now)).toBe(base + 4)
    await expect(store.appendEvent('t1', ev(5), now + 60_000, quota, now)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' })
  })

  it('is atomic across two connections: durable appends get consecutive numbers up to the quota', async () => {
    const prefix = nextPrefix()
    const a = new RedisLinkStore({ client: shared!, prefix })
    const b = new RedisLinkStore({ client: await client(), prefix })
    const now = Date.now()
    const base = streamBase(now)
    const quota = { maxEvents: 25, maxBytes: 1_000_000 }
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, n) => (n % 2 ? a : b).appendEvent('t1', { event: 'e', args: [n], bytes: 1 }, now + 60_000, quota, now)),
    )
    const seqs = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
    expect(seqs.sort((x, y) => x - y)).toEqual(Array.from({ length: 25 }, (_, n) => base + n + 1))
    expect(results.filter((r) => r.status === 'rejected' && (r.reason as SessionSocketError).code === 'QUOTA_EXCEEDED')).toHaveLength(15)
    await a.ackEvents('t1', base + 20)
    expect((await b.readEvents('t1', base + 20, now)).events.map((e) => e.seq)).toEqual([21, 22, 23, 24, 25].map((n) => base + n))
  })

  it('keeps durable streams and session tabs through a Redis crash with appendfsync always', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ss-redis-aof-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const own = await server({ args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] })
    const prefix = nextPrefix()
    const store = new RedisLinkStore({ client: await client(own.url), prefix })
    const now = Date.now()
    const base = streamBase(now)
    const quota = { maxEvents: 10, maxBytes: 1000 }
    await store.recordTabs([{ sessionId: 's1', tabId: 't1' }], now, 60_000)
    for (const n of [1, 2, 3]) await store.appendEvent('t1', { event: 'news:posted', args: [{ n }], bytes: 10 }, now + 60_000, quota, now)
    await store.ackEvents('t1', base + 1)

    own.kill()
    await own.restart()
    // A new client and store: Redis forgot the script cache, so EVALSHA falls back to EVAL.
    const fresh = new RedisLinkStore({ client: await client(own.url), prefix })
    expect(await fresh.sessionTabs('s1', now)).toEqual(['t1'])
    expect(await fresh.readEvents('t1', base + 1, now)).toEqual({
      lastSeq: base + 3,
      gap: false,
      events: [
        { seq: base + 2, event: 'news:posted', args: [{ n: 2 }], expiresAt: now + 60_000 },
        { seq: base + 3, event: 'news:posted', args: [{ n: 3 }], expiresAt: now + 60_000 },
      ],
    })
    expect(await fresh.appendEvent('t1', { event: 'news:posted', args: [{ n: 4 }], bytes: 10 }, now + 60_000, quota, now)).toBe(base + 4)
  })
})
