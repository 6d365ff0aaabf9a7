import type { RedisClientType } from 'redis'
import { afterEach, describe, expect, it } from 'vitest'
import { SessionSocketError, streamBase } from '@session-socket/protocol'
import { RedisLinkStore, type RedisLinkStoreCluster } from '../../src/stores/redis.js'

/** A connected client of one Redis or of a cluster, that the checks can close. */
export type TestRedisClient = RedisClientType<any, any, any, any, any> | (RedisLinkStoreCluster & { readonly isOpen: boolean; destroy(): void })

/** Where the checks run: one Redis, or a cluster. */
export interface RedisBackend {
  /** A new connected client, configured as docs/scaling.md says; the checks close it. */
  connect(): Promise<TestRedisClient>
  /** A key prefix no other test uses. */
  prefix(): string
}

/** One command routed by its key, on one Redis or a cluster. */
function command(client: TestRedisClient, key: string, args: string[]): Promise<unknown> {
  if ('masters' in client) return (client as RedisLinkStoreCluster).sendCommand(key, false, args)
  return (client as RedisClientType<any, any, any, any, any>).sendCommand(args)
}

/**
 * Checks of what `RedisLinkStore` keeps in Redis beyond the contract (key expiries, the
 * session and user indexes, sweep) and of its atomic steps across two connections, on the given
 * backend.
 *
 * @example
 * redisStoreChecks('one Redis', { connect: () => createClient({ url }).connect(), prefix: () => `t${++n}:` })
 */
