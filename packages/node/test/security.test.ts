import http from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import createDebug from 'debug'
import { Server } from 'socket.io'
import session from 'express-session'
import { io as ioClient } from 'socket.io-client'
import { MemoryLinkStore, createSessionSocketServer, hashSecret } from '@session-socket/node'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { startCookieJarProxy, type CookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, waitForStatus } from '@session-socket/test-helpers/clients'
import { rawRegister } from './helpers/raw-client.js'

let server: TestServer | undefined
const proxies: CookieJarProxy[] = []

afterEach(async () => {
  closeAllClients()
  for (const proxy of proxies.splice(0)) await proxy.close()
  await server?.close()
  server = undefined
})

async function jar(): Promise<CookieJarProxy> {
  const proxy = await startCookieJarProxy(server!.port)
  proxies.push(proxy)
  return proxy
}

function connectError(url: string, auth: object): Promise<{ code?: string; retryAfter?: number }> {
  const socket = ioClient(url, { transports: ['websocket'], forceNew: true, reconnection: false, auth })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no connect_error')), 3000)
    socket.once('connect_error', (err: Error & { data?: { code?: string; retryAfter?: number } }) => {
      clearTimeout(timer)
      socket.close()
      resolve(err.data ?? {})
    })
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.close()
      resolve({})
    })
  })
}

describe('allowedOrigins at start-up', () => {
  it.each([
    ['a wildcard', ['*'], /must not contain '\*'.*Cross-Site WebSocket Hijacking/],
    ["'null'", ['null'], /must not contain 'null'/],
    ['a path', ['https://app.example.com/'], /is not an origin/],
    ['a typo', ['app.example.com'], /is not an origin/],
  ])('should refuse %s with the fix in the message', (_name, allowedOrigins, message) => {
    const io = new Server(http.createServer())
    try {
      expect(() => createSessionSocketServer(io, { session: session({ secret: 's' }), allowedOrigins })).toThrow(message)
    } finally {
      io.close()
    }
  })
})

describe('token rotation', () => {
  it('should give a new token at every register, keeping the original absolute expiry', async () => {
    const links = new MemoryLinkStore()
    server = await startTestServer({ links, ss: { rotation: true } })
    const first = await rawRegister(server.url, { token: null, tabId: 't' })
    first.close()
    const original = await links.getLink(hashSecret(first.reply.token))
    const second = await rawRegister(server.url, { token: first.reply.token, tabId: 't' })
    second.close()
    expect(second.reply).toMatchObject({ restored: true })
    expect(second.reply.token).not.toBe(first.reply.token)
    expect((await links.getLink(hashSecret(second.reply.token)))?.expiresAt).toBe(original!.expiresAt)
    expect((await links.getLink(hashSecret(first.reply.token)))?.replacedAt).toBeTypeOf('number')
  })

  it('should accept the previous token within the grace window', async () => {
    server = await startTestServer({ ss: { rotation: { grace: 5_000 } } })
    const first = await rawRegister(server.url, { token: null, tabId: 't1' })
    const second = await rawRegister(server.url, { token: first.reply.token, tabId: 't2' })
    // A tab that read the first token before the rotation was stored comes in late.
    const racer = await rawRegister(server.url, { token: first.reply.token, tabId: 't3' })
    for (const c of [first, second, racer]) c.close()
    expect(racer.reply).toMatchObject({ restored: true, reason: null })
  })

  it('should revoke the family and end its tabs when a replaced token comes back after the grace window', async () => {
    let offset = 0
    const links = new MemoryLinkStore()
    server = await startTestServer({ links, ss: { rotation: { grace: 1_000 }, now: () => Date.now() + offset } })
    const proxy = await jar()
    const browser = makeBrowser(proxy.url)
    const tab = browser.open()
    await waitForStatus(tab)
    const stolen = (await browser.tokens.get())!
    // The tab reconnects (rotation), then the thief presents the stolen, replaced token too late.
    proxy.cut()
    await waitForStatus(tab, 'offline')
    await waitForStatus(tab, 'ready')
    const current = (await browser.tokens.get())!
    expect(current).not.toBe(stolen)
    offset = 5_000
    const ended = new Promise((resolve) => tab.on('ended', resolve))
    const thief = await rawRegister(server.url, { token: stolen, tabId: 'thief' })
    thief.close()
    expect(thief.reply).toMatchObject({ restored: false, reason: 'revoked-token', newSession: true })
    expect(await ended).toBe('revoked')
    expect((await links.getLink(hashSecret(current)))?.revokedAt).toBeTypeOf('number')
  })

  it('should keep two tabs of one browser in their session when they reconnect at once', async () => {
    server = await startTestServer({ ss: { rotation: true } })
    const proxy = await jar()
    const browser = makeBrowser(proxy.url)
    const a = browser.open()
    await waitForStatus(a)
    const b = browser.open()
    await waitForStatus(b)
    const before = (await a.call('whoami')) as { sessionId: string }
    for (let round = 0; round < 5; round++) {
      proxy.cut()
      await Promise.all([waitForStatus(a, 'offline'), waitForStatus(b, 'offline')])
      await Promise.all([waitForStatus(a, 'ready'), waitForStatus(b, 'ready')])
    }
    const after = await Promise.all([a.call('whoami'), b.call('whoami')]) as Array<{ sessionId: string }>
    expect(after.map((w) => w.sessionId)).toEqual([before.sessionId, before.sessionId])
  })
})

