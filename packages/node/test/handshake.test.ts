import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { startCookieJarProxy, type CookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, waitForStatus } from '@session-socket/test-helpers/clients'

let server: TestServer | undefined
let proxy: CookieJarProxy | undefined

afterEach(async () => {
  closeAllClients()
  await proxy?.close()
  await server?.close()
  proxy = server = undefined
})

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

  it('should refuse a websocket handshake from a foreign Origin with a message naming the fix', async () => {
    server = await startTestServer()
    const refused = await upgrade(server.url, { Origin: 'http://evil.example' })
    expect(refused.status).toBe(400)
    expect(refused.body).toContain('Origin http://evil.example is not allowed; add it to allowedOrigins')
    expect(refused.setCookie).toEqual([])
  })

  it('should refuse a polling handshake from a foreign Origin with 403 and no session', async () => {
    server = await startTestServer()
    const response = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`, { headers: { Origin: 'http://evil.example' } })
    expect(response.status).toBe(403)
    expect(((await response.json()) as { message: string }).message).toContain('is not allowed')
    expect(response.headers.getSetCookie()).toEqual([])
  })

  it('should accept the same origin by default and a listed origin when configured', async () => {
    server = await startTestServer()
    const same = await upgrade(server.url, { Origin: server.url })
    expect(same.status).toBe(101)
    await server.close()
    server = await startTestServer({ ss: { allowedOrigins: ['http://app.example'] } })
    expect((await upgrade(server.url, { Origin: 'http://app.example' })).status).toBe(101)
    expect((await upgrade(server.url, { Origin: server.url })).status).toBe(400)
  })

  it('should surface the refusal to the client as a connect error, not a ready socket', async () => {
    server = await startTestServer({ ss: { allowedOrigins: ['http://app.example'] } })
    const tab = makeBrowser(server.url, { socketOptions: { extraHeaders: { Origin: 'http://evil.example' } } }).open()
    const state = await waitForStatus(tab, 'offline')
    expect(state.status).toBe('offline')
    expect(server.io.of('/').sockets.size).toBe(0)
  })
})
