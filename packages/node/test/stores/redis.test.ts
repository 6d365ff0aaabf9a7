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
import { redisStoreChecks } from './redis-checks.js'

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

redisStoreChecks('one Redis', { connect: () => connect(redis!.url), prefix: nextPrefix })

describe('RedisLinkStore on one Redis: outages and crashes', () => {
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
