import type { Session, SessionData, Store } from 'express-session'
import { SessionSocketError } from '@session-socket/protocol'
import type { SessionBridge } from './session-bridge.js'

/** True when a session holds nothing but its cookie: express-session's "uninitialized". */
function isEmptySession(session: object): boolean {
  return Object.keys(session).every((key) => key === 'cookie')
}

interface StoredCookie {
  originalMaxAge?: number | null
  expires?: string | Date | null
}

/** How long the store may keep an empty session: `ttl`, or less if the app's cookie says so. */
function emptyLifetime(cookie: StoredCookie | undefined, ttl: number): number {
  const maxAge = cookie?.originalMaxAge
  return typeof maxAge === 'number' ? Math.min(maxAge, ttl) : ttl
}

/**
 * The session as the store should keep it while empty: the same data, with the stored cookie's
 * `expires` (which every express-session store takes as the entry's TTL) at most `lifetime`
 * away. `originalMaxAge` stays the app's, so the first touch by an HTTP request or a call
 * (`expires = now + originalMaxAge`) gives the session its full lifetime back.
 */
function clamped(session: object, lifetime: number, now: number): SessionData {
  const copy = JSON.parse(JSON.stringify(session)) as SessionData & { cookie: StoredCookie }
  const until = now + lifetime
  const expires = copy.cookie?.expires ? new Date(copy.cookie.expires).getTime() : Infinity
  copy.cookie = { ...copy.cookie, expires: new Date(Math.min(expires, until)) }
  return copy
}

function call(run: (done: (err?: unknown) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: unknown) => (err ? reject(new SessionSocketError('STORE_UNAVAILABLE', 'session store unavailable', { retryAfter: 1000, cause: err })) : resolve())
    try {
      run(done)
    } catch (err) {
      done(err ?? new Error('store threw'))
    }
  })
}

/**
 * Saves a session that a handshake created and a register links a token to. An empty one
 * (nothing but its cookie) is kept by the store for at most `ttl` ms: a host that registers
 * without a token again and again makes sessions that vanish on their own, instead of being
 * kept for the cookie's whole lifetime. The browser's cookie is left as the app set it, and the
 * session's first real use (an HTTP request with its cookie, a call) restores its lifetime.
 * `ttl` 0: saved as it is.
 *
 * @example
 * await saveNewSession(sessions, handshake.session, 3_600_000, Date.now())
 */
export function saveNewSession(sessions: SessionBridge, session: Session, ttl: number, now: number): Promise<void> {
  const store = sessions.store
  if (ttl <= 0 || !store || !isEmptySession(session)) return sessions.save(session)
  return call((done) => store.set(session.id, clamped(session, emptyLifetime(session.cookie as StoredCookie, ttl), now), done))
}

/**
 * Keeps an empty session alive while one of its tabs is connected: when less than half of its
 * short lifetime is left, the store is touched for another `ttl`. Does nothing for a session
 * with data in it (its own expiry rules, as over HTTP), or one the app gives no more than `ttl`.
 * Resolves false when there was nothing to do.
 *
 * @example
 * const data = await sessions.get(sessionId)
 * if (data) await keepEmptySessionAlive(sessions, sessionId, data, 3_600_000, Date.now())
 */
export async function keepEmptySessionAlive(sessions: SessionBridge, sessionId: string, data: SessionData, ttl: number, now: number): Promise<boolean> {
  const store: Store | undefined = sessions.store
  const cookie = data.cookie as StoredCookie | undefined
  if (ttl <= 0 || !store || !isEmptySession(data)) return false
  // The app's own lifetime is no longer than ours: nothing of it was taken away.
  if (typeof cookie?.originalMaxAge === 'number' && cookie.originalMaxAge <= ttl) return false
  const expires = cookie?.expires ? new Date(cookie.expires).getTime() : Infinity
  if (expires - now > ttl / 2) return false
  const copy = clamped({ ...data, cookie: { ...cookie, expires: null } }, ttl, now)
  await call((done) => (typeof store.touch === 'function' ? store.touch(sessionId, copy, done) : store.set(sessionId, copy, done)))
  return true
}
