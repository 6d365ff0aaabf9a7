import createDebug from 'debug'
import { PROTOCOL_VERSION, SessionSocketError, type RegisterReason, type RegisterReply, type RegisterRequest } from '@session-socket/protocol'
import type { HandshakeSession } from './handshake.js'
import type { LinkRecord, LinkStore } from './link-store.js'
import { hashSecret, mintSecret } from './secrets.js'
import type { SessionBridge } from './session-bridge.js'
import { regeneratedFrom, signInRetryAfter } from './sign-in-marks.js'

const debug = createDebug('session-socket:register')

/** Token lifetimes, in milliseconds. */
export interface TokenLifetimes {
  /** A token unused this long is refused. @default 30 days */
  idle: number
  /** A token older than this is refused, however often it is used. @default 90 days */
  absolute: number
  /** How long a restore code stays valid. @default 60 seconds */
  restoreCode: number
}

export const DEFAULT_LIFETIMES: TokenLifetimes = {
  idle: 30 * 24 * 3600_000,
  absolute: 90 * 24 * 3600_000,
  restoreCode: 60_000,
}

/** Token rotation on register (off by default). */
export interface RotationOptions {
  /**
   * How long a replaced token is still accepted (ms), so tabs that read it just before
   * another tab stored its successor are not logged out. Presented later, it is reuse: the
   * session's tokens are revoked and its tabs ended. @default 60000
   */
  grace: number
}

/** The outcome of register: the reply for the client and the session the socket joins. */
export interface Registration {
  reply: RegisterReply
  sessionId: string
  tokenHash: string
  /** A token was presented and could not be used (unknown, expired, revoked, reused). */
  failed: boolean
  /** A replaced token came back after the grace window: this session's tokens were revoked. */
  reuseIn?: string
  /** The session's data as register saw it (for `identify`). */
  session: object
  /** The session's user, as `identify` named it (undefined: none, or no `identify`). */
  userId?: string
}

type TokenState = 'none' | 'unknown' | 'expired' | 'revoked' | 'reused' | 'valid'

function tokenState(record: LinkRecord | null, hasToken: boolean, now: number, lifetimes: TokenLifetimes, rotation: RotationOptions | undefined): TokenState {
  if (!hasToken) return 'none'
  if (!record) return 'unknown'
  if (record.revokedAt !== undefined) return 'revoked'
  if (record.expiresAt <= now || record.lastSeenAt + lifetimes.idle <= now) return 'expired'
  if (rotation && record.replacedAt !== undefined && record.replacedAt + rotation.grace < now) return 'reused'
  return 'valid'
}

/** A one-time code that `POST {path}/restore` trades for the cookie of `sessionId`. */
export async function mintRestoreCode(links: LinkStore, sessionId: string, now: number, lifetimes: TokenLifetimes): Promise<string> {
  const code = mintSecret()
  await links.putRestoreCode(hashSecret(code), { sessionId, expiresAt: now + lifetimes.restoreCode })
  return code
}

/** How stale a token's lastSeenAt may get before a register writes it again (ms). */
const LAST_SEEN_GRANULARITY = 3_600_000

/** True when a session holds nothing but its cookie: express-session's "uninitialized". */
function isUninitialized(session: object): boolean {
  return Object.keys(session).every((key) => key === 'cookie')
}

const REASON_FOR: Record<Exclude<TokenState, 'valid'>, RegisterReason> = {
  none: 'no-token',
  unknown: 'unknown-token',
  expired: 'expired-token',
  revoked: 'revoked-token',
  reused: 'revoked-token',
}

/**
 * Decides which session a registering socket belongs to (PROTOCOL.md, "Decision rules"):
 * a valid token whose session is alive wins over a missing, expired or foreign-secret cookie;
 * a valid cookie naming a different live session wins over the token (the user signed in
 * again over HTTP); anything else links the handshake's session to a fresh token.
 */