describe('rate limits', () => {
  it('should refuse registers from an IP after too many bad tokens, with retryAfter', async () => {
    server = await startTestServer({ ss: { rateLimits: { failedRegistersPerIp: { limit: 3, windowMs: 60_000 } } } })
    for (let i = 0; i < 3; i++) {
      const c = await rawRegister(server.url, { token: `guess${String(i).padStart(20, '0')}`, tabId: `t${i}` })
      expect(c.reply.reason).toBe('unknown-token')
      c.close()
    }
    const refused = await connectError(server.url, { v: 1, token: null, tabId: 'next' })
    expect(refused.code).toBe('RATE_LIMITED')
    expect(refused.retryAfter).toBeGreaterThan(50_000)
  })

  it('should make the client wait at least retryAfter before trying again', async () => {
    server = await startTestServer({ ss: { rateLimits: { registersPerSession: { limit: 1, windowMs: 2_000 } } } })
    const proxy = await jar()
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    proxy.cut()
    const offline = await new Promise<{ retryIn: number; code?: string }>((resolve) => {
      const off = tab.on('status', (state) => {
        if (state.status === 'offline' && state.error) {
          off()
          resolve({ retryIn: state.retryIn, code: state.error.code })
        }
      })
    })
    expect(offline.code).toBe('RATE_LIMITED')
    expect(offline.retryIn).toBeGreaterThan(1_000)
    await waitForStatus(tab, 'ready', 5_000)
  })

  it('should refuse handshakes over the per-IP connection rate', async () => {
    server = await startTestServer({ ss: { rateLimits: { handshakesPerIp: { limit: 2, windowMs: 60_000 } } } })
    const statuses: number[] = []
    for (let i = 0; i < 3; i++) statuses.push((await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`)).status)
    expect(statuses).toEqual([200, 200, 403])
    const last = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`)
    expect(((await last.json()) as { message: string }).message).toMatch(/^RATE_LIMITED: too many connections/)
  })

  it('should refuse restore attempts from an IP after too many wrong codes', async () => {
    server = await startTestServer({ ss: { rateLimits: { failedRestoresPerIp: { limit: 2, windowMs: 60_000 } } } })
    const attempt = () => fetch(`${server!.url}/session-socket/restore`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ code: 'w'.repeat(32) }),
    })
    expect([(await attempt()).status, (await attempt()).status]).toEqual([404, 404])
    const limited = await attempt()
    expect(limited.status).toBe(429)
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED')
  })
})

describe('security log', () => {
  it('should log refused origins, bad tokens and rate limits without token or cookie values', async () => {
    const lines: string[] = []
    const previousLog = createDebug.log
    const previousNamespaces = createDebug.disable()
    createDebug.enable('session-socket:*')
    createDebug.log = (...args: unknown[]) => void lines.push(args.map(String).join(' '))
    try {
      server = await startTestServer({ ss: { rateLimits: { failedRegistersPerIp: { limit: 1, windowMs: 60_000 } } } })
      const token = 'secrettokenvalue'.padEnd(32, 'x')
      const c = await rawRegister(server.url, { token, tabId: 'log' }, { Cookie: 'connect.sid=s%3Acookievalue.sig' })
      c.close()
      await connectError(server.url, { v: 1, token, tabId: 'log2' })
      await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`, { headers: { Origin: 'http://evil.example' } })
    } finally {
      createDebug.log = previousLog
      createDebug.disable()
      if (previousNamespaces) createDebug.enable(previousNamespaces)
    }
    const securityLines = lines.filter((line) => line.includes('session-socket:security'))
    expect(securityLines.some((l) => l.includes('unusable token'))).toBe(true)
    expect(securityLines.some((l) => l.includes('too many failed registers'))).toBe(true)
    expect(securityLines.some((l) => l.includes('refused for origin'))).toBe(true)
    expect(lines.join('\n')).not.toContain('secrettokenvalue')
    expect(lines.join('\n')).not.toContain('cookievalue')
  })
})
