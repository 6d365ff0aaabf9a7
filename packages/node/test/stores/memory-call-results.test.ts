import { describe, expect, it } from 'vitest'
import type { CallReply } from '@session-socket/protocol'
import { MemoryLinkStore } from '../../src/stores/memory.js'
import { MemoryCallResults } from '../../src/stores/memory-call-results.js'

const reply = (r: unknown): CallReply => ({ ok: true, r })
const MINUTE = 60_000

describe('MemoryCallResults', () => {
  it('should keep the latest maxResults replies, and at most twice as many', () => {
    const results = new MemoryCallResults(3)
    const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g']
    for (const key of keys) {
      expect(results.claim(key, MINUTE, 0)).toEqual({ state: 'new' })
      results.finish(key, reply(key), 10 * MINUTE, 0)
    }
    for (const key of ['g', 'f', 'e', 'd']) expect(results.claim(key, MINUTE, 1)).toEqual({ state: 'done', reply: reply(key) })
    // a, b and c went before their TTL: a resend of one of them runs again.
    expect(results.claim('c', MINUTE, 2)).toEqual({ state: 'new' })
    expect(results.claim('a', MINUTE, 2)).toEqual({ state: 'new' })
  })

  it('should drop the older generation without a sweep once all of it has expired', () => {
    const results = new MemoryCallResults(2)
    results.finish('a', reply('a'), 1000, 0)
    results.finish('b', reply('b'), 1000, 0)
    results.finish('c', reply('c'), 10_000, 0)
    expect(results.claim('a', MINUTE, 500)).toEqual({ state: 'done', reply: reply('a') })
    expect(results.claim('x', MINUTE, 2000)).toEqual({ state: 'new' })
    // a and b are gone already: the sweep finds nothing expired to delete.
    expect(results.sweep(2000)).toBe(0)
    expect(results.claim('c', MINUTE, 2000)).toEqual({ state: 'done', reply: reply('c') })
  })

  it('should treat an expired reply as new, and sweep it', () => {
    const results = new MemoryCallResults(100)
    results.finish('old', reply(1), 1000, 0)
    results.finish('live', reply(2), MINUTE, 0)
    expect(results.sweep(1000)).toBe(1)
    expect(results.claim('old', MINUTE, 1000)).toEqual({ state: 'new' })
    expect(results.claim('live', MINUTE, 1000)).toEqual({ state: 'done', reply: reply(2) })
  })

  it('should answer the reply of a call whose claim moved to the older generation while it ran', () => {
    const results = new MemoryCallResults(2)
    expect(results.claim('slow', MINUTE, 0)).toEqual({ state: 'new' })
    results.claim('b', MINUTE, 1)
    results.claim('c', MINUTE, 2)
    expect(results.claim('slow', MINUTE, 3)).toEqual({ state: 'pending' })
    results.finish('slow', reply('done at last'), MINUTE, 4)
    expect(results.claim('slow', MINUTE, 5)).toEqual({ state: 'done', reply: reply('done at last') })
    results.release('slow')
    expect(results.claim('slow', MINUTE, 6)).toEqual({ state: 'new' })
  })

  it('should not let an old entry of a key claimed again shadow its new claim', () => {
    const results = new MemoryCallResults(100)
    results.claim('k', MINUTE, 0)
    results.finish('k', reply('first'), 1000, 0)
    // Expired, claimed again (a resend after the TTL runs the call again), still running.
    expect(results.claim('k', MINUTE, 2000)).toEqual({ state: 'new' })
    expect(results.claim('k', MINUTE, 2002)).toEqual({ state: 'pending' })
    results.finish('k', reply('second'), 1000, 2003)
    expect(results.claim('k', MINUTE, 2500)).toEqual({ state: 'done', reply: reply('second') })
  })

  it('should stay bounded and correct across many calls', () => {
    const results = new MemoryCallResults(1000)
    for (let i = 0; i < 20_000; i++) {
      results.claim(`k${i}`, MINUTE, i)
      results.finish(`k${i}`, reply(i), 5000, i)
    }
    expect(results.claim('k19999', MINUTE, 20_000)).toEqual({ state: 'done', reply: reply(19_999) })
    expect(results.claim('k18000', MINUTE, 20_000)).toEqual({ state: 'done', reply: reply(18_000) })
    expect(results.claim('k17999', MINUTE, 20_000)).toEqual({ state: 'new' })
    // That claim filled the current generation: the older went, the 1,000 latest stay (expired
    // by 30 s), with the claim in a new one.
    expect(results.sweep(30_000)).toBe(1000)
    expect(results.claim('k17999', MINUTE, 30_000)).toEqual({ state: 'pending' })
  })

  it('should refuse a maxResults that is not a positive integer', () => {
    expect(() => new MemoryCallResults(0)).toThrow(/maxResults must be a positive integer/)
    expect(() => new MemoryLinkStore({ maxResults: 1.5 })).toThrow(/maxResults must be a positive integer/)
  })
})

describe('MemoryLinkStore call results', () => {
  it('should answer claims, finishes and releases at once, not with a promise', () => {
    const store = new MemoryLinkStore({ maxResults: 2 })
    expect(store.claimCall('k1', MINUTE, 0)).toEqual({ state: 'new' })
    expect(store.claimCall('k1', MINUTE, 1)).toEqual({ state: 'pending' })
    expect(store.finishCall('k1', reply(1), MINUTE, 2)).toBeUndefined()
    expect(store.claimCall('k1', MINUTE, 3)).toEqual({ state: 'done', reply: reply(1) })
    // maxResults 2: k1 stays until two generations of two came after it.
    for (const key of ['k2', 'k3', 'k4', 'k5']) store.finishCall(key, reply(key), MINUTE, 4)
    expect(store.claimCall('k1', MINUTE, 6)).toEqual({ state: 'new' })
    expect(store.claimCall('k9', MINUTE, 7)).toEqual({ state: 'new' })
    expect(store.releaseCall('k9')).toBeUndefined()
    expect(store.claimCall('k9', MINUTE, 8)).toEqual({ state: 'new' })
  })
})