export async function resolveRegistration(input: {
  request: RegisterRequest
  handshake: HandshakeSession | undefined
  links: LinkStore
  sessions: SessionBridge
  lifetimes: TokenLifetimes
  rotation?: RotationOptions | undefined
  /** Names the user of a session (the server's `identify`, normalised); its links record it for `endUser`. */
  identify?: ((session: object) => string | undefined) | undefined
  now: number
}): Promise<Registration> {
  const { request, handshake, links, sessions, lifetimes, rotation, identify, now } = input
  if (!handshake) {
    // express-session did not run or its store failed: there is no session to link to yet.
    throw new SessionSocketError('STORE_UNAVAILABLE', 'no session could be loaded for this handshake', { retryAfter: 1000 })
  }
  const hash = request.token === null ? null : hashSecret(request.token)
  const record = hash === null ? null : await links.getLink(hash)
  const state = tokenState(record, hash !== null, now, lifetimes, rotation)
  let reuseIn: string | undefined
  if (state === 'reused' && record) {
    // A token rotated away long ago is back: one of its holders is not the user. Revoke the
    // whole family (every token of the session); the caller ends the session's tabs.
    await links.revokeSession(record.sessionId, now)
    reuseIn = record.sessionId
    debug('reuse of a rotated token detected; session tokens revoked')
  }

  let sessionId: string
  let reason: RegisterReason | null
  /** The presented token, when it stays the tab's token as it is. */
  let kept = false
  /** Absolute expiry of the token the client gets: a rotated successor keeps its predecessor's. */
  let expiresAt = now + lifetimes.absolute
  let createdAt = now
  let data: object = handshake.session

  if (state === 'valid' && record && hash !== null) {
    // The handshake has just loaded this very session (its cookie named it): it is alive and its
    // data is at hand. Reading it again cost one session-store read per reconnect.
    const alive = !handshake.isNew && handshake.sessionId === record.sessionId ? handshake.session : await sessions.get(record.sessionId)
    if (!alive && (handshake.isNew || isUninitialized(handshake.session))) {
      // A sign-in over HTTP just replaced the token's session, and this handshake does not carry
      // the new cookie (yet): the browser may still be storing it. Neither a new session (the tab
      // would end) nor the signed-in one (a fixation attacker has the token too): retry shortly.
      const regeneration = await regeneratedFrom(links, record.sessionId, now)
      if (regeneration && regeneration.toId !== handshake.sessionId) {
        throw new SessionSocketError('SIGN_IN_PENDING', "the token's session was replaced by a sign-in; connect again once the new session cookie is stored", { retryAfter: signInRetryAfter(regeneration, now) })
      }
    }
    // A cookie wins over the token only for a session the app has put something in (a
    // sign-in); an empty one is what a parallel cookieless request (a favicon) just made.
    if (alive && (handshake.isNew || handshake.sessionId === record.sessionId || isUninitialized(handshake.session))) {
      sessionId = record.sessionId
      reason = null
      data = alive
    } else if (!handshake.isNew) {
      sessionId = handshake.sessionId
      reason = 'cookie-session'
    } else {
      sessionId = handshake.sessionId
      reason = 'session-ended'
    }
    if (reason === 'session-ended') {
      await links.revokeLink(hash, now)
    } else if (rotation) {
      // The presented token stays acceptable for the grace window only; its successor keeps
      // the original absolute expiry, so rotation never extends a token's life.
      await links.putLink(hash, { ...record, sessionId, lastSeenAt: now, replacedAt: record.replacedAt ?? now })
      expiresAt = record.expiresAt
      createdAt = record.createdAt
    } else {
      // lastSeenAt only feeds the idle limit (days): refreshing it at most hourly spares a
      // link-store write on nearly every reconnect. A relink is written at once.
      if (record.sessionId !== sessionId || now - record.lastSeenAt >= LAST_SEEN_GRANULARITY) await links.touchLink(hash, sessionId, now)
      kept = true
    }
  } else {
    sessionId = handshake.sessionId
    reason = REASON_FOR[state === 'valid' ? 'unknown' : state]
  }

  const token = kept && request.token !== null ? request.token : mintSecret()
  const tokenHash = kept && hash !== null ? hash : hashSecret(token)
  const userId = identify?.(data)
  if (!kept) await links.putLink(tokenHash, { sessionId, createdAt, lastSeenAt: now, expiresAt, ...(userId === undefined ? {} : { userId }) })
  // A presented token that stays linked (as is, or through its rotated successor) says which
  // user its links name: only a change costs a write (a sign-in over HTTP, a token moved to
  // the cookie's session). A new token carries the user itself.
  if (identify && state === 'valid' && record && reason !== 'session-ended' && record.userId !== userId) {
    await links.setSessionUser(sessionId, userId ?? null)
  }

  // `seq` (durable events) is filled in once the socket has joined its rooms.
  const reply: RegisterReply = { v: PROTOCOL_VERSION, token, tabId: request.tabId, restored: reason === null, reason, newSession: false, seq: 0 }
  if (sessionId === handshake.sessionId && handshake.isNew) {
    // A session made by this handshake is only in memory so far (WebSocket handshakes never
    // run express-session's save-on-end); it must exist in the store before a token points at it.
    await sessions.save(handshake.session)
    reply.newSession = true
  }
  if (sessionId !== handshake.sessionId || (handshake.isNew && !handshake.cookieSet)) {
    reply.restoreCode = await mintRestoreCode(links, sessionId, now, lifetimes)
  }
  debug('register tab=%s restored=%s reason=%s new=%s restore=%s', request.tabId, reply.restored, reason, reply.newSession, reply.restoreCode !== undefined)
  const failed = state === 'unknown' || state === 'expired' || state === 'revoked' || state === 'reused'
  const registration: Registration = { reply, sessionId, tokenHash, failed, session: data }
  if (userId !== undefined) registration.userId = userId
  if (reuseIn !== undefined) registration.reuseIn = reuseIn
  return registration
}
