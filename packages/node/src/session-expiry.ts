import type { SocketData } from './socket-data.js'

/** What a socket was last told about its session's expiry, by socket. */
const knownExpiry = new WeakMap<object, number>()

/** The session cookie's expiry, in ms since the epoch; undefined when it has none (a browser-session cookie). */
function cookieExpiry(session: object): number | undefined {
  const expires = (session as { cookie?: { expires?: unknown } }).cookie?.expires
  // A live Session holds a Date; data read from a store holds what JSON made of it.
  const at = expires instanceof Date ? expires.getTime() : typeof expires === 'string' ? Date.parse(expires) : NaN
  return Number.isFinite(at) ? at : undefined
}

/**
 * Remembers when the socket's session expires, as the session just read says (at register, at
 * every reload of a call). A store keeps a session until its cookie's `expires` (and longer if
 * a request touched it since), so until then a call needs no read to know it is alive.
 *
 * @example
 * noteSessionExpiry(socket, registration.session)
 */
export function noteSessionExpiry(socket: { data: Partial<SocketData> }, session: object): void {
  knownExpiry.set(socket, cookieExpiry(session) ?? Infinity)
}

/**
 * True when the socket's session may have expired by `now`: the expiry it last read has passed
 * (or it never read one). Then the session store says whether it is still there; a session
 * whose cookie has no expiry is left to the store's own lifetime and the periodic check.
 *
 * @example
 * if (sessionMayHaveExpired(socket, Date.now()) && !(await sessions.get(socket.data.sessionId))) endTabs()
 */
export function sessionMayHaveExpired(socket: { data: Partial<SocketData> }, now: number): boolean {
  const until = knownExpiry.get(socket)
  return until === undefined || until <= now
}
