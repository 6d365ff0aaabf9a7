import http from 'node:http'
import { afterEach, describe, expect, it, vi } from 'vitest'
import createDebug from 'debug'
import { Server } from 'socket.io'
import session from 'express-session'
import { io as ioClient } from 'socket.io-client'
import { MemoryLinkStore, createSessionSocketServer, hashSecret } from '@session-socket/node'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { startCookieJarProxy, type CookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, waitForStatus } from '@session-socket/test-helpers/clients'
import { rawEngineRegister, rawRegister, type RawClient, type RawEngineResult } from './helpers/raw-client.js'

let server: TestServer | undefined
const proxies: CookieJarProxy[] = []
const rawClients: RawEngineResult[] = []

afterEach(async () => {
  for (const client of rawClients.splice(0)) client.close()
  closeAllClients()
  for (const proxy of proxies.splice(0)) await proxy.close()
  await server?.close()
  server = undefined
})

function keep(client: RawEngineResult): RawEngineResult {
  rawClients.push(client)
  return client
}

/** The session as the session store holds it, or null. */
function storedSession(sessionId: string): Promise<unknown> {
  return new Promise((resolve, reject) => server!.sessionStore.get(sessionId, (err, data) => (err ? reject(err) : resolve(data ?? null))))
}

async function whoami(cookie: string): Promise<{ sessionId: string; count: number }> {
  return (await fetch(`${server!.url}/whoami`, { headers: { Cookie: cookie } })).json() as Promise<{ sessionId: string; count: number }>
}

async function jar(): Promise<CookieJarProxy> {
  const proxy = await startCookieJarProxy(server!.port)
  proxies.push(proxy)
  return proxy
}

