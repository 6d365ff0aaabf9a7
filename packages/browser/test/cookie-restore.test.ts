import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { EVENTS } from '@session-socket/protocol'
import { requestRestoreCode, restoreAndCheckCookie, restoreCookie } from '../src/cookie-restore.js'
import { connectTo, startBareServer, type BareServer } from './helpers/bare-server.js'

const closers: Array<() => Promise<unknown>> = []

afterEach(async () => {
  vi.unstubAllGlobals()
  for (const close of closers.splice(0)) await close()
})

interface Received {
  method?: string
  url?: string
  contentType?: string
  body: string
}

/** An HTTP server that answers every request with `status` (or never, with 0) and records it. */
async function restoreRoute(status: number, answer?: unknown) {
  const received: Received[] = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (chunk) => (body += chunk))
    req.on('end', () => {
      received.push({ method: req.method, url: req.url, contentType: req.headers['content-type'], body })
      if (status === 0) return
      if (answer !== undefined) res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(answer))
      else res.writeHead(status, { 'Set-Cookie': 'sid=restored; Path=/; HttpOnly' }).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(() => new Promise((resolve) => server.close(resolve)))
  closers.push(async () => server.closeAllConnections())
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received }
}

function recordingLog() {
  const lines: string[] = []
  return { lines, log: (level: string, message: string) => void lines.push(`${level}: ${message}`) }
}

/**
 * A restore route that says which session it restored (Session-Socket-Check: s1) and a check
 * route that names the session of the cookie the request carried, as the server's routes do.
 */
async function checkingRoutes() {
  const server = http.createServer((req, res) => {
    if (req.url === '/session-socket/restore') {
      res.writeHead(204, { 'Session-Socket-Check': 's1', 'Set-Cookie': 'sid=s1; Path=/' }).end()
      return
    }
    const named = (req.headers.cookie ?? '').includes('sid=s1')
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ session: named ? 's1' : null }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(() => new Promise((resolve) => server.close(resolve)))
  closers.push(async () => server.closeAllConnections())
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

describe('restoreAndCheckCookie', () => {
  it('should say kept when the check names the restored session, not-stored when the cookie never came back', async () => {
    const url = await checkingRoutes()
    const options = { url, path: '/session-socket', restoreTimeout: 1000, log: () => {} }
    // A fetch with a cookie jar of one cookie, as a browser; and one that drops every Set-Cookie.
    let jar = ''
    const browserFetch: typeof fetch = async (input, init) => {
      const response = await fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), ...(jar ? { Cookie: jar } : {}) } })
      const setCookie = response.headers.get('set-cookie')
      if (setCookie) jar = setCookie.split(';')[0]!
      return response
    }
    expect(await restoreAndCheckCookie('code', { ...options, fetch: browserFetch })).toEqual({ kept: true })
    const { lines, log } = recordingLog()
    expect(await restoreAndCheckCookie('code', { ...options, log })).toEqual({ kept: false, reason: 'not-stored' })
    expect(lines.some((line) => line.startsWith('warn: the browser did not keep the session cookie'))).toBe(true)
  })

  it('should say failed when the restore is refused', async () => {
    const route = await restoreRoute(404)
    expect(await restoreAndCheckCookie('used-code', { url: route.url, path: '/session-socket', restoreTimeout: 1000, log: () => {} })).toEqual({ kept: false, reason: 'failed' })
  })
})

