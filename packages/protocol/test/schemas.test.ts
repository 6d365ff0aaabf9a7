import { describe, expect, it } from 'vitest'
import { PROTOCOL_VERSION, SessionSocketError, checkJsonValue, parseCall, parseConnectAuth, parseRegister, parseRestore } from '@session-socket/protocol'

function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(SessionSocketError)
    return (err as SessionSocketError).code
  }
  throw new Error('expected a SessionSocketError')
}

describe('parseRegister', () => {
  const good = { v: PROTOCOL_VERSION, token: 'a'.repeat(32), tabId: 'tab_1' }

  it('should accept a register with or without a token', () => {
    expect(parseRegister(good)).toEqual(good)
    expect(parseRegister({ ...good, token: null })).toEqual({ ...good, token: null })
  })

  it('should say UNSUPPORTED_VERSION for another protocol version', () => {
    expect(codeOf(() => parseRegister({ ...good, v: 2 }))).toBe('UNSUPPORTED_VERSION')
  })

  it.each([
    ['not an object', 'hello'],
    ['an array', [good]],
    ['a missing tabId', { v: 1, token: null }],
    ['an extra field', { ...good, admin: true }],
    ['a token with spaces', { ...good, token: 'a b'.repeat(10) }],
    ['an oversize tabId', { ...good, tabId: 'x'.repeat(65) }],
    ['a fractional version', { ...good, v: 1.5 }],
  ])('should say BAD_REQUEST for %s', (_name, input) => {
    expect(codeOf(() => parseRegister(input))).toBe('BAD_REQUEST')
  })
})

describe('parseConnectAuth', () => {
  const good = { v: PROTOCOL_VERSION, token: 'a'.repeat(32), tabId: 'tab_1' }

  it("should accept socket.io-client's connectionStateRecovery keys pid and offset beside a register, and leave them out", () => {
    expect(parseConnectAuth({ pid: 'p1', offset: 'MTIz-0', ...good })).toEqual(good)
    expect(parseConnectAuth(good)).toEqual(good)
  })

  it('should answer null, no register, for an empty auth or one with only the recovery keys', () => {
    expect(parseConnectAuth({})).toBeNull()
    expect(parseConnectAuth({ pid: 'p1', offset: 'MTIz-0' })).toBeNull()
  })

  it('should refuse what parseRegister refuses, and recovery keys that are not strings', () => {
    expect(codeOf(() => parseConnectAuth({ ...good, pid: 'p1', admin: true }))).toBe('BAD_REQUEST')
    expect(codeOf(() => parseConnectAuth({ ...good, pid: 7 }))).toBe('BAD_REQUEST')
    expect(codeOf(() => parseConnectAuth('hello'))).toBe('BAD_REQUEST')
  })
})

