import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { io as ioClient, type Socket } from 'socket.io-client'
import { createProxyTrust, isSameOrigin, type TrustProxy } from '../src/trust-proxy.js'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'

let closeServer: (() => Promise<void>) | undefined
let server: TestServer | undefined
const sockets: Socket[] = []

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close()
  await closeServer?.()
  await server?.close()
  closeServer = server = undefined
  vi.restoreAllMocks()
})

/** What createProxyTrust(trust) reads from one real request sent from 127.0.0.1 with `headers`. */
async function seen(trust: TrustProxy | undefined, headers: Record<string, string>): Promise<{ ip: string; host?: string; proto?: string }> {
  const proxy = createProxyTrust(trust)
  const httpServer = http.createServer((req, res) => {
    res.setHeader('Content-Type', 'application/json')
    res.end(JSON.stringify({ ip: proxy.clientIp(req), host: proxy.host(req), proto: proxy.proto(req) }))
  })
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve))
  closeServer = () => new Promise((resolve) => httpServer.close(() => resolve()))
  const { port } = httpServer.address() as AddressInfo
  return (await (await fetch(`http://127.0.0.1:${port}/`, { headers })).json()) as { ip: string; host?: string; proto?: string }
}

const FORWARDED = { 'X-Forwarded-For': '203.0.113.7, 198.51.100.2', 'X-Forwarded-Host': 'app.example.com', 'X-Forwarded-Proto': 'https' }

describe('createProxyTrust', () => {
  it('should ignore every X-Forwarded-* header when no proxy is trusted (the default): anyone can send them', async () => {
    expect(await seen(undefined, FORWARDED)).toMatchObject({ ip: '127.0.0.1', host: expect.stringMatching(/^127\.0\.0\.1:\d+$/) })
    expect((await seen(false, FORWARDED)).proto).toBeUndefined()
  })

  it("should read the client address, host and scheme a trusted proxy forwarded, as Express's trust proxy", async () => {
    expect(await seen('loopback', FORWARDED)).toEqual({ ip: '198.51.100.2', host: 'app.example.com', proto: 'https' })
    expect(await seen(true, FORWARDED)).toEqual({ ip: '203.0.113.7', host: 'app.example.com', proto: 'https' })
    expect((await seen(1, FORWARDED)).ip).toBe('198.51.100.2')
    expect((await seen(2, FORWARDED)).ip).toBe('203.0.113.7')
    expect((await seen(['127.0.0.1', '198.51.100.0/24'], FORWARDED)).ip).toBe('203.0.113.7')
    expect((await seen((address) => address === '127.0.0.1', FORWARDED)).ip).toBe('198.51.100.2')
  })

  it('should not take X-Forwarded-Host from a peer it does not trust', async () => {
    const view = await seen('10.0.0.0/8', FORWARDED)
    expect(view).toMatchObject({ ip: '127.0.0.1', host: expect.stringMatching(/^127\.0\.0\.1:\d+$/) })
    expect(view).not.toHaveProperty('proto')
  })

  it('should throw at once, naming the forms it takes, for an option it cannot read', () => {
    expect(() => createProxyTrust('not-an-address')).toThrow(/trustProxy: .*'loopback'/)
    expect(() => createProxyTrust(-1)).toThrow(/integer ≥ 0/)
    expect(() => createProxyTrust({} as never)).toThrow(/trustProxy must be true, a number of hops/)
  })
})

describe('isSameOrigin', () => {
  const request = (headers: Record<string, string>) => ({ headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])), socket: { remoteAddress: '127.0.0.1' } }) as unknown as http.IncomingMessage

  it('should match a Host that writes out the default port, and refuse a scheme a trusted proxy contradicts', () => {
    const trusted = createProxyTrust('loopback')
    expect(isSameOrigin('https://app.example.com', request({ Host: 'backend:3000', 'X-Forwarded-Host': 'app.example.com:443', 'X-Forwarded-Proto': 'https' }), trusted)).toBe(true)
    expect(isSameOrigin('http://app.example.com', request({ Host: 'backend:3000', 'X-Forwarded-Host': 'app.example.com', 'X-Forwarded-Proto': 'https' }), trusted)).toBe(false)
    expect(isSameOrigin('https://app.example.com', request({ Host: 'app.example.com' }), createProxyTrust(undefined))).toBe(true)
    expect(isSameOrigin('not a url', request({ Host: 'app.example.com' }), trusted)).toBe(false)
  })
})

/** A WebSocket handshake as a reverse proxy passes it on: the browser's Origin, the proxy's Host. */
function handshake(url: string, headers: Record<string, string>): Promise<'connected' | string> {
  const socket = ioClient(url, { transports: ['websocket'], forceNew: true, reconnection: false, extraHeaders: headers })
  sockets.push(socket)
  return new Promise((resolve) => {
    socket.once('connect', () => resolve('connected'))
    socket.once('connect_error', (err) => resolve(err.message))
  })
}

describe('createSessionSocketServer(io, { trustProxy })', () => {
  const behindProxy = { Origin: 'https://app.example.com', Host: 'backend:3000', 'X-Forwarded-Host': 'app.example.com', 'X-Forwarded-Proto': 'https' }

  it("should let a handshake in whose Origin is the host the trusted proxy forwarded, where Host is the proxy's upstream name", async () => {
    server = await startTestServer({ ss: { trustProxy: 'loopback' } })
    expect(await handshake(server.url, behindProxy)).toBe('connected')
  })

  it('should refuse it without trustProxy: X-Forwarded-Host from an untrusted peer is ignored', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    server = await startTestServer()
    expect(await handshake(server.url, behindProxy)).not.toBe('connected')
  })

  it('should count rate limits by the client address the trusted proxy forwarded, not by the proxy', async () => {
    server = await startTestServer({ ss: { trustProxy: 'loopback', rateLimits: { handshakesPerIp: { limit: 2, windowMs: 60_000 } } } })
    const from = (ip: string) => handshake(server!.url, { 'X-Forwarded-For': ip })
    expect([await from('203.0.113.1'), await from('203.0.113.2'), await from('203.0.113.3')]).toEqual(['connected', 'connected', 'connected'])
    expect(await from('203.0.113.1')).toBe('connected')
    expect(await from('203.0.113.1')).not.toBe('connected')
  })
})

describe('markSecure on the handshake', () => {
  const handshakeCookie = async (url: string, headers: Record<string, string>) =>
    (await fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers })).headers.getSetCookie()[0]

  it("should let express-session set a secure cookie on the Engine.IO handshake behind a TLS-terminating proxy it trusts, as in the app's own routes", async () => {
    server = await startTestServer({ ss: { trustProxy: 'loopback' }, session: { cookie: { secure: 'auto', httpOnly: true, sameSite: 'lax' } } })
    expect(await handshakeCookie(server.url, { 'X-Forwarded-Proto': 'https' })).toMatch(/; Secure/)
    expect(await handshakeCookie(server.url, {})).not.toMatch(/; Secure/)
  })

  it('should not take X-Forwarded-Proto from anyone without trustProxy', async () => {
    server = await startTestServer({ session: { cookie: { secure: 'auto', httpOnly: true, sameSite: 'lax' } } })
    expect(await handshakeCookie(server.url, { 'X-Forwarded-Proto': 'https' })).not.toMatch(/; Secure/)
  })
})
