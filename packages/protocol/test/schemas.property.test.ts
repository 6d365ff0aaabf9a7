import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { PROTOCOL_VERSION, SessionSocketError, parseCall, parseRegister } from '@session-socket/protocol'

const urlSafeChar = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-')
const urlSafe = (minLength: number, maxLength: number) => fc.string({ unit: urlSafeChar, minLength, maxLength })

/** Any decoder outcome other than a value or a typed error is a bug. */
function outcome(fn: () => unknown): 'ok' | string {
  try {
    fn()
    return 'ok'
  } catch (err) {
    if (!(err instanceof SessionSocketError)) throw err
    return err.code
  }
}

describe('register decoder (property)', () => {
  it('should accept every well-formed register', () => {
    fc.assert(
      fc.property(fc.option(urlSafe(16, 128)), urlSafe(1, 64), (token, tabId) => {
        expect(parseRegister({ v: PROTOCOL_VERSION, token, tabId })).toEqual({ v: PROTOCOL_VERSION, token, tabId })
      }),
    )
  })

  it('should answer anything else with BAD_REQUEST or UNSUPPORTED_VERSION, never throw otherwise', () => {
    fc.assert(
      fc.property(fc.anything({ withObjectString: true, withNullPrototype: true, withTypedArray: true, withMap: true, withSet: true }), (value) => {
        const result = outcome(() => parseRegister(value))
        expect(['ok', 'BAD_REQUEST', 'UNSUPPORTED_VERSION']).toContain(result)
      }),
      { numRuns: 2000 },
    )
  })

  it('should never let an extra key through', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }).filter((k) => !['v', 'token', 'tabId', 'seq'].includes(k)), fc.jsonValue(), (key, value) => {
        const input = JSON.parse(JSON.stringify({ v: PROTOCOL_VERSION, token: null, tabId: 't' }))
        Object.defineProperty(input, key, { value, enumerable: true, configurable: true, writable: true })
        expect(outcome(() => parseRegister(input))).toBe('BAD_REQUEST')
      }),
    )
  })
})

describe('call decoder (property)', () => {
  it('should accept any JSON params without forbidden keys and return them unchanged', () => {
    const safeJson = fc.jsonValue({ maxDepth: 6 }).filter((value) => !/"(__proto__|constructor|prototype)":/.test(JSON.stringify(value)))
    fc.assert(
      fc.property(urlSafe(1, 64), safeJson, (id, p) => {
        const parsed = parseCall({ id, m: 'a.b', p })
        expect(parsed.p).toEqual(p)
      }),
      { numRuns: 1000 },
    )
  })

  it('should reject params holding a forbidden key at any depth', () => {
    fc.assert(
      fc.property(fc.constantFrom('__proto__', 'constructor', 'prototype'), fc.array(fc.constantFrom('a', 'b'), { maxLength: 5 }), (key, path) => {
        let p: unknown = JSON.parse(`{"${key}": 1}`)
        for (const step of path) p = { [step]: p }
        expect(outcome(() => parseCall({ id: 'c', m: 'm', p }))).toBe('BAD_REQUEST')
      }),
    )
  })

  it('should answer any input with a call or a typed error, never throw otherwise', () => {
    fc.assert(
      fc.property(fc.anything({ withTypedArray: true, withNullPrototype: true, withBigInt: true, withDate: true }), (value) => {
        expect(['ok', 'BAD_REQUEST']).toContain(outcome(() => parseCall(value)))
      }),
      { numRuns: 2000 },
    )
  })
})
