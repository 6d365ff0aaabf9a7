import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { io as ioClient, type Socket } from 'socket.io-client'
import { EVENTS, PROTOCOL_VERSION } from '@session-socket/protocol'
import { MemoryLinkStore, hashSecret } from '@session-socket/node'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { rawRegister, type RawClient } from './helpers/raw-client.js'

let server: TestServer
let links: MemoryLinkStore
let good: RawClient
const storedToken = 's'.repeat(32)

beforeAll(async () => {
  links = new MemoryLinkStore()
  // Rate limits would (rightly) stop this many bad registers from one IP; they have their own tests.
  server = await startTestServer({ links, ss: { rateLimits: false } })
  good = await rawRegister(server.url, { token: null, tabId: 'good-tab' })
  await links.putLink(hashSecret(storedToken), { sessionId: 'kept', createdAt: 1, lastSeenAt: Date.now(), expiresAt: Date.now() + 60_000 })
})

afterAll(async () => {
  good?.close()
  await server?.close()
})

function connectWith(auth: unknown): Promise<{ code: unknown; message: string }> {
  const socket = ioClient(server.url, { transports: ['websocket'], forceNew: true, reconnection: false, auth: auth as object })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no connect_error')), 3000)
    socket.once('connect_error', (err: Error & { data?: { code?: unknown } }) => {
      clearTimeout(timer)
      socket.close()
      resolve({ code: err.data?.code, message: err.message })
    })
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.close()
      reject(new Error('connected with bad auth'))
    })
  })
}

const base = { v: PROTOCOL_VERSION, token: null, tabId: 'tab' }
const registerCases: Array<[string, unknown, string]> = [
  ['a string', 'hello', 'BAD_REQUEST'],
  ['version 0', { ...base, v: 0 }, 'UNSUPPORTED_VERSION'],
  ['version 99', { ...base, v: 99 }, 'UNSUPPORTED_VERSION'],
  ['a string version', { ...base, v: '1' }, 'BAD_REQUEST'],
  ['a missing version', { token: null, tabId: 'tab' }, 'BAD_REQUEST'],
  ['a missing token', { v: 1, tabId: 'tab' }, 'BAD_REQUEST'],
  ['a missing tabId', { v: 1, token: null }, 'BAD_REQUEST'],
  ['a numeric token', { ...base, token: 12345 }, 'BAD_REQUEST'],
  ['an object token', { ...base, token: { $gt: '' } }, 'BAD_REQUEST'],
  ['a short token', { ...base, token: 'abc' }, 'BAD_REQUEST'],
  ['an oversize token', { ...base, token: 'a'.repeat(5000) }, 'BAD_REQUEST'],
  ['a token with a quote', { ...base, token: `${'a'.repeat(20)}'--` }, 'BAD_REQUEST'],
  ['an empty tabId', { ...base, tabId: '' }, 'BAD_REQUEST'],
  ['an oversize tabId', { ...base, tabId: 't'.repeat(1000) }, 'BAD_REQUEST'],
  ['a tabId with a slash', { ...base, tabId: '../x' }, 'BAD_REQUEST'],
  ['an array tabId', { ...base, tabId: ['a'] }, 'BAD_REQUEST'],
  ['an extra field', { ...base, admin: true }, 'BAD_REQUEST'],
  ['a __proto__ key', JSON.parse('{"v":1,"token":null,"tabId":"t","__proto__":{"x":1}}'), 'BAD_REQUEST'],
  ['a constructor key', { ...base, constructor: { prototype: {} } }, 'BAD_REQUEST'],
  ['a nested object token', { ...base, token: { toString: 'x' } }, 'BAD_REQUEST'],
  ['an array', [base], 'BAD_REQUEST'],
  ['null', null, 'BAD_REQUEST'],
  ['binary', Buffer.from(JSON.stringify(base)), 'BAD_REQUEST'],
]