export function redisStoreChecks(name: string, backend: RedisBackend): void {
  describe(`RedisLinkStore on ${name}`, () => {
    const clients: TestRedisClient[] = []
    afterEach(() => {
      for (const client of clients.splice(0)) if (client.isOpen) client.destroy()
    })

    async function setup() {
      const client = await backend.connect()
      clients.push(client)
      const prefix = backend.prefix()
      const raw = (args: string[]) => command(client, args[1]!, args)
      return {
        client,
        prefix,
        store: new RedisLinkStore({ client, prefix }),
        expireTime: async (key: string) => Number(await raw(['PEXPIRETIME', `${prefix}${key}`])),
        members: async (key: string) => ((await raw(['ZRANGE', `${prefix}${key}`, '0', '-1'])) as string[]).sort(),
        exists: async (key: string) => Number(await raw(['EXISTS', `${prefix}${key}`])),
        del: (key: string) => raw(['DEL', `${prefix}${key}`]),
      }
    }

    const record = (sessionId: string, now: number, ttl = 60_000) => ({ sessionId, createdAt: now, lastSeenAt: now, expiresAt: now + ttl })

    /** Resolves once Redis has dropped the link by its TTL (polled: a TTL has no event). */
    async function gone(store: RedisLinkStore, hash: string): Promise<void> {
      await expect.poll(() => store.getLink(hash), { timeout: 3000, interval: 25 }).toBeNull()
    }

    it('sets Redis expiries on links, session indexes, codes and results', async () => {
      const { client, store, expireTime, members } = await setup()
      const now = Date.now()
      await store.putLink('h1', record('s1', now, 60_000))
      await store.putLink('h2', record('s1', now, 120_000))
      await store.putRestoreCode('c1', { sessionId: 's1', expiresAt: now + 30_000 })
      await store.finishCall('k1', { ok: true, r: 1 }, 10_000, now)

      expect(await expireTime('link:h1')).toBe(now + 60_000)
      expect(await expireTime('link:h2')).toBe(now + 120_000)
      expect(await expireTime('session-links:s1')).toBe(now + 120_000)
      expect(await expireTime('code:c1')).toBe(now + 30_000)
      expect(await expireTime('call:k1')).toBe(now + 10_000)
      expect(await members('session-links:s1')).toEqual(['h1', 'h2'])

      await store.close()
      expect(client.isReady).toBe(true)
      await expect(store.getLink('h1')).rejects.toThrow(/closed/)
    })

    it('keeps an index of links per user that expires with its latest link, and moves entries with setSessionUser', async () => {
      const { store, expireTime, members, exists } = await setup()
      const now = Date.now()
      await store.putLink('short', { ...record('s1', now, 150), userId: 'u1' })
      await store.putLink('long', { ...record('s2', now, 60_000), userId: 'u1' })
      expect(await expireTime('user-links:u1')).toBe(now + 60_000)
      expect(await members('user-links:u1')).toEqual(['long', 'short'])

      // Moving a session to another user moves its links to that user's index, with their expiry.
      expect(await store.setSessionUser('s2', 'u2')).toBe(1)
      expect(await members('user-links:u2')).toEqual(['long'])
      expect(await expireTime('user-links:u2')).toBe(now + 60_000)
      // u1's index now lives as long as its latest remaining link.
      expect(await members('user-links:u1')).toEqual(['short'])
      expect(await expireTime('user-links:u1')).toBe(now + 150)

      await gone(store, 'short')
      await expect.poll(() => exists('user-links:u1'), { timeout: 3000, interval: 25 }).toBe(0)
      expect(await store.userSessions('u1', Date.now())).toEqual([])
      expect(await store.userSessions('u2', Date.now())).toEqual(['s2'])
    })

    it('sweep drops index entries of links Redis expired, by their expiry, and nothing else', async () => {
      const { store, members } = await setup()
      const now = Date.now()
      await store.putLink('short', record('s1', now, 150))
      await store.putLink('long', record('s1', now, 60_000))
      await store.putLink('other-short', { ...record('s2', now, 150), userId: 'u1' })
      await store.putLink('other-long', { ...record('s3', now, 60_000), userId: 'u1' })
      await gone(store, 'short')
      await gone(store, 'other-short')
      expect(await members('session-links:s1')).toEqual(['long', 'short'])
      expect(await members('user-links:u1')).toEqual(['other-long', 'other-short'])

      expect(await store.sweep(Date.now())).toBe(2)
      expect(await members('session-links:s1')).toEqual(['long'])
      expect(await members('user-links:u1')).toEqual(['other-long'])
      expect(await store.sweep(Date.now())).toBe(0)
    })

    it('moves a link out of its old session index and user index when it is put or touched elsewhere', async () => {
      const { store, members } = await setup()
      const now = Date.now()
      await store.putLink('a', { ...record('s1', now), userId: 'u1' })
      await store.putLink('a', { ...record('s2', now), userId: 'u2' })
      expect(await members('session-links:s1')).toEqual([])
      expect(await members('user-links:u1')).toEqual([])
      await store.touchLink('a', 's3', now + 1)
      expect(await members('session-links:s2')).toEqual([])
      expect(await members('session-links:s3')).toEqual(['a'])
      expect(await members('user-links:u2')).toEqual(['a'])
    })

    it('keeps a link listed by the index of the session it names through concurrent moves', async () => {
      const { store, members } = await setup()
      const now = Date.now()
      for (let round = 0; round < 10; round++) {
        const hash = `moved${round}`
        await store.putLink(hash, record('s1', now))
        // Moves in every direction at once: whichever lands last, its session's index lists the link.
        await Promise.all(['s2', 's3', 's1', 's2', 's3'].map((to, i) => store.touchLink(hash, to, now + i)))
        const at = (await store.getLink(hash))!.sessionId
        expect(await members(`session-links:${at}`)).toContain(hash)
        expect(await store.revokeSession(at, now + 9)).toBe(1)
      }
    })

    it('is atomic across two connections: claims, codes, and each link revoked once by two revocations at once', async () => {
      const { store: a, prefix } = await setup()
      const otherClient = await backend.connect()
      clients.push(otherClient)
      const b = new RedisLinkStore({ client: otherClient, prefix })
      const now = Date.now()

      for (let round = 0; round < 10; round++) {
        const claims = await Promise.all([a, b, a, b].map((s) => s.claimCall(`k${round}`, 60_000, now)))
        expect(claims.filter((c) => c.state === 'new')).toHaveLength(1)

        await a.putRestoreCode(`c${round}`, { sessionId: 's', expiresAt: now + 60_000 })
        const takes = await Promise.all([a, b, b, a].map((s) => s.takeRestoreCode(`c${round}`, now)))
        expect(takes.filter((t) => t !== null)).toHaveLength(1)

        for (let i = 0; i < 20; i++) await a.putLink(`r${round}-${i}`, record(`from${round}`, now))
        const counts = await Promise.all([a.revokeSession(`from${round}`, now), b.revokeSession(`from${round}`, now + 1)])
        // Link by link, one of the two got there first: each link counted once, with its time.
        expect(counts[0]! + counts[1]!).toBe(20)
        const times = await Promise.all(Array.from({ length: 20 }, (_, i) => a.getLink(`r${round}-${i}`).then((r) => r?.revokedAt)))
        expect(times.filter((t) => t === now).length).toBe(counts[0])
        expect(times.filter((t) => t === now + 1).length).toBe(counts[1])
      }
    })

    it('sets Redis expiries on session tabs, streams and events', async () => {
      const { store, expireTime, exists } = await setup()
      const now = Date.now()
      const quota = { maxEvents: 10, maxBytes: 1000 }
      const ev = { event: 'e', args: [], bytes: 1 }

      await store.recordTabs([{ sessionId: 's1', tabId: 't1' }], now, 60_000)
      await store.recordTabs([{ sessionId: 's1', tabId: 't2' }], now, 120_000)
      await store.recordTabs([{ sessionId: 's1', tabId: 't2' }], now, 30_000)
      // The set lives as long as its latest tab, which is t1 once t2 was seen with a shorter window.
      expect(await expireTime('session-tabs:s1')).toBe(now + 60_000)

      // recordTabs started t1's (empty) stream for its window.
      expect(await expireTime('stream:{t1}')).toBe(now + 60_000)
      // Events live as long as their stream.
      await store.appendEvent('t1', ev, now + 10_000, quota, now)
      expect(await expireTime('stream:{t1}')).toBe(now + 60_000)
      expect(await expireTime('events:{t1}')).toBe(now + 60_000)
      await store.recordTabs([{ sessionId: 's1', tabId: 't1' }], now + 1000, 60_000)
      expect(await expireTime('stream:{t1}')).toBe(now + 61_000)
      expect(await expireTime('events:{t1}')).toBe(now + 60_000)
      await store.appendEvent('t1', ev, now + 20_000, quota, now)
      expect(await expireTime('stream:{t1}')).toBe(now + 61_000)
      expect(await expireTime('events:{t1}')).toBe(now + 61_000)

      // A refused append writes nothing, not even an empty stream.
      await expect(store.appendEvent('t9', { event: 'e', args: [], bytes: 5000 }, now + 10_000, quota, now)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' })
      expect(await exists('stream:{t9}')).toBe(0)
      expect(await exists('events:{t9}')).toBe(0)
    })

    it('forgets the byte total of events Redis dropped by itself, and keeps numbering', async () => {
      const { store, del } = await setup()
      const now = Date.now()
      const base = streamBase(now)
      const quota = { maxEvents: 10, maxBytes: 1000 }
      const ev = (n: number) => ({ event: 'e', args: [n], bytes: 400 })
      await store.appendEvent('t1', ev(1), now + 60_000, quota, now)
      await store.appendEvent('t1', ev(2), now + 60_000, quota, now)
      await expect(store.appendEvent('t1', ev(3), now + 60_000, quota, now)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' })

      // As when the events key expired or was evicted (maxmemory) while the stream lived on.
      await del('events:{t1}')
      expect(await store.readEvents('t1', base, now)).toEqual({ lastSeq: base + 2, gap: true, events: [] })
      expect(await store.appendEvent('t1', ev(3), now + 60_000, quota, now)).toBe(base + 3)
      expect(await store.appendEvent('t1', ev(4), now + 60_000, quota, now)).toBe(base + 4)
      await expect(store.appendEvent('t1', ev(5), now + 60_000, quota, now)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' })
    })

    it('is atomic across two connections: durable appends get consecutive numbers up to the quota', async () => {
      const { store: a, prefix } = await setup()
      const otherClient = await backend.connect()
      clients.push(otherClient)
      const b = new RedisLinkStore({ client: otherClient, prefix })
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
  })
}
