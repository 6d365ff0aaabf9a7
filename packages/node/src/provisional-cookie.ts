import type { IncomingMessage, ServerResponse } from 'node:http'
import createDebug from 'debug'
import type { Session, SessionData } from 'express-session'
import type { SessionMiddleware } from './session-bridge.js'

const debug = createDebug('session-socket:provisional-cookie')

/**
 * What `prepare` found in a request's cookies, and did to them.
 *
 * @example
 * const prepared = await cookies.prepare(req)
 * if (prepared.promoted) debug('the provisional cookie stands in for the session cookie')
 */
export interface PreparedCookies {
  /** The provisional cookie was put in the session cookie's place for express-session. */
  promoted: boolean
  /** The response should delete the provisional cookie (a valid cookie of a non-empty session came with it). */
  clear: boolean
  /** A session the provisional cookie named while a signed-in session cookie came with it: its tabs should rejoin. */
  heal?: string
}

type CookieRequest = IncomingMessage & { session?: Session & Partial<SessionData>; sessionID?: string; originalUrl?: string; secure?: boolean }

/** The session a cookie value named, as express-session loaded it. */
interface Loaded {
  sessionId: string
  session: Session & Partial<SessionData>
}

/** True when a session holds nothing but its cookie: express-session's "uninitialized". */
function isEmpty(session: object): boolean {
  return Object.keys(session).every((key) => key === 'cookie')
}

/** The raw (still encoded) value of each cookie of a Cookie header; the first of a name wins, as express-session reads it. */
function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>()
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq < 1) continue
    const name = part.slice(0, eq).trim()
    if (!cookies.has(name)) cookies.set(name, part.slice(eq + 1).trim())
  }
  return cookies
}

/** The Cookie header with `name` carrying `value` (first), every other cookie kept. */
function withCookie(header: string, name: string, value: string): string {
  const rest = header.split(';').filter((part) => {
    const eq = part.indexOf('=')
    return eq < 1 || part.slice(0, eq).trim() !== name
  })
  return [`${name}=${value}`, ...rest.map((part) => part.trim()).filter(Boolean)].join('; ')
}

/** The name and the session id a Set-Cookie line carries (the id from express-session's signed `s:<id>.<signature>`). */
function readSetCookie(line: string): { name: string; sessionId: string | undefined } {
  const eq = line.indexOf('=')
  const name = line.slice(0, eq).trim()
  let value = line.slice(eq + 1).split(';')[0]!.trim()
  try {
    value = decodeURIComponent(value)
  } catch {
    return { name, sessionId: undefined }
  }
  const dot = value.lastIndexOf('.')
  return { name, sessionId: value.startsWith('s:') && dot > 2 ? value.slice(2, dot) : undefined }
}

function setCookieLines(value: unknown): string[] {
  if (value === undefined) return []
  return Array.isArray(value) ? value.map(String) : [String(value)]
}

/**
 * session-socket's provisional cookie: the session cookie's value under another name
 * (`<name>.ss`, same attributes, signed by express-session with the app's secret). The SDK sets
 * it, never the session cookie itself: cookies are last-writer-wins, and a Set-Cookie of the SDK
 * (a first handshake, a restore) that reached the browser after a racing sign-in's would
 * replace the signed-in cookie. The provisional cookie stands in for the session cookie only
 * while that one is missing, invalid, or names an empty session; a request carrying a valid
 * session cookie of a non-empty session deletes it. Read by the SDK's handshake middleware and
 * by `ss.http()`, which must therefore run before the app's own session middleware.
 *
 * @example
 * const cookies = createProvisionalCookie(sessionMiddleware)
 * const prepared = await cookies.prepare(req)   // before express-session runs
 * res.setHeader('Set-Cookie', cookies.mint(req, sessionId)!)
 */