describe('bad input', () => {
  // socket.io's own parser drops a CONNECT whose auth is not an object before any middleware runs.
  it.each(registerCases.filter(([, auth]) => auth !== null && typeof auth === 'object' && !Array.isArray(auth) && !Buffer.isBuffer(auth)))('should refuse a CONNECT register with %s', async (_name, auth, code) => {
    const error = await connectWith(auth)
    expect(error.code).toBe(code)
    expect(error.message).not.toMatch(/at .*\.ts:\d+/)
  })

  it.each(registerCases)('should refuse an ss:register event with %s', async (_name, payload, code) => {
    const socket = ioClient(server.url, { transports: ['websocket'], forceNew: true, reconnection: false })
    try {
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
      const reply = await socket.timeout(3000).emitWithAck(EVENTS.REGISTER, payload)
      expect(reply.error.code).toBe(code)
    } finally {
      socket.close()
    }
  })

  let deep: unknown = 'x'
  for (let i = 0; i < 100; i++) deep = { d: deep }
  const callCases: Array<[string, unknown, string]> = [
    ['a string', 'whoami', 'BAD_REQUEST'],
    ['null', null, 'BAD_REQUEST'],
    ['a missing id', { m: 'whoami' }, 'BAD_REQUEST'],
    ['a numeric id', { id: 1, m: 'whoami' }, 'BAD_REQUEST'],
    ['an oversize id', { id: 'i'.repeat(100), m: 'whoami' }, 'BAD_REQUEST'],
    ['a missing method', { id: 'c' }, 'BAD_REQUEST'],
    ['a method with spaces', { id: 'c', m: 'who ami' }, 'BAD_REQUEST'],
    ['an oversize method', { id: 'c', m: 'm'.repeat(200) }, 'BAD_REQUEST'],
    ['an unknown method', { id: 'c', m: 'nope' }, 'NOT_FOUND'],
    ['an extra field', { id: 'c', m: 'whoami', sessionId: 'someone-else' }, 'BAD_REQUEST'],
    ['a __proto__ param', { id: 'c', m: 'whoami', p: JSON.parse('{"__proto__":{"isAdmin":true}}') }, 'BAD_REQUEST'],
    ['a constructor param', { id: 'c', m: 'whoami', p: { constructor: { prototype: { isAdmin: true } } } }, 'BAD_REQUEST'],
    ['a prototype param', { id: 'c', m: 'whoami', p: { prototype: 1 } }, 'BAD_REQUEST'],
    ['params nested 100 deep', { id: 'c', m: 'whoami', p: deep }, 'BAD_REQUEST'],
    ['an oversize string param', { id: 'c', m: 'whoami', p: 'x'.repeat(70_000) }, 'BAD_REQUEST'],
    ['an oversize array param', { id: 'c', m: 'whoami', p: new Array(10_001).fill(0) }, 'BAD_REQUEST'],
    ['an object with too many keys', { id: 'c', m: 'whoami', p: Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`k${i}`, i])) }, 'BAD_REQUEST'],
    ['binary params', { id: 'c', m: 'whoami', p: Buffer.from('binary') }, 'BAD_REQUEST'],
    ['a binary envelope', Buffer.from('{"id":"c","m":"whoami"}'), 'BAD_REQUEST'],
    ['an array envelope', [{ id: 'c', m: 'whoami' }], 'BAD_REQUEST'],
    ["another session's tab id", { id: 'c', m: 'whoami', tabId: 'someone-elses-tab' }, 'BAD_REQUEST'],
    ['a boolean envelope', true, 'BAD_REQUEST'],
  ]

  it.each(callCases)('should answer a call with %s with a typed error', async (_name, payload, code) => {
    const reply = await good.socket.timeout(3000).emitWithAck(EVENTS.CALL, payload)
    expect(reply.ok).toBe(false)
    expect(reply.e.code).toBe(code)
    expect(JSON.stringify(reply)).not.toMatch(/\.ts:\d+|node_modules/)
  })

  it('should ignore a call sent without an ack callback', async () => {
    good.socket.emit(EVENTS.CALL, { id: 'noack', m: 'whoami' })
    const reply = await good.socket.timeout(3000).emitWithAck(EVENTS.CALL, { id: 'after', m: 'whoami' })
    expect(reply.ok).toBe(true)
  })

  it('should refuse a second register on a registered socket', async () => {
    const reply = await good.socket.timeout(3000).emitWithAck(EVENTS.REGISTER, { v: 1, token: null, tabId: 'again' })
    expect(reply.error.code).toBe('BAD_REQUEST')
  })

  it('should keep memory flat under a flood of bad input', async () => {
    const gc = (globalThis as { gc?: () => void }).gc
    expect(gc, 'vitest runs with --expose-gc').toBeTypeOf('function')
    const flood = async (rounds: number) => {
      for (let i = 0; i < rounds; i++) {
        const [, payload] = callCases[i % callCases.length]!
        await good.socket.timeout(3000).emitWithAck(EVENTS.CALL, payload)
        await good.socket.timeout(3000).emitWithAck(EVENTS.REGISTER, registerCases[i % registerCases.length]![1])
      }
    }
    await flood(300)
    gc!()
    const before = process.memoryUsage().heapUsed
    await flood(3000)
    gc!()
    const grown = process.memoryUsage().heapUsed - before
    // 3,000 rounds leaving even 1 KB each behind would be 3 MB.
    expect(grown).toBeLessThan(1_500_000)
  })

  it('should still serve a good client and keep what was stored', async () => {
    const reply = await good.socket.timeout(3000).emitWithAck(EVENTS.CALL, { id: 'final', m: 'whoami' })
    expect(reply).toMatchObject({ ok: true, r: { tabId: 'good-tab' } })
    expect(await links.getLink(hashSecret(storedToken))).toMatchObject({ sessionId: 'kept' })
    const fresh = await rawRegister(server.url, { token: null, tabId: 'fresh' })
    fresh.close()
  })
})