describe('restoreCookie', () => {
  it("should post to the server's origin when the url names a namespace", async () => {
    const route = await restoreRoute(204)
    expect(await restoreCookie('code', { url: `${route.url}/chat`, path: '/session-socket', restoreTimeout: 1000, log: () => {} })).toEqual({ outcome: 'restored', response: expect.anything() })
    expect(route.received[0]!.url).toBe('/session-socket/restore')
  })

  it('should post the code as JSON to the restore route under the path, and resolve restored once answered OK', async () => {
    const route = await restoreRoute(204)
    const { lines, log } = recordingLog()
    expect(await restoreCookie('one-time-code', { url: route.url, path: '/auth/ss', restoreTimeout: 1000, log })).toMatchObject({ outcome: 'restored' })
    expect(route.received).toEqual([{ method: 'POST', url: '/auth/ss/restore', contentType: 'application/json', body: '{"code":"one-time-code"}' }])
    expect(lines).toEqual(['info: session cookie restored'])
  })

  it('should resolve other, and set nothing, when the server says the cookie names another live session', async () => {
    const route = await restoreRoute(200, { restored: false, reason: 'cookie-session' })
    const { lines, log } = recordingLog()
    expect(await restoreCookie('code', { url: route.url, path: '/session-socket', restoreTimeout: 1000, log })).toMatchObject({ outcome: 'other' })
    expect(lines).toEqual(['info: cookie names another session'])
  })

  it('should send the request with the cookies of the page (credentials included)', async () => {
    const route = await restoreRoute(204)
    const seen: RequestInit[] = []
    const recordingFetch: typeof fetch = (input, init) => {
      seen.push(init ?? {})
      return fetch(input, init)
    }
    await restoreCookie('code', { url: route.url, path: '/session-socket', restoreTimeout: 1000, fetch: recordingFetch, log: () => {} })
    expect(seen[0]?.credentials).toBe('include')
  })

  it('should resolve failed, with a warning, when the server refuses the code', async () => {
    const route = await restoreRoute(403)
    const { lines, log } = recordingLog()
    expect(await restoreCookie('used-code', { url: route.url, path: '/session-socket', restoreTimeout: 1000, log })).toMatchObject({ outcome: 'failed' })
    expect(lines).toEqual(['warn: cookie restore answered 403'])
  })

  it('should resolve failed, with a warning, when the server does not answer within restoreTimeout', async () => {
    const route = await restoreRoute(0)
    const { lines, log } = recordingLog()
    const started = Date.now()
    expect(await restoreCookie('code', { url: route.url, path: '/session-socket', restoreTimeout: 100, log })).toMatchObject({ outcome: 'failed' })
    expect(Date.now() - started).toBeLessThan(1000)
    expect(lines).toEqual(['warn: cookie restore failed'])
  })

  it('should resolve failed, with a warning, when there is no fetch', async () => {
    vi.stubGlobal('fetch', undefined)
    const { lines, log } = recordingLog()
    expect(await restoreCookie('code', { url: 'http://127.0.0.1:1', path: '/session-socket', restoreTimeout: 100, log })).toMatchObject({ outcome: 'failed' })
    expect(lines).toEqual(['warn: no fetch available: the session cookie cannot be restored'])
  })
})

describe('requestRestoreCode', () => {
  let server: BareServer | undefined

  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  async function connected(answer: (ack: (reply: unknown) => void) => void) {
    server = await startBareServer()
    const client = server.client()
    const socket = await connectTo(server, client)
    socket.on(EVENTS.COOKIE, answer)
    return client
  }

  it("should resolve with the server's restore code", async () => {
    const client = await connected((ack) => ack({ code: 'fresh-code' }))
    expect(await requestRestoreCode(client, { restoreTimeout: 1000, log: () => {} })).toBe('fresh-code')
  })

  it('should resolve undefined, with a warning, when the server gives an error instead', async () => {
    const client = await connected((ack) => ack({ error: { code: 'UNREGISTERED', message: 'not registered' } }))
    const { lines, log } = recordingLog()
    expect(await requestRestoreCode(client, { restoreTimeout: 1000, log })).toBeUndefined()
    expect(lines).toEqual(['warn: the server gave no restore code'])
  })

  it('should resolve undefined, with a warning, when no answer comes within restoreTimeout', async () => {
    const client = await connected(() => {})
    const { lines, log } = recordingLog()
    expect(await requestRestoreCode(client, { restoreTimeout: 100, log })).toBeUndefined()
    expect(lines).toEqual(['warn: no restore code came'])
  })
})