function connectError(url: string, auth: object, transports = ['websocket']): Promise<{ code?: string; retryAfter?: number }> {
  const socket = ioClient(url, { transports, forceNew: true, reconnection: false, auth })
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

  it('should end and destroy the session when a replaced token comes back after its successor was used', async () => {
    let offset = 0
    const links = new MemoryLinkStore()
    server = await startTestServer({ links, ss: { rotation: { grace: 1_000 }, now: () => Date.now() + offset } })
    const proxy = await jar()
    const browser = makeBrowser(proxy.url)
    const tab = browser.open()
    await waitForStatus(tab)
    const { sessionId } = (await tab.call('whoami')) as { sessionId: string }
    const stolen = (await browser.tokens.get())!
    // The tab reconnects twice: the stolen token's successor is used (rotated in its turn).
    for (let round = 0; round < 2; round++) {
      proxy.cut()
      await waitForStatus(tab, 'offline')
      await waitForStatus(tab, 'ready')
    }
    const current = (await browser.tokens.get())!
    expect(current).not.toBe(stolen)
    offset = 5_000
    const ended = new Promise((resolve) => tab.on('ended', resolve))
    const thief = await rawRegister(server.url, { token: stolen, tabId: 'thief' })
    thief.close()
    expect(thief.reply).toMatchObject({ restored: false, reason: 'revoked-token', newSession: true })
    expect(await ended).toBe('revoked')
    expect((await links.getLink(hashSecret(current)))?.revokedAt).toBeTypeOf('number')
    expect(await storedSession(sessionId)).toBeNull()
  })

  it('should take a replaced token whose successor never came back for a lost reply, not for theft', async () => {
    let offset = 0
    const links = new MemoryLinkStore()
    server = await startTestServer({ links, ss: { rotation: { grace: 1_000 }, now: () => Date.now() + offset } })
    const first = keep(await rawEngineRegister(server.url, { token: null, tabId: 'sibling' }))
    const token = first.reply!.token
    const cookie = first.setCookie.join('; ')
    // The server accepts the CONNECT and rotates the token; the connection drops before the
    // client stores the successor.
    await rawEngineRegister(server.url, { token, tabId: 'lossy' }, { cookie, loseReply: true })
    offset = 5_000
    const back = keep(await rawEngineRegister(server.url, { token, tabId: 'lossy' }, { cookie }))
    expect(back.reply).toMatchObject({ restored: true, reason: null })
    // A sibling tab that read the same token races the new rotation: still accepted.
    const sibling = keep(await rawEngineRegister(server.url, { token, tabId: 'racer' }, { cookie }))
    expect(sibling.reply).toMatchObject({ restored: true, reason: null })
    expect(first.events.map(([event]) => event)).not.toContain('ss:ended')
    expect((await links.getLink(hashSecret(back.reply!.token)))?.revokedAt).toBeUndefined()
    // The chain goes on: the new successor is used, then the replaced token after the grace is theft.
    keep(await rawEngineRegister(server.url, { token: back.reply!.token, tabId: 'lossy' }, { cookie }))
    offset = 10_000
    const late = keep(await rawEngineRegister(server.url, { token, tabId: 'late' }))
    expect(late.reply).toMatchObject({ reason: 'revoked-token', newSession: true })
    await vi.waitFor(() => expect(first.events.map(([event]) => event)).toContain('ss:ended'))
  })

  it('should detect reuse when a successor comes back after its predecessor was presented again by someone else', async () => {
    let offset = 0
    server = await startTestServer({ ss: { rotation: { grace: 1_000 }, now: () => Date.now() + offset } })
    const victim = keep(await rawEngineRegister(server.url, { token: null, tabId: 'victim' }))
    const cookie = victim.setCookie.join('; ')
    const stolen = victim.reply!.token
    // The victim reconnects (gets a successor it has not used yet); the thief, later, presents
    // the stolen token: taken for a lost reply, rotated again.
    const reconnected = keep(await rawEngineRegister(server.url, { token: stolen, tabId: 'victim' }, { cookie }))
    offset = 5_000
    const thief = keep(await rawEngineRegister(server.url, { token: stolen, tabId: 'thief' }))
    expect(thief.reply).toMatchObject({ restored: true })
    // When the victim uses its successor, one of the two holders is not the user.
    const comesBack = keep(await rawEngineRegister(server.url, { token: reconnected.reply!.token, tabId: 'victim' }, { cookie }))
    expect(comesBack.refused).toMatchObject({ code: 'SESSION_ENDED' })
    await vi.waitFor(() => expect(thief.events.map(([event]) => event)).toContain('ss:ended'))
    const again = keep(await rawEngineRegister(server.url, { token: thief.reply!.token, tabId: 'thief' }))
    expect(again.reply).toMatchObject({ reason: 'revoked-token', newSession: true })
  })

  it("should end the thief's HTTP session too: its restored cookie names no session and a token-less register with it starts a fresh one", async () => {
    let offset = 0
    server = await startTestServer({ ss: { rotation: { grace: 1_000 }, now: () => Date.now() + offset } })
    const victim = keep(await rawEngineRegister(server.url, { token: null, tabId: 'victim' }))
    const victimCookie = victim.setCookie.join('; ')
    await fetch(`${server.url}/count`, { method: 'POST', headers: { Cookie: victimCookie } })
    const victimSession = await whoami(victimCookie)
    expect(victimSession.count).toBe(1)
    const stolen = victim.reply!.token
    // The thief registers with the stolen token, trades the restore code for the victim's cookie,
    // and uses its successor.
    const thief = keep(await rawEngineRegister(server.url, { token: stolen, tabId: 'thief' }))
    expect(thief.reply!.restoreCode).toBeDefined()
    const restored = await fetch(`${server.url}/session-socket/restore`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ code: thief.reply!.restoreCode }),
    })
    expect(restored.status).toBe(204)
    const thiefCookie = restored.headers.getSetCookie().map((line) => line.split(';')[0]).join('; ')
    expect((await whoami(thiefCookie)).sessionId).toBe(victimSession.sessionId)
    const thiefTab = keep(await rawEngineRegister(server.url, { token: thief.reply!.token, tabId: 'thief' }, { cookie: thiefCookie }))
    expect(thiefTab.reply).toMatchObject({ restored: true })

    // The victim's tab comes back with the replaced token: reuse.
    offset = 5_000
    const back = keep(await rawEngineRegister(server.url, { token: stolen, tabId: 'victim' }, { cookie: victimCookie }))
    expect(back.refused).toMatchObject({ code: 'SESSION_ENDED' })
    await vi.waitFor(() => expect(thiefTab.events.map(([event]) => event)).toContain('ss:ended'))
    expect(await storedSession(victimSession.sessionId)).toBeNull()
    const after = await whoami(thiefCookie)
    expect(after.sessionId).not.toBe(victimSession.sessionId)
    expect(after.count).toBe(0)
    const fresh = keep(await rawEngineRegister(server.url, { token: null, tabId: 'thief2' }, { cookie: thiefCookie }))
    expect(fresh.reply).toMatchObject({ reason: 'no-token', newSession: true })
  })

  it('should end the tab that comes back with a reused token (ended, revoked), not retry it', async () => {
    let offset = 0
    server = await startTestServer({ ss: { rotation: { grace: 1_000 }, now: () => Date.now() + offset } })
    const proxy = await jar()
    const browser = makeBrowser(proxy.url)
    const tab = browser.open()
    await waitForStatus(tab)
    const stolen = (await browser.tokens.get())!
    const thief = keep(await rawEngineRegister(server.url, { token: stolen, tabId: 'thief' }))
    keep(await rawEngineRegister(server.url, { token: thief.reply!.token, tabId: 'thief' }))
    offset = 5_000
    proxy.cut()
    const ended = new Promise<string>((resolve) => tab.on('ended', resolve))
    expect(await waitForStatus(tab, 'ended')).toEqual({ status: 'ended', reason: 'revoked' })
    expect(await ended).toBe('revoked')
    await expect(tab.call('whoami')).rejects.toMatchObject({ code: 'SESSION_ENDED' })
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

  it('should refuse handshakes over the per-IP connection rate at CONNECT, with retryAfter, on polling too', async () => {
    server = await startTestServer({ ss: { rateLimits: { handshakesPerIp: { limit: 2, windowMs: 60_000 } } } })
    for (let i = 0; i < 2; i++) expect(await connectError(server.url, { v: 1, token: null, tabId: `t${i}` }, ['polling'])).toEqual({})
    const refused = await connectError(server.url, { v: 1, token: null, tabId: 'next' }, ['polling'])
    expect(refused.code).toBe('RATE_LIMITED')
    expect(refused.retryAfter).toBeGreaterThan(50_000)
    // No session was loaded or made for the refused handshake.
    expect(await new Promise((resolve) => server!.sessionStore.length!((_err, n) => resolve(n)))).toBe(2)
  })

  it('should bound the restore codes ss:cookie mints, per socket and per address, with retryAfter', async () => {
    server = await startTestServer({ ss: { rateLimits: { cookieCodesPerSocket: { limit: 3, windowMs: 60_000 }, cookieCodesPerIp: { limit: 5, windowMs: 60_000 } } } })
    const ask = (socket: RawClient['socket']) => socket.emitWithAck('ss:cookie') as Promise<{ code?: string; error?: { code: string; retryAfter?: number } }>
    const first = await rawRegister(server.url, { token: null, tabId: 'a' })
    const second = await rawRegister(server.url, { token: null, tabId: 'b' })
    try {
      for (let i = 0; i < 3; i++) expect((await ask(first.socket)).code).toBeTypeOf('string')
      const perSocket = await ask(first.socket)
      expect(perSocket.error).toMatchObject({ code: 'RATE_LIMITED' })
      expect(perSocket.error!.retryAfter).toBeGreaterThan(50_000)
      // Another socket from the same address has its own budget, up to the address's.
      for (let i = 0; i < 2; i++) expect((await ask(second.socket)).code).toBeTypeOf('string')
      expect((await ask(second.socket)).error).toMatchObject({ code: 'RATE_LIMITED' })
    } finally {
      first.close()
      second.close()
    }
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

  it('should still take a valid restore code from an IP that sent too many wrong ones', async () => {
    server = await startTestServer({ ss: { rateLimits: { failedRestoresPerIp: { limit: 2, windowMs: 60_000 } } } })
    const restore = (code: string) => fetch(`${server!.url}/session-socket/restore`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ code }),
    })
    for (let i = 0; i < 5; i++) await restore('w'.repeat(32))
    const tab = keep(await rawEngineRegister(server.url, { token: null, tabId: 't' }))
    const { reply } = keep(await rawEngineRegister(server.url, { token: tab.reply!.token, tabId: 't' }))
    expect(reply!.restoreCode).toBeDefined()
    expect((await restore(reply!.restoreCode!)).status).toBe(204)
  })
})

