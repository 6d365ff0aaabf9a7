import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { streamBase, type CallReply } from '@session-socket/protocol'
import type { LinkRecord, LinkStore } from '../../src/link-store.js'

/** What a store does differently from the in-memory reference, where the contract allows it. */
export interface StoreTraits {
  /**
   * The backend drops expired entries by itself (Redis TTLs): `getLink` may return null for a
   * record past `expiresAt` before any sweep, and `sweep` counts only what was left to do.
   * @default false
   */
  expiresByItself?: boolean
}

const MINUTE = 60_000

function link(sessionId: string, now: number, extra: Partial<LinkRecord> = {}): LinkRecord {
  return { sessionId, createdAt: now - 1000, lastSeenAt: now - 500, expiresAt: now + 10 * MINUTE, ...extra }
}

/**
 * Registers the behaviour every `LinkStore` must have. `make` is called before each test and
 * must return an empty store; `cleanup` runs after each test, even a failed one.
 *
 * @example
 * linkStoreContract('MemoryLinkStore', async () => ({ store: new MemoryLinkStore(), cleanup: async () => {} }))
 */
export function linkStoreContract(
  name: string,
  make: () => Promise<{ store: LinkStore; cleanup: () => Promise<void> }>,
  traits: StoreTraits = {},
): void {
  describe(`LinkStore contract: ${name}`, () => {
    let store: LinkStore
    let cleanup: (() => Promise<void>) | undefined
    let now: number

    beforeEach(async () => {
      const made = await make()
      store = made.store
      cleanup = made.cleanup
      now = Date.now()
    })

    afterEach(async () => {
      const done = cleanup
      cleanup = undefined
      await done?.()
    })

    describe('links', () => {
      it('round-trips a record and hands out copies, not live references', async () => {
        const record = link('s1', now)
        await store.putLink('h1', record)
        record.sessionId = 'changed-after-put'

        const got = await store.getLink('h1')
        expect(got).toEqual(link('s1', now))
        expect(got).not.toHaveProperty('revokedAt')
        got!.sessionId = 'changed-after-get'
        got!.revokedAt = now
        expect(await store.getLink('h1')).toEqual(link('s1', now))
      })

      it('keeps replacedAt when a rotated record is put', async () => {
        await store.putLink('h1', link('s1', now, { replacedAt: now - 50 }))
        expect(await store.getLink('h1')).toEqual(link('s1', now, { replacedAt: now - 50 }))
      })

      it('keeps the successor and predecessor of rotated records', async () => {
        await store.putLink('h1', link('s1', now, { replacedAt: now - 50, successor: 'h2' }))
        await store.putLink('h2', link('s1', now, { predecessor: 'h1' }))
        expect(await store.getLink('h1')).toEqual(link('s1', now, { replacedAt: now - 50, successor: 'h2' }))
        expect(await store.getLink('h2')).toEqual(link('s1', now, { predecessor: 'h1' }))
        await store.putLink('h1', link('s1', now))
        expect(await store.getLink('h1')).not.toHaveProperty('successor')
      })

      it('keeps revokedAt when a revoked record is put', async () => {
        await store.putLink('h1', link('s1', now, { revokedAt: now - 100 }))
        expect(await store.getLink('h1')).toEqual(link('s1', now, { revokedAt: now - 100 }))
      })

      it('overwrites a record with the same hash, session index included', async () => {
        await store.putLink('h1', link('s1', now))
        await store.putLink('h1', link('s2', now, { lastSeenAt: now }))
        expect(await store.getLink('h1')).toEqual(link('s2', now, { lastSeenAt: now }))
        expect(await store.revokeSession('s1', now)).toBe(0)
        expect(await store.revokeSession('s2', now)).toBe(1)
      })

      it('touchLink moves the token to another session and records lastSeenAt', async () => {
        await store.putLink('h1', link('s1', now))
        await store.touchLink('h1', 's2', now + 5)
        expect(await store.getLink('h1')).toEqual(link('s2', now, { lastSeenAt: now + 5 }))
        expect(await store.revokeSession('s1', now + 6)).toBe(0)
        expect(await store.revokeSession('s2', now + 6)).toBe(1)
        expect((await store.getLink('h1'))?.revokedAt).toBe(now + 6)
      })

      it('touchLink within the same session only records lastSeenAt', async () => {
        await store.putLink('h1', link('s1', now))
        await store.touchLink('h1', 's1', now + 5)
        expect(await store.getLink('h1')).toEqual(link('s1', now, { lastSeenAt: now + 5 }))
        expect(await store.revokeSession('s1', now)).toBe(1)
      })

      it('revokeLink marks one token and keeps the first revocation time', async () => {
        await store.putLink('h1', link('s1', now))
        await store.putLink('h2', link('s1', now))
        await store.revokeLink('h1', now + 1)
        await store.revokeLink('h1', now + 2)
        expect((await store.getLink('h1'))?.revokedAt).toBe(now + 1)
        expect((await store.getLink('h2'))?.revokedAt).toBeUndefined()
      })

      it('revokeSession marks every live token of the session and counts only those', async () => {
        await store.putLink('a', link('s1', now))
        await store.putLink('b', link('s1', now))
        await store.putLink('c', link('s1', now))
        await store.putLink('other', link('s2', now))
        await store.revokeLink('c', now + 1)

        expect(await store.revokeSession('s1', now + 2)).toBe(2)
        expect((await store.getLink('a'))?.revokedAt).toBe(now + 2)
        expect((await store.getLink('b'))?.revokedAt).toBe(now + 2)
        expect((await store.getLink('c'))?.revokedAt).toBe(now + 1)
        expect((await store.getLink('other'))?.revokedAt).toBeUndefined()
        expect(await store.revokeSession('s1', now + 3)).toBe(0)
        expect((await store.getLink('a'))?.revokedAt).toBe(now + 2)
      })

      it('touchLink twice keeps the session index consistent', async () => {
        await store.putLink('a', link('s1', now))
        await store.touchLink('a', 's2', now + 1)
        await store.touchLink('a', 's3', now + 2)
        expect(await store.revokeSession('s1', now + 3)).toBe(0)
        expect(await store.revokeSession('s2', now + 3)).toBe(0)
        expect(await store.revokeSession('s3', now + 3)).toBe(1)
      })
    })

    describe('users', () => {
      const sorted = async (sessions: Promise<string[]>) => (await sessions).sort()

      it('round-trips the userId of a link, and leaves it out when there is none', async () => {
        await store.putLink('h1', link('s1', now, { userId: 'u1' }))
        await store.putLink('h2', link('s2', now))
        expect(await store.getLink('h1')).toEqual(link('s1', now, { userId: 'u1' }))
        expect(await store.getLink('h2')).not.toHaveProperty('userId')
      })

      it('userSessions lists each session of the user once, revoked links included, expired ones not', async () => {
        await store.putLink('a', link('s1', now, { userId: 'u1' }))
        await store.putLink('b', link('s1', now, { userId: 'u1' }))
        await store.putLink('revoked', link('s2', now, { userId: 'u1', revokedAt: now - 1 }))
        await store.putLink('expired', link('s3', now, { userId: 'u1', expiresAt: now }))
        await store.putLink('anonymous', link('s4', now))
        await store.putLink('other', link('s5', now, { userId: 'u2' }))
        expect(await sorted(store.userSessions('u1', now))).toEqual(['s1', 's2'])
        expect(await store.userSessions('u2', now)).toEqual(['s5'])
        expect(await store.userSessions('nobody', now)).toEqual([])
        expect(await store.userSessions('u1', now + 10 * MINUTE)).toEqual([])
      })

      it('setSessionUser names the user of every link of the session, revoked ones too, and counts the changes', async () => {
        await store.putLink('a', link('s1', now, { userId: 'u1' }))
        await store.putLink('b', link('s1', now))
        await store.putLink('revoked', link('s1', now, { revokedAt: now - 1 }))
        await store.putLink('c', link('s2', now, { userId: 'u1' }))

        expect(await store.setSessionUser('s1', 'u2')).toBe(3)
        for (const hash of ['a', 'b', 'revoked']) expect((await store.getLink(hash))?.userId).toBe('u2')
        expect(await store.userSessions('u1', now)).toEqual(['s2'])
        expect(await store.userSessions('u2', now)).toEqual(['s1'])
        expect(await store.setSessionUser('s1', 'u2')).toBe(0)

        expect(await store.setSessionUser('s1', null)).toBe(3)
        expect(await store.getLink('a')).toEqual(link('s1', now))
        expect(await store.userSessions('u2', now)).toEqual([])
        expect(await store.setSessionUser('s1', null)).toBe(0)
        expect(await store.userSessions('u1', now)).toEqual(['s2'])
      })

      it('putLink over a link of another user moves the link to the new user', async () => {
        await store.putLink('a', link('s1', now, { userId: 'u1' }))
        await store.putLink('a', link('s1', now, { userId: 'u2' }))
        expect(await store.userSessions('u1', now)).toEqual([])
        expect(await store.userSessions('u2', now)).toEqual(['s1'])
        await store.putLink('a', link('s1', now))
        expect(await store.userSessions('u2', now)).toEqual([])
        expect(await store.setSessionUser('s1', null)).toBe(0)
      })

      it('touchLink keeps the user, and userSessions follows the link', async () => {
        await store.putLink('a', link('s1', now, { userId: 'u1' }))
        await store.touchLink('a', 's2', now + 1)
        expect(await store.userSessions('u1', now)).toEqual(['s2'])
        await store.touchLink('a', 's3', now + 2)
        expect(await store.userSessions('u1', now)).toEqual(['s3'])
        expect((await store.getLink('a'))?.userId).toBe('u1')
        expect(await store.setSessionUser('s1', 'u9')).toBe(0)
        expect(await store.setSessionUser('s3', 'u9')).toBe(1)
        expect(await store.userSessions('u9', now)).toEqual(['s3'])
      })

      it('sweep forgets the users of expired links', async () => {
        await store.putLink('old', link('s1', now, { userId: 'u1', createdAt: now - 2 * MINUTE, expiresAt: now - MINUTE }))
        await store.putLink('live', link('s2', now, { userId: 'u1' }))
        const removed = await store.sweep(now)
        if (!traits.expiresByItself) expect(removed).toBe(1)
        expect(await store.getLink('old')).toBeNull()
        expect(await store.userSessions('u1', now - 2 * MINUTE)).toEqual(['s2'])
        expect(await store.sweep(now)).toBe(0)
      })
    })

    describe('restore codes', () => {
      it('gives a code once', async () => {
        await store.putRestoreCode('c1', { sessionId: 's1', expiresAt: now + MINUTE })
        expect(await store.takeRestoreCode('c1', now)).toEqual({ sessionId: 's1', expiresAt: now + MINUTE })
        expect(await store.takeRestoreCode('c1', now)).toBeNull()
      })

      it('gives a code to exactly one of concurrent takers', async () => {
        for (let round = 0; round < 5; round++) {
          await store.putRestoreCode(`c${round}`, { sessionId: 's1', expiresAt: now + MINUTE })
          const takes = await Promise.all(Array.from({ length: 8 }, () => store.takeRestoreCode(`c${round}`, now)))
          expect(takes.filter((t) => t !== null)).toHaveLength(1)
        }
      })

      it('returns null for an expired code, and the code is gone', async () => {
        await store.putRestoreCode('c1', { sessionId: 's1', expiresAt: now + MINUTE })
        expect(await store.takeRestoreCode('c1', now + 2 * MINUTE)).toBeNull()
        expect(await store.takeRestoreCode('c1', now)).toBeNull()
        expect(await store.takeRestoreCode('c1', now + MINUTE)).toBeNull()
      })

      it('treats a code at its expiry instant as expired', async () => {
        await store.putRestoreCode('c1', { sessionId: 's1', expiresAt: now + MINUTE })
        expect(await store.takeRestoreCode('c1', now + MINUTE)).toBeNull()
      })
    })

    describe('call results', () => {
      const reply: CallReply = { ok: true, r: { total: 3, items: ['a', 'b'], nested: { n: null } } }
      const failure: CallReply = { ok: false, e: { code: 'RATE_LIMITED', message: 'slow down', retryAfter: 500 } }

      it('goes new → pending → done', async () => {
        expect(await store.claimCall('k1', MINUTE, now)).toEqual({ state: 'new' })
        expect(await store.claimCall('k1', MINUTE, now + 1)).toEqual({ state: 'pending' })
        await store.finishCall('k1', reply, MINUTE, now + 2)
        expect(await store.claimCall('k1', MINUTE, now + 3)).toEqual({ state: 'done', reply })
        await store.finishCall('k2', failure, MINUTE, now)
        expect(await store.claimCall('k2', MINUTE, now + 1)).toEqual({ state: 'done', reply: failure })
      })

      it('lets exactly one of concurrent claims run the call', async () => {
        for (let round = 0; round < 5; round++) {
          const claims = await Promise.all(Array.from({ length: 8 }, () => store.claimCall(`k${round}`, MINUTE, now)))
          expect(claims.filter((c) => c.state === 'new')).toHaveLength(1)
          expect(claims.filter((c) => c.state === 'pending')).toHaveLength(7)
        }
      })

      it('treats an expired result or claim as new', async () => {
        await store.finishCall('done', reply, 1000, now)
        expect(await store.claimCall('done', MINUTE, now + 2000)).toEqual({ state: 'new' })
        expect(await store.claimCall('done', MINUTE, now + 2001)).toEqual({ state: 'pending' })

        expect(await store.claimCall('stuck', 1000, now)).toEqual({ state: 'new' })
        expect(await store.claimCall('stuck', 1000, now + 1000)).toEqual({ state: 'new' })
      })

      it("gives a pending claim back to its owner as new, with a fresh lease, and keeps it pending for anyone else", async () => {
        expect(await store.claimCall('k1', 1000, now, 'node-a')).toEqual({ state: 'new' })
        expect(await store.claimCall('k1', 1000, now + 1, 'node-b')).toEqual({ state: 'pending' })
        expect(await store.claimCall('k1', 1000, now + 2)).toEqual({ state: 'pending' })
        // Its owner, whose answer to the first claim was lost, takes it back.
        expect(await store.claimCall('k1', 1000, now + 500, 'node-a')).toEqual({ state: 'new' })
        // With a fresh lease: still pending for another owner after the first one's end.
        expect(await store.claimCall('k1', 1000, now + 1200, 'node-b')).toEqual({ state: 'pending' })
        // A done call is done for its owner too.
        await store.finishCall('k1', reply, MINUTE, now + 1300)
        expect(await store.claimCall('k1', MINUTE, now + 1400, 'node-a')).toEqual({ state: 'done', reply })
        // A claim taken without an owner is nobody's.
        expect(await store.claimCall('k2', MINUTE, now)).toEqual({ state: 'new' })
        expect(await store.claimCall('k2', MINUTE, now + 1, 'node-a')).toEqual({ state: 'pending' })
      })

      it('lets exactly one of concurrent claims of different owners run the call', async () => {
        const claims = await Promise.all(Array.from({ length: 8 }, (_, n) => store.claimCall('k-owners', MINUTE, now, `node-${n}`)))
        expect(claims.filter((c) => c.state === 'new')).toHaveLength(1)
      })

      it('releaseCall makes a claimed key new again', async () => {
        expect(await store.claimCall('k1', MINUTE, now)).toEqual({ state: 'new' })
        await store.releaseCall('k1')
        expect(await store.claimCall('k1', MINUTE, now + 1)).toEqual({ state: 'new' })
        expect(await store.claimCall('k1', MINUTE, now + 2)).toEqual({ state: 'pending' })
      })
    })

    describe('sweep', () => {
      it('deletes expired links, codes and results and leaves live ones', async () => {
        const past = now - MINUTE
        await store.putLink('old', link('s1', now, { createdAt: past - 1000, expiresAt: past }))
        await store.putLink('live', link('s1', now))
        await store.putRestoreCode('old', { sessionId: 's1', expiresAt: past })
        await store.putRestoreCode('live', { sessionId: 's1', expiresAt: now + MINUTE })
        await store.finishCall('old', { ok: true, r: 1 }, 1000, past - 1000)
        await store.finishCall('live', { ok: true, r: 2 }, MINUTE, now)

        if (!traits.expiresByItself) {
          // The contract: an expired record is still returned until swept; callers judge it.
          expect(await store.getLink('old')).toEqual(link('s1', now, { createdAt: past - 1000, expiresAt: past }))
        }

        const removed = await store.sweep(now)
        if (traits.expiresByItself) {
          expect(removed).toBeGreaterThanOrEqual(0)
          expect(removed).toBeLessThanOrEqual(3)
        } else {
          expect(removed).toBe(3)
        }

        expect(await store.getLink('old')).toBeNull()
        expect(await store.getLink('live')).toEqual(link('s1', now))
        expect(await store.revokeSession('s1', now)).toBe(1)
        expect(await store.takeRestoreCode('old', past - 1)).toBeNull()
        expect(await store.takeRestoreCode('live', now)).toEqual({ sessionId: 's1', expiresAt: now + MINUTE })
        expect(await store.claimCall('live', MINUTE, now)).toEqual({ state: 'done', reply: { ok: true, r: 2 } })
        expect(await store.claimCall('old', MINUTE, now)).toEqual({ state: 'new' })

        expect(await store.sweep(now)).toBe(0)
      })
    })

    describe('durable events', () => {
      const quota = { maxEvents: 3, maxBytes: 1000 }
      const ev = (n: number) => ({ event: 'news', args: [n], bytes: 10 })

      it('numbers a new stream from streamBase(now) + 1 and reads events back in order after a seq', async () => {
        const b = streamBase(now)
        expect(await store.appendEvent('t1', ev(1), now + MINUTE, quota, now)).toBe(b + 1)
        expect(await store.appendEvent('t1', ev(2), now + MINUTE, quota, now)).toBe(b + 2)
        expect(await store.appendEvent('t2', ev(9), now + MINUTE, quota, now)).toBe(b + 1)
        const read = await store.readEvents('t1', b, now)
        expect(read).toEqual({
          lastSeq: b + 2,
          gap: false,
          events: [
            { seq: b + 1, event: 'news', args: [1], expiresAt: now + MINUTE },
            { seq: b + 2, event: 'news', args: [2], expiresAt: now + MINUTE },
          ],
        })
        expect((await store.readEvents('t1', b + 1, now)).events.map((e) => e.seq)).toEqual([b + 2])
        expect(await store.readEvents('t1', b + 2, now)).toEqual({ lastSeq: b + 2, gap: false, events: [] })
      })

      it('gives consecutive numbers to concurrent appends', async () => {
        const b = streamBase(now)
        const seqs = await Promise.all([1, 2, 3].map((n) => store.appendEvent('t1', ev(n), now + MINUTE, { maxEvents: 10, maxBytes: 1000 }, now)))
        expect(seqs.sort()).toEqual([b + 1, b + 2, b + 3])
      })

      it('forgets acknowledged events but keeps counting', async () => {
        const b = streamBase(now)
        for (const n of [1, 2, 3]) await store.appendEvent('t1', ev(n), now + MINUTE, quota, now)
        await store.ackEvents('t1', b + 2)
        expect(await store.readEvents('t1', b + 2, now)).toMatchObject({ lastSeq: b + 3, gap: false, events: [{ seq: b + 3 }] })
        expect(await store.appendEvent('t1', ev(4), now + MINUTE, quota, now)).toBe(b + 4)
      })

      it('refuses an event over the count or byte quota with QUOTA_EXCEEDED and uses no number', async () => {
        const b = streamBase(now)
        for (const n of [1, 2, 3]) await store.appendEvent('t1', ev(n), now + MINUTE, quota, now)
        await expect(store.appendEvent('t1', ev(4), now + MINUTE, quota, now)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' })
        await expect(store.appendEvent('t2', { event: 'big', args: [], bytes: 2000 }, now + MINUTE, quota, now)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' })
        await store.ackEvents('t1', b + 1)
        expect(await store.appendEvent('t1', ev(4), now + MINUTE, quota, now)).toBe(b + 4)
        expect(await store.appendEvent('t2', ev(1), now + MINUTE, quota, now)).toBe(b + 1)
      })

      it('reports a gap when events after the tab\'s seq expired', async () => {
        const b = streamBase(now)
        await store.appendEvent('t1', ev(1), now + 1000, quota, now)
        await store.appendEvent('t1', ev(2), now + MINUTE, quota, now)
        const read = await store.readEvents('t1', b, now + 2000)
        expect(read).toMatchObject({ lastSeq: b + 2, gap: true, events: [{ seq: b + 2 }] })
        expect(await store.readEvents('t1', b + 1, now + 2000)).toMatchObject({ gap: false })
      })

      it('starts a new stream in a later block after the old one expired', async () => {
        await store.appendEvent('t1', ev(1), now + 1000, quota, now)
        const later = now + 5 * MINUTE
        const seq = await store.appendEvent('t1', ev(2), later + MINUTE, quota, later)
        expect(seq).toBe(streamBase(later) + 1)
        expect(seq).toBeGreaterThan(streamBase(now) + 1_000_000)
      })

      it('reports a gap when the tab is ahead of what the store knows (the store forgot the stream)', async () => {
        expect(await store.readEvents('unknown-tab', 5, now)).toEqual({ lastSeq: 0, gap: true, events: [] })
        expect(await store.readEvents('unknown-tab', 0, now)).toEqual({ lastSeq: 0, gap: false, events: [] })
      })

      it('lists the tabs of a session seen within their window', async () => {
        await store.recordTabs([{ sessionId: 's1', tabId: 'a' }], now, MINUTE)
        await store.recordTabs([{ sessionId: 's1', tabId: 'b' }], now - 2 * MINUTE, MINUTE)
        await store.recordTabs([{ sessionId: 's2', tabId: 'c' }], now, MINUTE)
        expect((await store.sessionTabs('s1', now)).sort()).toEqual(['a'])
        await store.recordTabs([{ sessionId: 's1', tabId: 'b' }], now, MINUTE)
        expect((await store.sessionTabs('s1', now)).sort()).toEqual(['a', 'b'])
        expect(await store.sessionTabs('nobody', now)).toEqual([])
      })

      it('records a batch of tabs in one call and answers each entry\'s last seq, in order', async () => {
        const b = streamBase(now)
        await store.appendEvent('old', ev(1), now + MINUTE, quota, now)
        await store.appendEvent('old', ev(2), now + MINUTE, quota, now)
        const batch = [
          { sessionId: 's1', tabId: 'fresh' },
          { sessionId: 's1', tabId: 'old' },
          { sessionId: 's2', tabId: 'other' },
          // The same tab twice in one batch (a disconnect and a register in one turn) is fine.
          { sessionId: 's1', tabId: 'fresh' },
        ]
        expect(await store.recordTabs(batch, now, MINUTE)).toEqual([b, b + 2, b, b])
        expect((await store.sessionTabs('s1', now)).sort()).toEqual(['fresh', 'old'])
        expect(await store.sessionTabs('s2', now)).toEqual(['other'])
        expect(await store.readEvents('fresh', b, now)).toEqual({ lastSeq: b, gap: false, events: [] })
        expect((await store.readEvents('old', b, now)).events.map((e) => e.seq)).toEqual([b + 1, b + 2])
        expect(await store.appendEvent('fresh', ev(3), now + MINUTE, quota, now)).toBe(b + 1)
        expect(await store.recordTabs([{ sessionId: 's1', tabId: 'fresh' }], now + 1, MINUTE)).toEqual([b + 1])
      })

      it('records a batch as large as a reconnect storm sends', async () => {
        const b = streamBase(now)
        const batch = Array.from({ length: 600 }, (_, n) => ({ sessionId: `s${n % 50}`, tabId: `t${n}` }))
        const lastSeqs = await store.recordTabs(batch, now, MINUTE)
        expect(lastSeqs).toHaveLength(600)
        expect(new Set(lastSeqs)).toEqual(new Set([b]))
        expect(await store.sessionTabs('s7', now)).toHaveLength(12)
        expect(await store.readEvents('t599', b, now)).toEqual({ lastSeq: b, gap: false, events: [] })
      })

      it('answers an empty batch with an empty list', async () => {
        expect(await store.recordTabs([], now, MINUTE)).toEqual([])
        expect(await store.sweep(now)).toBe(0)
      })

      it('ignores acks for unknown tabs', async () => {
        await store.ackEvents('nope', 10)
        expect(await store.readEvents('nope', 0, now)).toEqual({ lastSeq: 0, gap: false, events: [] })
      })
    })

    describe('unknown ids', () => {
      it('are no-ops', async () => {
        await store.touchLink('nope', 's1', now)
        await store.revokeLink('nope', now)
        expect(await store.getLink('nope')).toBeNull()
        expect(await store.revokeSession('nope', now)).toBe(0)
        expect(await store.setSessionUser('nope', 'u1')).toBe(0)
        expect(await store.userSessions('u1', now)).toEqual([])
        expect(await store.revokeSession('s2', now)).toBe(0)
        expect(await store.takeRestoreCode('nope', now)).toBeNull()
        await store.releaseCall('nope')
        expect(await store.claimCall('nope', MINUTE, now)).toEqual({ state: 'new' })
        expect(await store.sweep(now)).toBe(0)
      })
    })
  })
}
