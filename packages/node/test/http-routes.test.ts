import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import express from 'express'
import session from 'express-session'
import { Server } from 'socket.io'
import { createSessionSocketServer } from '@session-socket/node'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { rawRegister, type RawClient } from './helpers/raw-client.js'

let server: TestServer | undefined
const clients: RawClient[] = []

afterEach(async () => {
  for (const client of clients.splice(0)) client.close()
  await server?.close()
  server = undefined
})

/** A session with a token, then a handshake without its cookie: the reply carries a restore code. */
async function restoreCodeFor(now?: () => number) {
  server = await startTestServer(now ? { ss: { now } } : {})
  const first = await rawRegister(server.url, { token: null, tabId: 'tab-a' })
  clients.push(first)
  const second = await rawRegister(server.url, { token: first.reply.token, tabId: 'tab-a' })
  clients.push(second)
  const sessionId = (await second.socket.emitWithAck('ss:call', { id: 'w1', m: 'whoami' })).r.sessionId as string
  return { code: second.reply.restoreCode!, sessionId }
}

function restore(code: unknown, init: RequestInit = {}) {
  return fetch(`${server!.url}/session-socket/restore`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ code }),
    ...init,
  })
}

async function sessionOf(response: Response): Promise<string> {
  const cookie = response.headers.getSetCookie()[0]!.split(';')[0]!
  const who = await fetch(`${server!.url}/whoami`, { headers: { Cookie: cookie } })
  return ((await who.json()) as { sessionId: string }).sessionId
}

describe('POST /session-socket/restore', () => {
  it('should hand a restore code when the handshake cookie does not name the restored session', async () => {
    const { code } = await restoreCodeFor()
    expect(code).toMatch(/^[A-Za-z0-9_-]{32}$/)
  })

  it('should set the cookie of the session the code is bound to', async () => {
    const { code, sessionId } = await restoreCodeFor()
    const response = await restore(code)
    expect(response.status).toBe(204)
    expect(await sessionOf(response)).toBe(sessionId)
  })

  it('should refuse a code the second time', async () => {
    const { code, sessionId } = await restoreCodeFor()
    expect((await restore(code)).status).toBe(204)
    const again = await restore(code)
    expect(again.status).toBe(404)
    expect(await again.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'restore code is unknown, used or expired' } })
    // The app's own session middleware may give the cookieless request a new session, never the restored one.
    if (again.headers.getSetCookie().length > 0) expect(await sessionOf(again)).not.toBe(sessionId)
  })

  it('should refuse a code after it expired', async () => {
    let offset = 0
    const { code } = await restoreCodeFor(() => Date.now() + offset)
    offset = 61_000
    expect((await restore(code)).status).toBe(404)
  })

  it('should refuse a code whose session has ended', async () => {
    const { code, sessionId } = await restoreCodeFor()
    await new Promise<void>((resolve) => server!.sessionStore.destroy(sessionId, () => resolve()))
    const response = await restore(code)
    expect(response.status).toBe(410)
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('SESSION_ENDED')
  })

  it('should only accept POST', async () => {
    server = await startTestServer()
    const response = await fetch(`${server.url}/session-socket/restore`)
    expect(response.status).toBe(405)
    expect(response.headers.get('allow')).toBe('POST')
  })

  it('should refuse a foreign Origin before reading the code', async () => {
    const { code } = await restoreCodeFor()
    const response = await restore(code, { headers: { 'Content-Type': 'application/json', Origin: 'http://evil.example' } })
    expect(response.status).toBe(403)
    // The code was not consumed by the refused request.
    expect((await restore(code)).status).toBe(204)
  })

  it.each([
    ['a missing code', {}],
    ['a number', { code: 42 }],
    ['a short code', { code: 'abc' }],
    ['an extra field', { code: 'a'.repeat(32), extra: 1 }],
  ])('should answer BAD_REQUEST to %s', async (_name, body) => {
    server = await startTestServer()
    const response = await fetch(`${server.url}/session-socket/restore`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    })
    expect(response.status).toBe(400)
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('BAD_REQUEST')
  })

  it('should answer BAD_REQUEST to a body that is not JSON or too large', async () => {
    server = await startTestServer()
    const url = `${server.url}/session-socket/restore`
    expect((await fetch(url, { method: 'POST', body: 'not json' })).status).toBe(400)
    expect((await fetch(url, { method: 'POST', body: 'x'.repeat(5000) })).status).toBe(400)
  })
})

