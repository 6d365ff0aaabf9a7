import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { startCookieJarProxy, type CookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, nextStatus, waitForStatus } from '@session-socket/test-helpers/clients'
import { io as ioClient } from 'socket.io-client'
import { rawEngineRegister } from './helpers/raw-client.js'

let server: TestServer | undefined
let proxy: CookieJarProxy | undefined

afterEach(async () => {
  closeAllClients()
  await proxy?.close()
  await server?.close()
  proxy = server = undefined
})

function storedSessions(): Promise<number> {
  return new Promise((resolve, reject) => server!.sessionStore.length!((err, n) => (err ? reject(err) : resolve(n ?? 0))))
}

/** Connects a bare socket.io-client and resolves with its connect_error's data, or {} once connected. */
function connectError(url: string, transport: 'websocket' | 'polling', headers: Record<string, string>): Promise<{ code?: string; retryAfter?: number }> {
  const socket = ioClient(url, { transports: [transport], forceNew: true, reconnection: false, extraHeaders: headers })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('neither connect nor connect_error within 3 s')), 3000)
    socket.once('connect_error', (err: Error & { data?: { code?: string; retryAfter?: number } }) => {
      clearTimeout(timer)
      socket.close()
      resolve(err.data ?? { code: `no data: ${err.message}` })
    })
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.close()
      resolve({})
    })
  })
}

