import type { IncomingMessage, ServerResponse } from 'node:http'
import createDebug from 'debug'
import { SessionSocketError, parseRestore, type WireError } from '@session-socket/protocol'
import { COOKIE_CHECK_HEADER, cookieCheckId, createCookieCheck } from './cookie-check.js'
import { isOriginAllowed, type AllowedOrigins } from './handshake.js'
import type { LinkStore } from './link-store.js'
import type { PreparedCookies, ProvisionalCookie } from './provisional-cookie.js'
import type { RateLimiter } from './rate-limiter.js'
import { hashSecret } from './secrets.js'
import type { SessionBridge } from './session-bridge.js'
import type { ProxyTrust } from './trust-proxy.js'
import { recordCookieRestore, recordRateLimited } from './telemetry.js'

const debug = createDebug('session-socket:http-routes')
const security = createDebug('session-socket:security')

/** Largest restore body read (bytes): `{"code":"…"}` is about 50. */
const MAX_BODY = 1024

type Req = IncomingMessage & { body?: unknown; session?: unknown; sessionID?: string; sessionStore?: any; originalUrl?: string }
type Next = (err?: unknown) => void

const STATUS: Partial<Record<WireError['code'], number>> = {
  BAD_REQUEST: 400,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  SESSION_ENDED: 410,
  RATE_LIMITED: 429,
  STORE_UNAVAILABLE: 503,
}

function send(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.statusCode = status
    res.end()
    return
  }
  res.statusCode = status
  res.setHeader('Content-Type', 'application/json')
  res.end(JSON.stringify(body))
}

function sendError(res: ServerResponse, error: SessionSocketError): void {
  recordCookieRestore(error)
  if (res.headersSent) return
  res.setHeader('Connection', 'close')
  // HTTP's own way of saying it too (a 503 or 429), for clients and proxies that read headers.
  if (error.retryAfter !== undefined) res.setHeader('Retry-After', String(Math.ceil(error.retryAfter / 1000)))
  send(res, STATUS[error.code] ?? 500, { error: error.toWire() })
}

function readBody(req: Req): Promise<unknown> {
  // express.json() (or any body parser) may have read the stream already.
  if (req.body !== undefined && typeof req.body === 'object') return Promise.resolve(req.body)
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let tooLarge = false
    req.on('data', (chunk: Buffer) => {
      if (tooLarge) return
      size += chunk.length
      if (size > MAX_BODY) {
        // Answer now and drain the rest unread; the connection is not reused.
        tooLarge = true
        reject(new SessionSocketError('BAD_REQUEST', `restore body is larger than ${MAX_BODY} bytes`))
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => {
      if (tooLarge) return
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')))
      } catch {
        reject(new SessionSocketError('BAD_REQUEST', 'restore body must be JSON { code }'))
      }
    })
    req.on('error', reject)
  })
}

/** True when a session holds nothing but its cookie: express-session's "uninitialized". */
function isEmpty(session: object): boolean {
  return Object.keys(session).every((key) => key === 'cookie')
}

/**
 * The SDK's HTTP middleware, mounted before the app's session middleware. On every request it
 * runs express-session itself, after letting session-socket's provisional cookie stand in for a
 * missing or unusable session cookie (the app's own session middleware then finds `req.session`
 * set and passes), so plain HTTP shares the session the socket is in. It also serves
 * `POST {path}/restore`, which trades a one-time restore code (from the register reply) for
 * the provisional cookie of the session the code is bound to, unless the request's own cookie
 * names another live, non-empty session (a sign-in won): then it answers
 * `{ restored: false, reason: 'cookie-session' }` and sets nothing.
 */