export interface ProvisionalCookie {
  /** The app's session cookie name (express-session's `name`). */
  readonly name: string
  /** The provisional cookie's name: `<name>.ss`. */
  readonly provisionalName: string
  /**
   * The Set-Cookie line of a provisional cookie naming `sessionId`, as express-session would set
   * the session cookie on `req` (its name changed); undefined when it would set none there (a
   * `secure` cookie over plain HTTP, a cookie `path` the request is not under).
   */
  mint(req: IncomingMessage, sessionId: string): string | undefined
  /** The Set-Cookie line that deletes the provisional cookie, or undefined as for `mint`. */
  clear(req: IncomingMessage): string | undefined
  /**
   * Looks at the request's cookies before express-session reads them. With a provisional cookie
   * and no usable session cookie, puts the provisional value in the session cookie's place in
   * `req.headers.cookie`, so express-session (and everything after it) sees that session. Costs
   * nothing without a provisional cookie; with both, one session-store read per cookie.
   */
  prepare(req: IncomingMessage): Promise<PreparedCookies>
  /**
   * After express-session ran on a prepared request: a promoted value that named no stored
   * session (expired, destroyed, or the first handshake's session before its register saved
   * it) counts as no cookie at all, and is not deleted: the next handshake replaces it, and
   * deleting it here would lose a session that register is about to save.
   */
  settle(req: IncomingMessage, prepared: PreparedCookies): void
  /**
   * Keeps the Set-Cookie of the app's response to a promoted request from turning the
   * provisional session into a session cookie (express-session re-sets the cookie of a session
   * that changed, when it has a maxAge): such a line is renamed to the provisional cookie. A
   * session cookie for another session (a sign-in regenerated it) or its deletion passes, and
   * the provisional cookie is deleted with it. Also adds the deletion `prepare` asked for.
   */
  guard(req: IncomingMessage, res: ServerResponse, prepared: PreparedCookies): void
  /** Drops every session-cookie line the response would carry (the SDK's own responses set none). */
  dropSessionCookie(res: ServerResponse): void
}

/** A response that keeps the headers set on it, for running express-session outside a request. */
function fakeResponse(): ServerResponse & { headers: Map<string, unknown> } {
  const headers = new Map<string, unknown>()
  return {
    headers,
    getHeader: (name: string) => headers.get(name.toLowerCase()),
    setHeader(name: string, value: unknown) {
      headers.set(name.toLowerCase(), value)
      return this
    },
    removeHeader: (name: string) => void headers.delete(name.toLowerCase()),
    writeHead() {
      return this
    },
    end() {
      return this
    },
    on() {
      return this
    },
    once() {
      return this
    },
  } as unknown as ServerResponse & { headers: Map<string, unknown> }
}

/**
 * A request like `req` (its URL, headers, connection, `secure`) with `cookie` as its only
 * cookie: express-session decides on it as it would on `req`, and it touches nothing of `req`.
 */
function fakeRequest(req: CookieRequest, cookie: string | undefined): CookieRequest {
  const headers = { ...req.headers }
  if (cookie === undefined) delete headers.cookie
  else headers.cookie = cookie
  return {
    url: req.url,
    originalUrl: req.originalUrl ?? req.url,
    method: req.method,
    headers,
    socket: req.socket,
    connection: req.socket,
    secure: req.secure,
  } as unknown as CookieRequest
}

/**
 * The provisional cookie of one express-session middleware.
 *
 * @example
 * const cookies = createProvisionalCookie(sessionMiddleware)
 * cookies.provisionalName // 'connect.sid.ss'
 */
