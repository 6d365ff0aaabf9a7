import type { IncomingMessage, ServerResponse } from 'node:http'
import createDebug from 'debug'
import type { Session, SessionData } from 'express-session'
import { SessionSocketError } from '@session-socket/protocol'
import { refuseHandshake } from './handshake-refusal.js'
import type { PreparedCookies, ProvisionalCookie } from './provisional-cookie.js'
import type { SessionMiddleware } from './session-bridge.js'
import { createProxyTrust, isSameOrigin, markSecure, type ProxyTrust } from './trust-proxy.js'
import { recordHandshakeRefused } from './telemetry.js'

const debug = createDebug('session-socket:handshake')
const security = createDebug('session-socket:security')

/** Which Origins may open a socket or call the restore endpoint. */
export type AllowedOrigins = 'same-origin' | readonly string[] | ((origin: string) => boolean)

/** What the handshake learned about the session, kept on the Engine.IO handshake request. */
export interface HandshakeSession {
  /** The session id express-session settled on for the handshake. */
  sessionId: string
  /** True when no valid cookie named an existing session: express-session made this one now. */
  isNew: boolean
  /** True when the handshake response carries a cookie for this session (the provisional cookie). */
  cookieSet: boolean
  session: Session & Partial<SessionData>
}

const kHandshake = Symbol('session-socket.handshake')
const kSetCookie = Symbol('session-socket.set-cookie')

type HandshakeRequest = IncomingMessage & {
  _query?: Record<string, string>
  session?: Session & Partial<SessionData>
  sessionID?: string
  sessionStore?: unknown
  [kHandshake]?: HandshakeSession
  [kSetCookie]?: string[]
}

/** The session the handshake request carried, or undefined if none could be loaded. */
export function handshakeSession(req: IncomingMessage): HandshakeSession | undefined {
  return (req as HandshakeRequest)[kHandshake]
}

/** No proxy trusted: `same-origin` compares with the `Host` header. */
const UNTRUSTED = createProxyTrust(undefined)

/**
 * Checks an Origin header against the allowlist. A missing Origin is allowed: browsers send
 * it on every cross-origin request and WebSocket, so a request without one is same-origin or
 * not from a browser, and neither can ride a victim's cookie. `same-origin` compares with the
 * host the browser addressed, read through `proxy` (trustProxy) behind a reverse proxy.
 */
export function isOriginAllowed(req: IncomingMessage, allowed: AllowedOrigins, proxy: ProxyTrust = UNTRUSTED): boolean {
  const origin = req.headers.origin
  if (origin === undefined) return true
  if (typeof allowed === 'function') return allowed(origin)
  if (allowed === 'same-origin') return isSameOrigin(origin, req, proxy)
  return allowed.includes(origin)
}

/** True when the raw Cookie header carries `sessionId` (as express-session's signed `s:<id>.<sig>`). */
function cookieNames(req: IncomingMessage, sessionId: string): boolean {
  const header = req.headers.cookie
  if (!header) return false
  return header.includes(`s%3A${sessionId}.`) || header.includes(`s:${sessionId}.`)
}

/**
 * The Set-Cookie lines session-socket adds to a handshake response (Engine.IO's
 * `initial_headers`, for polling and the WebSocket 101 alike): the provisional cookie of a new
 * session, or its deletion.
 *
 * @example
 * io.engine.on('initial_headers', (headers, req) => {
 *   const lines = handshakeSetCookie(req)
 *   if (lines) headers['Set-Cookie'] = [...(headers['Set-Cookie'] ?? []), ...lines]
 * })
 */
export function handshakeSetCookie(req: IncomingMessage): string[] | undefined {
  return (req as HandshakeRequest)[kSetCookie]
}

/**
 * The Engine.IO middleware: on a handshake (no `sid` yet) it refuses a foreign Origin before
 * any session is loaded, then runs express-session so that a browser whose only request is
 * this handshake gets a session and its Set-Cookie, over polling and WebSocket alike.
 * Later requests of the same Engine.IO session (polls, the upgrade) are left alone.
 */
