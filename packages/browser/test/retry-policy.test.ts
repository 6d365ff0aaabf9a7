import { describe, expect, it } from 'vitest'
import { ERROR_CODES, defaultBackoff } from '@session-socket/browser'
import { RETRIED_CALL_CODES } from '../src/retry-policy.js'

/** `defaultBackoff(attempt)` drawn many times. */
const draws = (attempt: number) => Array.from({ length: 200 }, () => defaultBackoff(attempt))

describe('defaultBackoff', () => {
  it.each([
    [0, 500],
    [1, 1000],
    [3, 4000],
    [5, 16_000],
  ])('should wait between half and all of the exponential delay on attempt %i (%i ms)', (attempt, base) => {
    for (const delay of draws(attempt)) {
      expect(delay).toBeGreaterThanOrEqual(base / 2)
      expect(delay).toBeLessThanOrEqual(base)
    }
  })

  it('should never wait more than 30 s, however many attempts failed', () => {
    for (const attempt of [6, 20, 1000, Number.MAX_SAFE_INTEGER]) {
      for (const delay of draws(attempt)) {
        expect(delay).toBeGreaterThanOrEqual(15_000)
        expect(delay).toBeLessThanOrEqual(30_000)
      }
    }
  })

  it('should spread the tabs that retry at once (jitter)', () => {
    expect(new Set(draws(4)).size).toBeGreaterThan(50)
  })
})

describe('RETRIED_CALL_CODES', () => {
  it('should retry only codes the protocol says a client may retry', () => {
    for (const code of RETRIED_CALL_CODES) expect(ERROR_CODES[code].retryable).toBe(true)
  })
})