export function createProvisionalCookie(middleware: SessionMiddleware): ProvisionalCookie {
  /**
   * Runs express-session on a cookieless copy of `like` and makes it set its cookie for
   * `sessionId`: the line carries the app's name, attributes and signature. Synchronous: with no
   * cookie, express-session makes a new session without a store call, then we give it another
   * id (it sets the cookie of a session whose id changed, as after regenerate).
   */
  const sessionCookieLine = (like: IncomingMessage, sessionId: string): string | undefined => {
    const req = fakeRequest(like as CookieRequest, undefined)
    const res = fakeResponse()
    let line: string | undefined
    try {
      middleware(req, res, (err?: unknown) => {
        const store = (req as CookieRequest & { sessionStore?: { createSession(req: unknown, data: unknown): unknown } }).sessionStore
        if (err || !req.session || !store) return
        // A session object with the new id: express-session compares ids to see a change.
        const cookie = JSON.parse(JSON.stringify(req.session.cookie)) as unknown
        req.sessionID = sessionId
        store.createSession(req, { cookie })
        res.writeHead(200)
        line = setCookieLines(res.headers.get('set-cookie')).at(-1)
      })
    } catch (err) {
      debug('express-session failed while minting a cookie: %s', (err as Error).message)
    }
    return line
  }

  // The cookie's name, from a line express-session sets. Asked again until it answers: a store
  // that is not connected yet makes express-session skip the session.
  let discovered: string | undefined
  const cookieName = (): string => {
    if (discovered === undefined) {
      const sample = sessionCookieLine(fakeRequest({ url: '/', headers: {} } as CookieRequest, undefined), 'probe')
      if (sample) discovered = readSetCookie(sample).name
    }
    return discovered ?? 'connect.sid'
  }

  /** The session a cookie value names, if live; null otherwise (and on a store failure: nothing is promoted then). */
  const load = (like: IncomingMessage, value: string): Promise<Loaded | null> =>
    new Promise((resolve) => {
      const req = fakeRequest(like as CookieRequest, `${cookieName()}=${value}`)
      try {
        middleware(req, fakeResponse(), (err?: unknown) => {
          const sessionId = req.sessionID
          const named = sessionId !== undefined && (value.startsWith(`s%3A${sessionId}.`) || value.startsWith(`s:${sessionId}.`))
          resolve(!err && named && req.session ? { sessionId, session: req.session } : null)
        })
      } catch {
        resolve(null)
      }
    })

  const rename = (line: string) => `${cookieName()}.ss${line.slice(line.indexOf('='))}`

  const clear = (req: IncomingMessage): string | undefined => {
    const line = sessionCookieLine(req, 'probe')
    if (!line) return undefined
    // Same Path and Domain as the cookie it deletes; no value, expired.
    const attributes = line.split(';').slice(1).map((a) => a.trim()).filter((a) => /^(path|domain|secure|samesite|partitioned)\b/i.test(a))
    return [`${cookieName()}.ss=`, ...attributes, 'Expires=Thu, 01 Jan 1970 00:00:00 GMT'].join('; ')
  }

  /** Wraps `res.setHeader` for Set-Cookie lines: `map` may drop (undefined) or replace each; `extra` lines are added once. */
  const onSetCookie = (res: ServerResponse, map: (line: string) => string | string[] | undefined) => {
    const setHeader = res.setHeader
    res.setHeader = function (this: ServerResponse, header: string, value: any) {
      if (header.toLowerCase() !== 'set-cookie') return setHeader.call(this, header, value)
      const lines = setCookieLines(value).flatMap((line) => map(line) ?? [])
      if (lines.length > 0) return setHeader.call(this, header, lines)
      // An empty Set-Cookie would still be written as a header line (the WebSocket 101 does).
      this.removeHeader(header)
      return this
    } as ServerResponse['setHeader']
  }

  const addLine = (res: ServerResponse, line: string | undefined) => {
    if (!line) return
    res.setHeader('Set-Cookie', [...setCookieLines(res.getHeader('Set-Cookie')), line])
  }

  return {
    get name() {
      return cookieName()
    },
    get provisionalName() {
      return `${cookieName()}.ss`
    },
    mint(req, sessionId) {
      const line = sessionCookieLine(req, sessionId)
      return line && rename(line)
    },
    clear,
    async prepare(req) {
      const name = cookieName()
      const provisionalName = `${name}.ss`
      const header = req.headers.cookie
      const cookies = parseCookies(header)
      const provisional = cookies.get(provisionalName)
      if (provisional === undefined || header === undefined) return { promoted: false, clear: false }
      if (provisional === '') return { promoted: false, clear: true }
      const real = cookies.get(name)
      if (real !== undefined && real !== provisional) {
        const current = await load(req, real)
        if (current && !isEmpty(current.session)) {
          // The session cookie wins. If the provisional one names another live session, that
          // is the tab's session from before a sign-in this browser did cookieless: its tabs
          // rejoin and come back with this cookie (a cookie wins over the token).
          const other = await load(req, provisional)
          return other && other.sessionId !== current.sessionId ? { promoted: false, clear: true, heal: other.sessionId } : { promoted: false, clear: true }
        }
        const candidate = await load(req, provisional)
        if (!candidate) return { promoted: false, clear: true }
      }
      req.headers.cookie = withCookie(header, name, provisional)
      return { promoted: true, clear: false }
    },
    settle(req, prepared) {
      if (!prepared.promoted) return
      const r = req as CookieRequest
      const value = parseCookies(r.headers.cookie).get(cookieName()) ?? ''
      if (r.sessionID === undefined || !(value.startsWith(`s%3A${r.sessionID}.`) || value.startsWith(`s:${r.sessionID}.`))) prepared.promoted = false
    },
    guard(req, res, prepared) {
      const name = cookieName()
      const promotedId = prepared.promoted ? (req as CookieRequest).sessionID : undefined
      if (promotedId !== undefined) {
        let cleared = false
        onSetCookie(res, (line) => {
          const read = readSetCookie(line)
          if (read.name !== name) return line
          if (read.sessionId === promotedId) return rename(line)
          // The app replaced or deleted the session (a sign-in, a logout): the provisional cookie goes too.
          const deletion = cleared ? undefined : clear(req)
          if (!deletion) return line
          cleared = true
          return [line, deletion]
        })
      }
      if (prepared.clear) addLine(res, clear(req))
    },
    dropSessionCookie(res) {
      const name = cookieName()
      onSetCookie(res, (line) => (readSetCookie(line).name === name ? undefined : line))
    },
  }
}
