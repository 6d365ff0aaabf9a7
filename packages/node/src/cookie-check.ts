import type { IncomingMessage, ServerResponse } from 'node:http'
import { createHash } from 'node:crypto'
import type { SessionBridge } from './session-bridge.js'

/**
 * The response header of a successful restore: the check id of the session the cookie was set
 * for, to compare with what `GET {path}/cookie` answers once the browser sends its cookie back.
 */
export const COOKIE_CHECK_HEADER = 'Session-Socket-Check'

/**
 * A stand-in for a session id that is safe to show the browser: a domain-separated SHA-256,
 * so it can be compared but neither names the session to anything else nor opens it.
 *
 * @example
 * res.setHeader(COOKIE_CHECK_HEADER, cookieCheckId(sessionId))
 */
export function cookieCheckId(sessionId: string): string {
  return createHash('sha256').update(`session-socket cookie check\0${sessionId}`).digest('base64url').slice(0, 22)
}

type Req = IncomingMessage & { session?: unknown; sessionID?: string }

/**
 * `GET {path}/cookie`: which session the request's cookie names, as a check id (or null when
 * it names no stored session). A client that just restored its cookie asks it to learn whether
 * the browser kept the cookie: a proxy that strips Set-Cookie, or blocked cookies, leave it
 * without one. Nothing is kept for it: it costs a session read when asked, nothing otherwise.
 *
 * @example
 * const answer = await checkCookie(req, res)   // { session: 'Zk3…' } or { session: null }
 */
export function createCookieCheck(sessions: SessionBridge) {
  return async function checkCookie(req: Req, res: ServerResponse): Promise<{ session: string | null }> {
    await new Promise<void>((resolve, reject) => {
      // Mounted before the app's session middleware? Run it here to read the cookie.
      if (req.session) return resolve()
      sessions.middleware(req, res, (err?: unknown) => (err ? reject(err) : resolve()))
    })
    // Without a cookie naming a stored session, express-session made up a new id: not stored.
    const sessionId = req.sessionID
    const stored = sessionId !== undefined && (await sessions.get(sessionId)) !== null
    return { session: stored ? cookieCheckId(sessionId) : null }
  }
}