export function createHandshakeMiddleware(options: {
  session: SessionMiddleware
  allowedOrigins: AllowedOrigins
  /** How the request's host is read behind trusted proxies. @default nothing trusted */
  proxy?: ProxyTrust
  /** Told of every handshake refused for its Origin, before it is refused. */
  onOriginRefused?: (req: IncomingMessage) => void
  onStore: (store: any) => void
  /** Returns why this handshake is refused (e.g. a rate limit), or undefined to let it in. */
  admit?: (req: IncomingMessage) => SessionSocketError | undefined
  /** The provisional cookie: read before express-session, set for a new session instead of the session cookie. */
  cookies: ProvisionalCookie
  /** A signed-in cookie came with a provisional one naming `sessionId`: tell its tabs to rejoin. */
  onHeal: (sessionId: string) => void
}) {
  return function sessionSocketHandshake(req: HandshakeRequest, res: ServerResponse, next: (err?: unknown) => void): void {
    if (req._query?.sid !== undefined) return next()
    // Refused handshakes load no session; the client is told why at its CONNECT (see handshake-refusal.ts).
    if (!isOriginAllowed(req, options.allowedOrigins, options.proxy)) {
      refuseHandshake(req, new SessionSocketError('FORBIDDEN', `Origin ${req.headers.origin ?? ''} is not allowed; add it to allowedOrigins`))
      security('handshake refused for origin %s', req.headers.origin)
      options.onOriginRefused?.(req)
      recordHandshakeRefused('origin')
      return next()
    }
    const refusal = options.admit?.(req)
    if (refusal !== undefined) {
      refuseHandshake(req, refusal)
      return next()
    }
    // The handshake never sets the session cookie (express-session would, from inside
    // writeHead(), for a new session with saveUninitialized or for a rolling one): arriving after
    // a racing sign-in's cookie, it would replace it. A new session gets the provisional cookie.
    // Plain data, no getter: an accessor puts the record in dictionary mode and keeps this scope
    // (with `next`) alive per socket.
    const { cookies } = options
    // express-session reads req.secure for a secure cookie; behind TLS termination only trustProxy can tell.
    markSecure(req, options.proxy ?? UNTRUSTED)
    cookies.dropSessionCookie(res)
    const unread: PreparedCookies = { promoted: false, clear: false }
    void cookies.prepare(req).catch(() => unread).then((prepared) => {
      options.session(req, res, (err?: unknown) => {
        if (err) {
          debug('session middleware failed on handshake: %s', (err as Error).message)
          return next()
        }
        if (req.sessionStore) options.onStore(req.sessionStore)
        const session = req.session
        const sessionId = req.sessionID
        if (session && sessionId) {
          cookies.settle(req, prepared)
          const isNew = !cookieNames(req, sessionId)
          const line = isNew ? cookies.mint(req, sessionId) : prepared.clear ? cookies.clear(req) : undefined
          if (line) req[kSetCookie] = [line]
          req[kHandshake] = { sessionId, isNew, cookieSet: isNew && line !== undefined, session }
        }
        if (prepared.heal !== undefined) options.onHeal(prepared.heal)
        next()
      })
    })
  }
}

/**
 * Checks allowedOrigins at start-up: a wildcard would let any site open sockets with your
 * users' cookies (Cross-Site WebSocket Hijacking), and a path or typo never matches.
 */
export function checkAllowedOrigins(allowed: AllowedOrigins): void {
  if (allowed === 'same-origin' || typeof allowed === 'function') return
  if (!Array.isArray(allowed)) throw new TypeError("allowedOrigins must be 'same-origin', an array of origins, or a function (origin) => boolean")
  for (const origin of allowed) {
    if (origin === '*' || origin === 'null') {
      throw new TypeError(`allowedOrigins must not contain '${origin}': any site could then open sockets with your users' cookies (Cross-Site WebSocket Hijacking). List your origins, e.g. ['https://app.example.com']`)
    }
    let parsed: URL | undefined
    try {
      parsed = new URL(origin)
    } catch {
      parsed = undefined
    }
    if (!parsed || parsed.origin !== origin) {
      throw new TypeError(`allowedOrigins entry '${origin}' is not an origin; write scheme://host[:port] with no path or trailing slash, e.g. 'https://app.example.com'`)
    }
  }
}