export function createHttpRoutes(options: {
  path: string
  allowedOrigins: AllowedOrigins
  /** How the request's host is read behind trusted proxies (trustProxy). @default nothing trusted */
  proxy?: ProxyTrust
  links: LinkStore
  sessions: SessionBridge
  cookies: ProvisionalCookie
  /** A signed-in cookie came with a provisional one naming this session: its tabs rejoin. */
  onHeal: (sessionId: string) => void
  now: () => number
  clientIp: (req: IncomingMessage) => string
  /** Counts wrong, used or expired codes per IP. */
  failedPerIp?: RateLimiter | undefined
  /** Counts restores per session. */
  perSession?: RateLimiter | undefined
}) {
  const restorePath = `${options.path}/restore`
  const checkPath = `${options.path}/cookie`
  const checkCookie = createCookieCheck(options.sessions)

  const corsHeaders = (req: Req, res: ServerResponse): void => {
    const origin = req.headers.origin
    if (origin === undefined) return
    res.setHeader('Access-Control-Allow-Origin', origin)
    res.setHeader('Access-Control-Allow-Credentials', 'true')
    res.setHeader('Vary', 'Origin')
    res.setHeader('Access-Control-Expose-Headers', COOKIE_CHECK_HEADER)
  }

  const { cookies } = options

  /** Runs the app's session middleware on `req`, the provisional cookie standing in when it must. */
  async function loadSession(req: Req, res: ServerResponse): Promise<PreparedCookies> {
    const prepared = await cookies.prepare(req)
    await new Promise<void>((resolve, reject) => options.sessions.middleware(req, res, (err?: unknown) => (err ? reject(err) : resolve())))
    cookies.settle(req, prepared)
    if (prepared.heal !== undefined) options.onHeal(prepared.heal)
    return prepared
  }

  return function sessionSocketHttp(req: Req, res: ServerResponse, next: Next): void {
    if (req.session !== undefined) {
      // The provisional cookie must be read before express-session reads the cookies.
      return next(new TypeError('session-socket: app.use(ss.http()) must come before your session middleware (app.use(session(...))): ss.http() runs it itself, after reading the provisional cookie the SDK sets instead of the session cookie'))
    }
    const url = (req.originalUrl ?? req.url ?? '').split('?')[0]
    if (url !== restorePath && url !== checkPath) {
      loadSession(req, res).then(
        (prepared) => {
          cookies.guard(req, res, prepared)
          next()
        },
        (err) => next(err),
      )
      return
    }
    if (!isOriginAllowed(req, options.allowedOrigins, options.proxy)) {
      security('restore refused for origin %s', req.headers.origin)
      return sendError(res, new SessionSocketError('FORBIDDEN', `Origin ${req.headers.origin ?? ''} is not allowed; add it to allowedOrigins`))
    }
    corsHeaders(req, res)
    if (url === checkPath) {
      if (req.method !== 'GET') {
        res.setHeader('Allow', 'GET')
        return send(res, 405, { error: { code: 'BAD_REQUEST', message: 'use GET' } })
      }
      res.setHeader('Cache-Control', 'no-store')
      // The provisional cookie stands in for the session cookie here as on every request.
      loadSession(req, res)
        .then(() => checkCookie(req, res))
        .then((answer) => send(res, 200, answer), (err: unknown) => sendError(res, SessionSocketError.from(err)))
      return
    }
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'POST')
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type')
      return send(res, 204)
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST')
      return send(res, 405, { error: { code: 'BAD_REQUEST', message: 'use POST' } })
    }
    restore(req, res).catch((err: unknown) => sendError(res, SessionSocketError.from(err)))
  }

  async function restore(req: Req, res: ServerResponse): Promise<void> {
    const ip = options.clientIp(req)
    // Failures slow down only the failing: a valid code is never refused for what other
    // clients behind the same address (a NAT) sent.
    const failed = (error: unknown): SessionSocketError => {
      const wait = options.failedPerIp?.hit(ip) ?? 0
      if (wait === 0) return SessionSocketError.from(error)
      security('restore refused: too many failed restores from one IP')
      recordRateLimited('failedRestoresPerIp')
      return new SessionSocketError('RATE_LIMITED', 'too many failed restore attempts; try again later', { retryAfter: wait })
    }
    let code: string
    try {
      code = parseRestore(await readBody(req)).code
    } catch (err) {
      throw failed(err)
    }
    const record = await options.links.takeRestoreCode(hashSecret(code), options.now())
    if (!record) {
      security('restore with an unknown, used or expired code')
      throw failed(new SessionSocketError('NOT_FOUND', 'restore code is unknown, used or expired'))
    }
    const tooMany = options.perSession?.hit(record.sessionId) ?? 0
    if (tooMany > 0) {
      recordRateLimited('restoresPerSession')
      throw new SessionSocketError('RATE_LIMITED', 'too many restores for this session; try again later', { retryAfter: tooMany })
    }
    const data = await options.sessions.get(record.sessionId)
    if (!data) throw new SessionSocketError('SESSION_ENDED', 'the session has ended')
    // The restore response never carries the session cookie: it could reach the browser after
    // a sign-in's and replace the signed-in cookie. It sets the provisional cookie, which never
    // replaces a session cookie, and express-session (run here to read the request's cookies)
    // neither saves nor sets anything for it.
    cookies.dropSessionCookie(res)
    await loadSession(req, res)
    if (!req.sessionStore) throw new SessionSocketError('STORE_UNAVAILABLE', 'session store unavailable', { retryAfter: 1000 })
    const current = req.sessionID
    const named = req.session !== undefined && current !== undefined && namesSession(req, current, cookies)
    const session = req.session as object | undefined
    delete req.session
    if (named && current === record.sessionId) {
      debug('restore: the cookie already names the session')
      recordCookieRestore()
      res.setHeader(COOKIE_CHECK_HEADER, cookieCheckId(record.sessionId))
      return send(res, 204)
    }
    if (named && session && !isEmpty(session)) {
      // A sign-in (or another live session) won: the tab must follow the cookie, not replace it.
      debug('restore refused: the cookie names another live, non-empty session')
      return send(res, 200, { restored: false, reason: 'cookie-session' })
    }
    const line = cookies.mint(req, record.sessionId)
    if (!line) throw new SessionSocketError('FORBIDDEN', 'the session cookie cannot be set on this request (a secure cookie over plain HTTP, or a cookie path this route is not under)')
    res.setHeader('Set-Cookie', [...[res.getHeader('Set-Cookie') ?? []].flat().map(String), line])
    debug('restored the provisional cookie of a session')
    recordCookieRestore()
    // For a client that checks the browser kept the cookie (GET {path}/cookie answers the same).
    res.setHeader(COOKIE_CHECK_HEADER, cookieCheckId(record.sessionId))
    send(res, 204)
  }
}

/** True when the request's cookie (the provisional one promoted in its place included) names `sessionId` and it exists. */
function namesSession(req: Req, sessionId: string, cookies: ProvisionalCookie): boolean {
  const header = req.headers.cookie ?? ''
  return header.includes(`${cookies.name}=s%3A${sessionId}.`) || header.includes(`${cookies.name}=s:${sessionId}.`)
}
