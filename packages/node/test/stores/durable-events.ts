import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { streamBase } from '@session-socket/protocol'
import type { LinkStore } from '../../src/link-store.js'

const MINUTE = 60_000

/**
 * Durable-event behaviour beyond `contract.ts` that the persistent stores keep their own
 * bookkeeping for (byte totals, stream expiry, serialised arguments). `make` returns an empty
 * store; `cleanup` runs after each test, even a failed one.
 *
 * @example
 * durableEventChecks('SqliteLinkStore', async () => ({ store: new SqliteLinkStore({ path }), cleanup: () => store.close() }))
 */
export function durableEventChecks(name: string, make: () => Promise<{ store: LinkStore; cleanup: () => Promise<void> }>): void {
  describe(`durable events: ${name}`, () => {
    let store: LinkStore
    let cleanup: (() => Promise<void>) | undefined
    let now: number
    /** streamBase(now): where streams started in a test number from. */
    let b: number

    beforeEach(async () => {
      const made = await make()
      store = made.store
      cleanup = made.cleanup
      now = Date.now()
      b = streamBase(now)
    })

    afterEach(async () => {
      const done = cleanup
      cleanup = undefined
      await done?.()
    })

    const ev = (n: number, bytes = 10) => ({ event: 'news', args: [n], bytes })

    it('counts only unexpired events against the quota', async () => {
      const quota = { maxEvents: 2, maxBytes: 1000 }
      await store.appendEvent('t1', ev(1), now + 1000, quota, now)
      await store.appendEvent('t1', ev(2), now + MINUTE, quota, now)
      await expect(store.appendEvent('t1', ev(3), now + MINUTE, quota, now + 999)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' })
      // An event at its expiry instant is expired, as everywhere else in the contract.
      expect(await store.appendEvent('t1', ev(3), now + MINUTE, quota, now + 1000)).toBe(b + 3)
      expect(await store.readEvents('t1', b, now + 1000)).toMatchObject({ lastSeq: b + 3, gap: true, events: [{ seq: b + 2 }, { seq: b + 3 }] })
    })

    it('gives back the bytes of acknowledged and expired events', async () => {
      const quota = { maxEvents: 100, maxBytes: 1000 }
      await store.appendEvent('t1', ev(1, 400), now + 1000, quota, now)
      await store.appendEvent('t1', ev(2, 400), now + MINUTE, quota, now)
      await expect(store.appendEvent('t1', ev(3, 400), now + MINUTE, quota, now)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' })
      await store.ackEvents('t1', b + 2)
      expect(await store.appendEvent('t1', ev(3, 400), now + 1500, quota, now)).toBe(b + 3)
      expect(await store.appendEvent('t1', ev(4, 600), now + MINUTE, quota, now)).toBe(b + 4)
      await expect(store.appendEvent('t1', ev(5, 1), now + MINUTE, quota, now)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' })
      // Event 3 expires: its 400 bytes are free again, event 4's 600 are still held.
      expect(await store.appendEvent('t1', ev(5, 400), now + MINUTE, quota, now + 2000)).toBe(b + 5)
      await expect(store.appendEvent('t1', ev(6, 1), now + MINUTE, quota, now + 2000)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' })
      expect((await store.readEvents('t1', b + 3, now + 2000)).events.map((e) => e.seq)).toEqual([b + 4, b + 5])
    })

    it('refuses one event larger than the byte quota without using a number', async () => {
      const quota = { maxEvents: 10, maxBytes: 100 }
      await expect(store.appendEvent('t1', ev(1, 101), now + MINUTE, quota, now)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' })
      expect(await store.readEvents('t1', 0, now)).toEqual({ lastSeq: 0, gap: false, events: [] })
      expect(await store.appendEvent('t1', ev(1, 100), now + MINUTE, quota, now)).toBe(b + 1)
    })

    it('keeps a tab\'s counter while the tab is seen, and forgets an unseen one with its events', async () => {
      const quota = { maxEvents: 10, maxBytes: 1000 }
      await store.appendEvent('seen', ev(1), now + 1000, quota, now)
      await store.appendEvent('unseen', ev(1), now + 1000, quota, now)
      expect(await store.recordTabs([{ sessionId: 's1', tabId: 'seen' }], now + 500, MINUTE)).toEqual([b + 1])

      expect(await store.readEvents('seen', b + 1, now + 2000)).toEqual({ lastSeq: b + 1, gap: false, events: [] })
      expect(await store.readEvents('seen', b, now + 2000)).toEqual({ lastSeq: b + 1, gap: true, events: [] })
      expect(await store.appendEvent('seen', ev(2), now + 2000 + MINUTE, quota, now + 2000)).toBe(b + 2)

      const later = streamBase(now + 2000)
      expect(await store.readEvents('unseen', b + 1, now + 2000)).toEqual({ lastSeq: 0, gap: true, events: [] })
      expect(await store.appendEvent('unseen', ev(2), now + 2000 + MINUTE, quota, now + 2000)).toBe(later + 1)
      expect(await store.readEvents('unseen', later, now + 2000)).toMatchObject({ lastSeq: later + 1, gap: false, events: [{ seq: later + 1, args: [2] }] })
    })

    it('starts a new, empty stream in a later block when a tab is seen after its stream expired', async () => {
      const quota = { maxEvents: 10, maxBytes: 1000 }
      await store.appendEvent('t1', ev(1), now + 1000, quota, now)
      const later = streamBase(now + 1000)
      expect(await store.recordTabs([{ sessionId: 's1', tabId: 't1' }], now + 1000, MINUTE)).toEqual([later])
      expect(later).toBeGreaterThan(b)
      expect(await store.readEvents('t1', b + 1, now + 1000)).toEqual({ lastSeq: later, gap: true, events: [] })
      expect(await store.readEvents('t1', later, now + 1000)).toEqual({ lastSeq: later, gap: false, events: [] })
      expect(await store.appendEvent('t1', ev(2), now + 1000 + MINUTE, quota, now + 1000)).toBe(later + 1)
      expect(await store.sessionTabs('s1', now + 1000)).toEqual(['t1'])
    })

    it('starts an empty stream for a tab seen for the first time', async () => {
      expect(await store.recordTabs([{ sessionId: 's1', tabId: 'fresh' }], now, MINUTE)).toEqual([b])
      expect(await store.readEvents('fresh', 0, now)).toEqual({ lastSeq: b, gap: true, events: [] })
      expect(await store.readEvents('fresh', b, now)).toEqual({ lastSeq: b, gap: false, events: [] })
      expect(await store.appendEvent('fresh', ev(1), now + MINUTE, { maxEvents: 10, maxBytes: 1000 }, now)).toBe(b + 1)
    })

    it('round-trips event names and arguments exactly', async () => {
      const quota = { maxEvents: 10, maxBytes: 1_000_000 }
      const args = [
        Number.MAX_SAFE_INTEGER,
        12345678901234567890,
        -0.1,
        1e-7,
        1.7976931348623157e308,
        '',
        'a:b:c:d',
        '😀 «ü» \u0000 \n',
        {},
        [],
        [[]],
        { nested: { list: [null, true, false, 0], 'key:with:colons': 'v' } },
        'x'.repeat(100_000),
      ]
      expect(await store.appendEvent('t1', { event: 'chat:message', args, bytes: 100 }, now + MINUTE, quota, now)).toBe(b + 1)
      expect(await store.appendEvent('t1', { event: 'empty', args: [], bytes: 10 }, now + MINUTE, quota, now)).toBe(b + 2)
      expect(await store.appendEvent('t1', { event: 'empty', args: [], bytes: 10 }, now + MINUTE, quota, now)).toBe(b + 3)
      expect(await store.readEvents('t1', b, now)).toEqual({
        lastSeq: b + 3,
        gap: false,
        events: [
          { seq: b + 1, event: 'chat:message', args, expiresAt: now + MINUTE },
          { seq: b + 2, event: 'empty', args: [], expiresAt: now + MINUTE },
          { seq: b + 3, event: 'empty', args: [], expiresAt: now + MINUTE },
        ],
      })
    })

    it('hands out consecutive numbers to concurrent appends up to the quota, and no more', async () => {
      const quota = { maxEvents: 4, maxBytes: 1000 }
      const results = await Promise.allSettled(Array.from({ length: 10 }, (_, n) => store.appendEvent('t1', ev(n), now + MINUTE, quota, now)))
      const seqs = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
      expect(seqs.sort((x, y) => x - y)).toEqual([b + 1, b + 2, b + 3, b + 4])
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'QUOTA_EXCEEDED' })
      expect((await store.readEvents('t1', b, now)).lastSeq).toBe(b + 4)
    })

    it('acks only the tab it is given, and an ack past the end forgets everything kept', async () => {
      const quota = { maxEvents: 10, maxBytes: 1000 }
      for (const n of [1, 2]) {
        await store.appendEvent('a', ev(n), now + MINUTE, quota, now)
        await store.appendEvent('b', ev(n), now + MINUTE, quota, now)
      }
      await store.ackEvents('a', b + 99)
      expect(await store.readEvents('a', b + 2, now)).toEqual({ lastSeq: b + 2, gap: false, events: [] })
      expect((await store.readEvents('b', b, now)).events.map((e) => e.seq)).toEqual([b + 1, b + 2])
      expect(await store.appendEvent('a', ev(3), now + MINUTE, quota, now)).toBe(b + 3)
    })

    const keyed = (n: number, key: string, bytes = 10) => ({ event: 'news', args: [n], bytes, key })

    it('appends an event of a key once per tab while the event lives, acknowledged or not', async () => {
      const quota = { maxEvents: 10, maxBytes: 1000 }
      expect(await store.appendEvent('t1', keyed(1, 'k1'), now + MINUTE, quota, now)).toBe(b + 1)
      expect(await store.appendEvent('t1', keyed(1, 'k1'), now + MINUTE, quota, now + 1)).toBe(b + 1)
      expect(await store.appendEvent('t2', keyed(1, 'k1'), now + MINUTE, quota, now)).toBe(b + 1)
      expect(await store.appendEvent('t1', keyed(2, 'k2'), now + MINUTE, quota, now)).toBe(b + 2)
      expect((await store.readEvents('t1', b, now)).events.map((e) => e.args)).toEqual([[1], [2]])
      // Acknowledged, the event is gone but its key is not: a late retry adds nothing.
      await store.ackEvents('t1', b + 2)
      expect(await store.appendEvent('t1', keyed(1, 'k1'), now + MINUTE, quota, now + 2)).toBe(b + 1)
      expect(await store.readEvents('t1', b + 2, now + 2)).toEqual({ lastSeq: b + 2, gap: false, events: [] })
      // Events without a key are never taken for one another.
      expect(await store.appendEvent('t1', ev(3), now + MINUTE, quota, now)).toBe(b + 3)
      expect(await store.appendEvent('t1', ev(3), now + MINUTE, quota, now)).toBe(b + 4)
    })

    it('forgets a key when its event expires', async () => {
      const quota = { maxEvents: 10, maxBytes: 1000 }
      await store.recordTabs([{ sessionId: 's1', tabId: 't1' }], now, 10 * MINUTE)
      expect(await store.appendEvent('t1', keyed(1, 'k1'), now + 1000, quota, now)).toBe(b + 1)
      expect(await store.appendEvent('t1', keyed(1, 'k1'), now + MINUTE, quota, now + 999)).toBe(b + 1)
      expect(await store.appendEvent('t1', keyed(1, 'k1'), now + MINUTE, quota, now + 1000)).toBe(b + 2)
    })

    it('checks no quota for a key appended already, and remembers no key of a refused append', async () => {
      const quota = { maxEvents: 1, maxBytes: 1000 }
      expect(await store.appendEvent('t1', keyed(1, 'k1'), now + MINUTE, quota, now)).toBe(b + 1)
      expect(await store.appendEvent('t1', keyed(1, 'k1'), now + MINUTE, quota, now)).toBe(b + 1)
      await expect(store.appendEvent('t1', keyed(2, 'k2'), now + MINUTE, quota, now)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' })
      await store.ackEvents('t1', b + 1)
      expect(await store.appendEvent('t1', keyed(2, 'k2'), now + MINUTE, quota, now)).toBe(b + 2)
    })

    it('forgets the keys of a stream that started anew', async () => {
      const quota = { maxEvents: 10, maxBytes: 1000 }
      await store.recordTabs([{ sessionId: 's1', tabId: 't1' }], now, 1000)
      expect(await store.appendEvent('t1', keyed(1, 'k1'), now + 1000, quota, now)).toBe(b + 1)
      const later = now + 5000
      await store.recordTabs([{ sessionId: 's1', tabId: 't1' }], later, MINUTE)
      expect(await store.appendEvent('t1', keyed(1, 'k1'), later + MINUTE, quota, later)).toBe(streamBase(later) + 1)
    })
  })
}
