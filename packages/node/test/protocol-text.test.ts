import { afterEach, describe, expect, it } from 'vitest'
import { io, type Socket } from 'socket.io-client'
import { PROTOCOL_VERSION, type RegisterReply } from '@session-socket/protocol'
import { hashSecret } from '@session-socket/node'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { rawRegister, type RawClient } from './helpers/raw-client.js'

/*
 * Statements of PROTOCOL.md a client written from it alone relies on, driven by a raw
 * socket.io-client and fetch: what `{}` auth means, the `ss:cookie` exchange, what a refused
 * restore code costs, and what counts as a failed register.
 */

let server: TestServer | undefined
const sockets: Array<Socket | RawClient> = []

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close()
  await server?.close()
  server = undefined
})

function connect(auth: Record<string, unknown>): Promise<Socket> {
  const socket = io(server!.url, { transports: ['websocket'], forceNew: true, reconnection: false, auth })
  sockets.push(socket)
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket))
    socket.once('connect_error', reject)
  })
}

async function register(tabId: string, token: string | null = null): Promise<RawClient> {
  const raw = await rawRegister(server!.url, { token, tabId })
  sockets.push(raw)
  return raw
}

function connectError(auth: Record<string, unknown>): Promise<unknown> {
  return connect(auth).then(
    () => undefined,
    (err: Error & { data?: unknown }) => err.data,
  )
}

const restore = (code: string) =>
  fetch(`${server!.url}/session-socket/restore`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code }) })

describe('PROTOCOL.md, as a client reads it', () => {
  it('should take `{}` auth as no register in CONNECT: calls are UNREGISTERED until ss:register', async () => {
    server = await startTestServer()
    const socket = await connect({})
    expect(await socket.emitWithAck('ss:call', { id: 'c1', m: 'whoami' })).toMatchObject({ ok: false, e: { code: 'UNREGISTERED' } })
    const reply = (await socket.emitWithAck('ss:register', { v: PROTOCOL_VERSION, token: null, tabId: 'event-tab' })) as RegisterReply
    expect(reply).toMatchObject({ v: 1, tabId: 'event-tab', restored: false, reason: 'no-token' })
    expect(await socket.emitWithAck('ss:call', { id: 'c2', m: 'whoami' })).toMatchObject({ ok: true, r: { tabId: 'event-tab' } })
    // Any other object is a register, and must follow the rules.
    expect(await connectError({ hello: 1 })).toEqual({ code: 'BAD_REQUEST' })
  })

  it('should answer ss:cookie sent with the ack as its only argument, and ignore one with a payload first', async () => {
    server = await startTestServer()
    const unregistered = await connect({})
    expect(await unregistered.timeout(2000).emitWithAck('ss:cookie')).toMatchObject({ error: { code: 'UNREGISTERED' } })
    const raw = await register('cookie-tab')
    const reply = (await raw.socket.timeout(2000).emitWithAck('ss:cookie')) as { code: string }
    expect(reply.code).toMatch(/^[\w-]{32}$/)
    expect((await restore(reply.code)).status).toBe(204)
    await expect(raw.socket.timeout(300).emitWithAck('ss:cookie', {})).rejects.toThrow(/timed out/)
  })

  it('should spend a code refused by the per-session limit (429), with Retry-After', async () => {
    server = await startTestServer({ ss: { rateLimits: { restoresPerSession: { limit: 1, windowMs: 60_000 } } } })
    const raw = await register('limit-tab')
    const code = async () => ((await raw.socket.emitWithAck('ss:cookie')) as { code: string }).code
    expect((await restore(await code())).status).toBe(204)
    const second = await code()
    const perSession = await restore(second)
    expect(perSession.status).toBe(429)
    expect(await perSession.json()).toMatchObject({ error: { code: 'RATE_LIMITED', retryAfter: expect.any(Number) } })
    expect(Number(perSession.headers.get('retry-after'))).toBeGreaterThan(0)
    // Taken before the limit refused it: spent, and now it counts as an unknown code.
    expect((await restore(second)).status).toBe(404)
    expect(await server.links.takeRestoreCode(hashSecret(second), Date.now())).toBeNull()
  })
})
