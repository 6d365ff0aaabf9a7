import { describe, expect, it } from 'vitest'
import type { CallReply } from '@session-socket/protocol'
import { MemoryLinkStore } from '../../src/stores/memory.js'
import { MemoryCallResults } from '../../src/stores/memory-call-results.js'

const reply = (r: unknown): CallReply => ({ ok: true, r })
const MINUTE = 60_000

describe('MemoryCallResults', () => {
  it('should forget a reply at its expiry as new calls come, without a sweep', () => {
    const results = new MemoryCallResults(100)
    results.claim('a', MINUTE, 0)
    results.finish('a', reply(1), 1000, 10)
    results.claim('b', MINUTE, 500)
    results.finish('b', reply(2), 1000, 600)
    expect(results.claim('a', MINUTE, 900)).toEqual({ state: 'done', reply: reply(1) })
    // A later call at 1,100 ms pops a (expired at 1,010), not b (1,600).
    expect(results.claim('c', MINUTE, 1100)).toEqual({ state: 'new' })
    expect(results.sweep(1100)).toBe(0)
    expect(results.claim('b', MINUTE, 1100)).toEqual({ state: 'done', reply: reply(2) })
  })

  it('should keep at most maxResults replies, forgetting the oldest first', () => {
    const results = new MemoryCallResults(3)
    for (const key of ['a', 'b', 'c', 'd', 'e']) {
      expect(results.claim(key, MINUTE, 0)).toEqual({ state: 'new' })
      results.finish(key, reply(key), 10 * MINUTE, 0)
    }
    expect(results.claim('c', MINUTE, 1)).toEqual({ state: 'done', reply: reply('c') })
    expect(results.claim('e', MINUTE, 1)).toEqual({ state: 'done', reply: reply('e') })
    // a and b went early: a resend of them would run again.
    expect(results.claim('a', MINUTE, 1)).toEqual({ state: 'new' })
    expect(results.claim('b', MINUTE, 1)).toEqual({ state: 'new' })
  })

  it('should not let the old queue place of a key claimed again drop its new claim', () => {
    const results = new MemoryCallResults(100)
    results.claim('k', MINUTE, 0)
    results.finish('k', reply('first'), 1000, 0)
    // Expired, claimed again (a resend after the TTL runs the call again), still running.
    expect(results.claim('k', MINUTE, 2000)).toEqual({ state: 'new' })
    expect(results.claim('other', MINUTE, 2001)).toEqual({ state: 'new' })
    expect(results.claim('k', MINUTE, 2002)).toEqual({ state: 'pending' })
    results.finish('k', reply('second'), 1000, 2003)
    expect(results.claim('k', MINUTE, 2500)).toEqual({ state: 'done', reply: reply('second') })
  })

  it('should stay correct across many calls (its queue is compacted as it goes)', () => {
    const results = new MemoryCallResults(1000)
    for (let i = 0; i < 20_000; i++) {
      results.claim(`k${i}`, MINUTE, i)
      results.finish(`k${i}`, reply(i), 5000, i)
    }
    // Replies live 5 s and at most 1,000 are kept: the last 1,000.
    expect(results.claim('k18999', MINUTE, 20_000)).toEqual({ state: 'new' })
    expect(results.claim('k19000', MINUTE, 20_000)).toEqual({ state: 'done', reply: reply(19_000) })
    expect(results.claim('k19999', MINUTE, 20_000)).toEqual({ state: 'done', reply: reply(19_999) })
    // Nothing else is left behind: at 30 s the 1,000 replies are expired, the new claim is not.
    expect(results.sweep(30_000)).toBe(1000)
    expect(results.claim('k18999', MINUTE, 30_000)).toEqual({ state: 'pending' })
  })

  it('should refuse a maxResults that is not a positive integer', () => {
    expect(() => new MemoryCallResults(0)).toThrow(/maxResults must be a positive integer/)
    expect(() => new MemoryLinkStore({ maxResults: 1.5 })).toThrow(/maxResults must be a positive integer/)
  })
})

describe('MemoryLinkStore call results', () => {
  it('should answer claims at once through claimCallSync, and the same as claimCall', async () => {
    const store = new MemoryLinkStore({ maxResults: 2 })
    expect(store.claimCallSync('k1', MINUTE, 0)).toEqual({ state: 'new' })
    expect(await store.claimCall('k1', MINUTE, 1)).toEqual({ state: 'pending' })
    store.finishCallSync('k1', reply(1), MINUTE, 2)
    expect(await store.claimCall('k1', MINUTE, 3)).toEqual({ state: 'done', reply: reply(1) })
    await store.finishCall('k2', reply(2), MINUTE, 4)
    await store.finishCall('k3', reply(3), MINUTE, 5)
    expect(store.claimCallSync('k1', MINUTE, 6)).toEqual({ state: 'new' })
  })
})