describe('restoreCookie()', () => {
  it('should set the cookie again without reconnecting when it was lost while connected', async () => {
    const { startCookieJarProxy } = await import('@session-socket/test-helpers/cookie-jar-proxy')
    const { makeBrowser, waitForStatus, closeAllClients } = await import('@session-socket/test-helpers/clients')
    server = await startTestServer()
    const proxy = await startCookieJarProxy(server.port)
    try {
      const tab = makeBrowser(proxy.url).open()
      await waitForStatus(tab)
      const { sessionId } = (await tab.call('whoami')) as { sessionId: string }
      const socketId = tab.socket.id
      proxy.jar.clear()
      expect(await tab.restoreCookie()).toEqual({ kept: true })
      expect(tab.socket.id).toBe(socketId)
      const who = (await (await fetch(`${proxy.url}/whoami`)).json()) as { sessionId: string }
      expect(who.sessionId).toBe(sessionId)
      closeAllClients()
    } finally {
      await proxy.close()
    }
  })

  it('should never replace a cookie that names a live, non-empty session, even with a valid code: it says cookie-session and sets nothing', async () => {
    const { code, sessionId } = await restoreCodeFor()
    // The browser signed in meanwhile (a cookieless sign-in racing the restore).
    const login = await fetch(`${server!.url}/login?user=ada`, { method: 'POST' })
    const signedIn = login.headers.getSetCookie()[0]!.split(';')[0]!
    const response = await restore(code, { headers: { 'Content-Type': 'application/json', Cookie: signedIn } })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ restored: false, reason: 'cookie-session' })
    expect(response.headers.getSetCookie()).toEqual([])
    const who = (await (await fetch(`${server!.url}/whoami`, { headers: { Cookie: signedIn } })).json()) as { sessionId: string; userId: string }
    expect(who).toMatchObject({ userId: 'ada' })
    expect(who.sessionId).not.toBe(sessionId)
  })

  it('should set only the provisional cookie, never the session cookie', async () => {
    const { code } = await restoreCodeFor()
    const names = (await restore(code)).headers.getSetCookie().map((line) => line.slice(0, line.indexOf('=')))
    expect(names).toEqual(['connect.sid.ss'])
  })

  it('should put the restored session over a cookie of an empty session (a parallel cookieless request made it)', async () => {
    const { code, sessionId } = await restoreCodeFor()
    const empty = (await fetch(`${server!.url}/whoami`)).headers.getSetCookie()[0]!.split(';')[0]!
    const response = await restore(code, { headers: { 'Content-Type': 'application/json', Cookie: empty } })
    expect(response.status).toBe(204)
    const provisional = response.headers.getSetCookie()[0]!.split(';')[0]!
    const who = (await (await fetch(`${server!.url}/whoami`, { headers: { Cookie: `${empty}; ${provisional}` } })).json()) as { sessionId: string }
    expect(who.sessionId).toBe(sessionId)
  })

  it('should refuse to run after the session middleware, with the fix in the error', async () => {
    const sessionMiddleware = session({ secret: 's', resave: false, saveUninitialized: false })
    const app = express()
    const httpServer = http.createServer(app)
    const io = new Server(httpServer)
    const ss = createSessionSocketServer(io, { session: sessionMiddleware, sessionCheckInterval: 0, sweepInterval: 0 })
    app.use(sessionMiddleware)
    app.use(ss.http())
    app.get('/', (_req, res) => void res.send('ok'))
    let message = ''
    app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      message = err.message
      res.status(500).end()
    })
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve))
    try {
      const response = await fetch(`http://127.0.0.1:${(httpServer.address() as AddressInfo).port}/`)
      expect(response.status).toBe(500)
      expect(message).toContain('app.use(ss.http()) must come before your session middleware')
    } finally {
      ss.close()
      io.close()
    }
  })

  it('should send the tab into the session a sign-in gave the browser between its handshake and its restore', async () => {
    const { startCookieJarProxy } = await import('@session-socket/test-helpers/cookie-jar-proxy')
    const { makeBrowser, waitForStatus, closeAllClients } = await import('@session-socket/test-helpers/clients')
    server = await startTestServer()
    const proxy = await startCookieJarProxy(server.port)
    try {
      const browser = makeBrowser(proxy.url)
      const first = browser.open()
      await waitForStatus(first)
      first.close()
      proxy.jar.clear()
      // The cookie is gone; the token restores the session and the tab posts its code. Just
      // before that POST leaves, a sign-in of the same browser lands.
      let signedIn: Promise<{ sessionId: string }> | undefined
      const signInFirst: typeof fetch = async (input, init) => {
        signedIn ??= fetch(`${proxy.url}/login?user=ada`, { method: 'POST' }).then((r) => r.json() as Promise<{ sessionId: string }>)
        await signedIn
        return fetch(input, init)
      }
      const tab = browser.open({ fetch: signInFirst })
      const state = await waitForStatus(tab)
      expect(state).toMatchObject({ status: 'ready', reason: 'cookie-session' })
      const { sessionId } = await signedIn!
      expect(((await tab.call('whoami')) as { sessionId: string }).sessionId).toBe(sessionId)
      // The signed-in cookie is still the browser's.
      expect(((await (await fetch(`${proxy.url}/whoami`)).json()) as { userId: string }).userId).toBe('ada')
      closeAllClients()
    } finally {
      await proxy.close()
    }
  })
})