/** Opens a raw WebSocket handshake and resolves with the upgrade response's Set-Cookie, or the refusal. */
function upgrade(url: string, headers: Record<string, string> = {}): Promise<{ setCookie: string[]; status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`, { headers })
    ws.on('upgrade', (response) => {
      const setCookie = response.headers['set-cookie'] ?? []
      ws.close()
      resolve({ setCookie, status: 101, body: '' })
    })
    ws.on('unexpected-response', (_req, response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => (body += chunk.toString()))
      response.on('end', () => resolve({ setCookie: [], status: response.statusCode ?? 0, body }))
    })
    ws.on('error', reject)
  })
}

describe('handshake', () => {
  it.each([[true], [false]])('should set the provisional cookie, and never the session cookie, on a first long-polling handshake (saveUninitialized: %s)', async (saveUninitialized) => {
    server = await startTestServer({ session: { saveUninitialized } })
    const response = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`)
    expect(response.status).toBe(200)
    const setCookie = response.headers.getSetCookie()
    expect(setCookie.filter((c) => c.startsWith('connect.sid.ss=s%3A'))).toHaveLength(1)
    expect(setCookie.filter((c) => c.startsWith('connect.sid='))).toEqual([])
  })

  it.each([[true], [false]])('should set the provisional cookie, and never the session cookie, on the 101 of a first websocket-only handshake (saveUninitialized: %s)', async (saveUninitialized) => {
    server = await startTestServer({ session: { saveUninitialized } })
    const { setCookie } = await upgrade(server.url)
    expect(setCookie.filter((c) => c.startsWith('connect.sid.ss=s%3A'))).toHaveLength(1)
    expect(setCookie.filter((c) => c.startsWith('connect.sid='))).toEqual([])
  })

  it('should keep the provisional cookie beside an Engine.IO cookie of its own', async () => {
    server = await startTestServer({ io: { cookie: true } })
    const response = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`)
    const names = response.headers.getSetCookie().map((c) => c.slice(0, c.indexOf('=')))
    expect(names.sort()).toEqual(['connect.sid.ss', 'io'])
  })

  it('should not set the session cookie on the handshake of a rolling session either', async () => {
    server = await startTestServer({ session: { rolling: true } })
    const first = await fetch(`${server.url}/count`, { method: 'POST' })
    const cookie = first.headers.getSetCookie()[0]!.split(';')[0]!
    const { setCookie } = await upgrade(server.url, { Cookie: cookie })
    expect(setCookie).toEqual([])
  })

  it('should not set a new cookie when the handshake carries a valid one', async () => {
    server = await startTestServer()
    const first = await fetch(`${server.url}/whoami`)
    const cookie = first.headers.getSetCookie()[0]!.split(';')[0]!
    const { setCookie } = await upgrade(server.url, { Cookie: cookie })
    expect(setCookie).toEqual([])
  })

  it.each([['polling'], ['websocket']] as const)('should reach ready and share the session with HTTP over %s only', async (transport) => {
    server = await startTestServer({ session: { saveUninitialized: false } })
    proxy = await startCookieJarProxy(server.port)
    const tab = makeBrowser(proxy.url, { socketOptions: { transports: [transport] } }).open()
    await waitForStatus(tab)
    const viaSocket = (await tab.call('counter.increment')) as { count: number }
    const viaHttp = (await (await fetch(`${proxy.url}/whoami`)).json()) as { count: number }
    expect(viaSocket.count).toBe(1)
    expect(viaHttp.count).toBe(1)
  })

  it('should refuse a websocket handshake from a foreign Origin at CONNECT with FORBIDDEN, a message naming the fix, and no session', async () => {
    server = await startTestServer()
    const refused = await rawEngineRegister(server.url, { token: null, tabId: 't' }, { origin: 'http://evil.example' })
    refused.close()
    expect(refused.refused).toEqual({ code: 'FORBIDDEN', message: 'Origin http://evil.example is not allowed; add it to allowedOrigins' })
    expect(refused.setCookie).toEqual([])
    expect(await storedSessions()).toBe(0)
  })

  it('should refuse a polling handshake from a foreign Origin at CONNECT with FORBIDDEN, readable by that origin, and no session', async () => {
    server = await startTestServer()
    const response = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`, { headers: { Origin: 'http://evil.example' } })
    expect(response.headers.getSetCookie()).toEqual([])
    // A page on that origin can read the answer (credentials included), and nothing else is in it.
    expect(response.headers.get('access-control-allow-origin')).toBe('http://evil.example')
    expect(response.headers.get('access-control-allow-credentials')).toBe('true')
    const refused = await connectError(server.url, 'polling', { Origin: 'http://evil.example' })
    expect(refused).toEqual({ code: 'FORBIDDEN' })
    expect(await storedSessions()).toBe(0)
  })

  it('should accept the same origin by default and a listed origin when configured', async () => {
    server = await startTestServer()
    const same = await rawEngineRegister(server.url, { token: null, tabId: 't' }, { origin: server.url })
    same.close()
    expect(same.reply).toBeDefined()
    await server.close()
    server = await startTestServer({ ss: { allowedOrigins: ['http://app.example'] } })
    const listed = await rawEngineRegister(server.url, { token: null, tabId: 't' }, { origin: 'http://app.example' })
    listed.close()
    expect(listed.reply).toBeDefined()
    const unlisted = await rawEngineRegister(server.url, { token: null, tabId: 't' }, { origin: server.url })
    unlisted.close()
    expect(unlisted.refused).toMatchObject({ code: 'FORBIDDEN' })
  })

  it.each([['websocket'], ['polling']] as const)('should end the client closed with FORBIDDEN over %s, not retry it as offline', async (transport) => {
    server = await startTestServer({ ss: { allowedOrigins: ['http://app.example'] } })
    const tab = makeBrowser(server.url, { socketOptions: { transports: [transport], extraHeaders: { Origin: 'http://evil.example' } } }).open()
    const state = await waitForStatus(tab, 'closed')
    expect(state).toMatchObject({ status: 'closed', error: { code: 'FORBIDDEN' } })
    expect(server.io.of('/').sockets.size).toBe(0)
  })

  it("should let no namespace accept a refused connection, the app's own without middleware included", async () => {
    server = await startTestServer()
    const admin = server.io.of('/admin')
    const refused = await connectError(`${server.url}/admin`, 'websocket', { Origin: 'http://evil.example' })
    expect(refused).toEqual({ code: 'FORBIDDEN' })
    expect(admin.sockets.size).toBe(0)
    // The same namespace takes an allowed origin.
    expect(await connectError(`${server.url}/admin`, 'websocket', { Origin: server.url })).toEqual({})
  })

  it('should make the client wait the retryAfter of a rate-limited handshake', async () => {
    server = await startTestServer({ ss: { rateLimits: { handshakesPerIp: { limit: 1, windowMs: 2_000 } } } })
    proxy = await startCookieJarProxy(server.port)
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    proxy.cut()
    const offline = await nextStatus(tab, (state) => state.status === 'offline' && state.error !== undefined)
    expect(offline).toMatchObject({ error: { code: 'RATE_LIMITED' } })
    expect((offline as { retryIn: number }).retryIn).toBeGreaterThan(1_000)
    await waitForStatus(tab, 'ready', 5_000)
  })
})
