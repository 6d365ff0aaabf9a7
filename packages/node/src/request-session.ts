import type { IncomingMessage } from 'node:http'
import type { Session, SessionData, Store } from 'express-session'

type SessionRequest = IncomingMessage & { session?: Session & Partial<SessionData>; sessionID?: string; sessionStore?: Store }

/**
 * Points `socket.request.session` (and `sessionID`) at the session register linked the socket
 * to, when that is not the one the handshake's cookie loaded: after a lost cookie, the
 * handshake made a fresh, empty session and the token restored the real one. Built as
 * express-session builds `req.session`, on the request itself, so `save()`, `reload()` and
 * `destroy()` in the app's own socket handlers act on the linked session.
 *
 * @example
 * if (registration.sessionId !== handshake.sessionId) linkRequestSession(socket.request, registration.sessionId, registration.session)
 */
export function linkRequestSession(request: IncomingMessage, sessionId: string, data: object): void {
  const req = request as SessionRequest
  const store = req.sessionStore
  if (!store) return
  req.sessionID = sessionId
  // createSession takes over the object (its cookie becomes a Cookie): give it a copy.
  store.createSession(req as never, structuredClone(data) as SessionData)
}