describe('parseCall', () => {
  it('should accept a call with any JSON params', () => {
    expect(parseCall({ id: 'c1', m: 'cart.add', p: { sku: 'x', qty: [1, 2] } })).toEqual({ id: 'c1', m: 'cart.add', p: { sku: 'x', qty: [1, 2] } })
  })

  it('should refuse prototype-pollution keys at any depth', () => {
    expect(codeOf(() => parseCall({ id: 'c1', m: 'a', p: JSON.parse('{"a":{"b":{"__proto__":{}}}}') }))).toBe('BAD_REQUEST')
    expect(codeOf(() => parseCall({ id: 'c1', m: 'a', p: { constructor: { prototype: 1 } } }))).toBe('BAD_REQUEST')
  })

  it('should accept a call without params, and ids and names at their longest', () => {
    expect(parseCall({ id: 'c1', m: 'whoami' })).toEqual({ id: 'c1', m: 'whoami' })
    expect(parseCall({ id: 'c1', m: 'a', p: undefined })).toEqual({ id: 'c1', m: 'a' })
    expect(parseCall({ id: 'x'.repeat(64), m: `a.b:c/d-e_${'f'.repeat(118)}` }).m).toHaveLength(128)
  })

  it('should read a well-formed call the same whether checked by hand or by the schema', () => {
    const bare = Object.assign(Object.create(null) as object, { id: 'c1', m: 'a', p: [1] })
    expect(parseCall(bare)).toEqual({ id: 'c1', m: 'a', p: [1] })
    // A key for-in does not see is left to the schema, which ignores it as it always did.
    const hidden = Object.defineProperty({ id: 'c1', m: 'a', p: 2 }, 'admin', { value: true, enumerable: false })
    expect(parseCall(hidden)).toStrictEqual({ id: 'c1', m: 'a', p: 2 })
  })

  const call = { id: 'c1', m: 'cart.add', p: 1 }
  it.each([
    ['an extra key', { ...call, admin: true }, 'call: unexpected key "admin"'],
    ['an own __proto__ key', JSON.parse('{"id":"c1","m":"a","__proto__":{}}'), 'call: unexpected key "__proto__"'],
    ['a missing id', { m: 'a' }, 'call: id must be a string of 1-64 of [A-Za-z0-9_-]'],
    ['an empty id', { ...call, id: '' }, 'call: id must be a string of 1-64 of [A-Za-z0-9_-]'],
    ['a 65-character id', { ...call, id: 'x'.repeat(65) }, 'call: id must be a string of 1-64 of [A-Za-z0-9_-]'],
    ['an id with a slash', { ...call, id: '../c1' }, 'call: id must be a string of 1-64 of [A-Za-z0-9_-]'],
    ['a numeric id', { ...call, id: 7 }, 'call: id must be a string of 1-64 of [A-Za-z0-9_-]'],
    ['a missing method', { id: 'c1' }, 'call: m must be a string of 1-128 of [A-Za-z0-9_.:/-]'],
    ['a 129-character method', { ...call, m: 'm'.repeat(129) }, 'call: m must be a string of 1-128 of [A-Za-z0-9_.:/-]'],
    ['a method with a space', { ...call, m: 'cart add' }, 'call: m must be a string of 1-128 of [A-Za-z0-9_.:/-]'],
    ['an array', [call], 'call must be an object { id, m, p }'],
    ['null', null, 'call must be an object { id, m, p }'],
    ['a class instance', new (class Call { id = 'c1'; m = 'a' })(), 'call must be an object { id, m, p }'],
    ['binary params', { ...call, p: { a: [1, new Uint8Array(2)] } }, 'params.a[1] is binary or a class instance, not JSON data'],
  ])('should say BAD_REQUEST for %s, and what is wrong', (_name, input, message) => {
    let error: unknown
    try {
      parseCall(input)
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(SessionSocketError)
    expect(error).toMatchObject({ code: 'BAD_REQUEST', message })
  })
})

describe('checkJsonValue', () => {
  it('should name what is wrong', () => {
    let deep: unknown = 1
    for (let i = 0; i < 40; i++) deep = [deep]
    expect(checkJsonValue(deep)).toMatch(/nested deeper than 32/)
    expect(checkJsonValue({ a: new Uint8Array(2) })).toMatch(/params.a is binary/)
    expect(checkJsonValue('x'.repeat(70_000))).toMatch(/longer than 65536/)
    expect(checkJsonValue(Number.NaN)).toMatch(/not a finite number/)
    expect(checkJsonValue({ ok: [1, 'two', null, true] })).toBeNull()
  })
})

describe('parseRestore', () => {
  it('should accept { code } only', () => {
    expect(parseRestore({ code: 'c'.repeat(32) })).toEqual({ code: 'c'.repeat(32) })
    expect(codeOf(() => parseRestore({ code: 'c'.repeat(32), x: 1 }))).toBe('BAD_REQUEST')
  })
})

describe('SessionSocketError.from', () => {
  it('should normalise wire errors and hide unknown values behind INTERNAL', () => {
    expect(SessionSocketError.from({ code: 'RATE_LIMITED', message: 'slow down', retryAfter: 250 }).toWire()).toEqual({ code: 'RATE_LIMITED', message: 'slow down', retryAfter: 250 })
    const unknown = SessionSocketError.from(new Error('secret detail'))
    expect(unknown.toWire()).toEqual({ code: 'INTERNAL', message: 'internal error' })
    expect(SessionSocketError.from({ code: 'NOPE' }).code).toBe('INTERNAL')
  })
})