describe('security log', () => {
  it('should log refused origins, bad tokens and rate limits without a token, code, cookie or tab id', async () => {
    const lines: string[] = []
    const previousLog = createDebug.log
    const previousNamespaces = createDebug.disable()
    createDebug.enable('session-socket:*')
    createDebug.log = (...args: unknown[]) => void lines.push(args.map(String).join(' '))
    const secrets: string[] = []
    try {
      server = await startTestServer({ ss: { rateLimits: { handshakesPerIp: { limit: 2, windowMs: 60_000 } } } })
      const token = 'secrettokenvalue'.padEnd(32, 'x')
      const tabId = 'secrettabidvalue'
      const c = await rawRegister(server.url, { token, tabId }, { Cookie: 'connect.sid=s%3Acookievalue.sig' })
      const { code } = (await c.socket.emitWithAck('ss:cookie')) as { code: string }
      secrets.push(c.reply.token, code)
      c.close()
      await fetch(`${server.url}/session-socket/restore`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code }) })
      await connectError(server.url, { v: 1, token, tabId: 'log2' })
      expect((await connectError(server.url, { v: 1, token, tabId: 'log3' })).code).toBe('RATE_LIMITED')
      await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`, { headers: { Origin: 'http://evil.example' } })
    } finally {
      createDebug.log = previousLog
      createDebug.disable()
      if (previousNamespaces) createDebug.enable(previousNamespaces)
    }
    const securityLines = lines.filter((line) => line.includes('session-socket:security'))
    expect(securityLines.some((l) => l.includes('unusable token'))).toBe(true)
    expect(securityLines.some((l) => l.includes('connection rate limit'))).toBe(true)
    expect(securityLines.some((l) => l.includes('refused for origin'))).toBe(true)
    const log = lines.join('\n')
    expect(log).toMatch(/register tab=%s .* secr… /)
    for (const secret of ['secrettokenvalue', 'cookievalue', 'secrettabidvalue', ...secrets]) expect(log).not.toContain(secret)
  })
})
