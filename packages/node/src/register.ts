import createDebug from 'debug'
import { PROTOCOL_VERSION, SessionSocketError, type RegisterReason, type RegisterReply, type RegisterRequest } from '@session-socket/protocol'
import { saveNewSession } from './empty-session.js'
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
   * How long a replaced token is accepted as it is (ms), so tabs that read it just before
   * another tab stored its successor are not logged out. Presented later, it is reuse once its
   * successor has been used (one of the two holders is not the user): the session is ended and
   * destroyed. If its successor was never presented (the register reply was lost), it is
   * accepted and rotated again. @default 60000
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
  /** A replaced token came back after its successor was used: this session was ended. */
  reuseIn?: string
  /** The session's data as register saw it (for `identify`). */
  session: object
  /** The session's user, as `identify` named it (undefined: none, or no `identify`). */
  userId?: string
  /** The session the presented, valid token was linked to, when the socket joins another. */
  linkedTo?: string
}

type TokenState = 'none' | 'unknown' | 'expired' | 'revoked' | 'reused' | 'valid'

function tokenState(record: LinkRecord | null, hasToken: boolean, now: number, lifetimes: TokenLifetimes): TokenState {
  if (!hasToken) return 'none'
  if (!record) return 'unknown'
  if (record.revokedAt !== undefined) return 'revoked'
  if (record.expiresAt <= now || record.lastSeenAt + lifetimes.idle <= now) return 'expired'
  return 'valid'
}

/**
 * Reuse detection as refresh-token rotation does it (RFC 9700, 4.14.2), for a network that loses
 * replies. Under rotation every accepted register of a token marks it replaced, so:
 * - a replaced token presented after the grace window is reuse if its successor has been used;
 *   a successor that never came back is a reply the client did not get, not a second holder,
 *   and the token is rotated again;
 * - a successor never used, presented after its predecessor was rotated again past it, is reuse:
 *   someone presented the predecessor after the grace window while this one was held.
 */
async function isReuse(links: LinkStore, hash: string, record: LinkRecord, rotation: RotationOptions, now: number): Promise<boolean> {
  if (record.replacedAt !== undefined) {
    if (record.replacedAt + rotation.grace >= now || record.successor === undefined) return false
    const successor = await links.getLink(record.successor)
    return successor?.replacedAt !== undefined
  }
  if (record.predecessor === undefined) return false
  const predecessor = await links.getLink(record.predecessor)
  if (predecessor?.replacedAt === undefined || predecessor.successor === hash) return false
  // lastSeenAt of a token never used is when it was minted.
  if (predecessor.replacedAt > record.lastSeenAt) return true
  // A sibling: tabs raced one rotation and each got a successor. This one is the one in use now,
  // so that the predecessor presented later is measured against it.
  await links.putLink(record.predecessor, { ...predecessor, successor: hash })
  return false
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

/** Enough of a tab id to tell tabs apart in a log, not enough to register as one. */
function logTabId(tabId: string): string {
  return tabId.length > 4 ? `${tabId.slice(0, 4)}…` : '…'
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
  /** Called before a session made by this handshake is saved; throws to refuse (a per-address budget). */
  admitNewSession?: (() => void) | undefined
  /** Ends and destroys a session whose replaced token was reused (revokes its tokens when not given). */
  endStolenSession?: ((sessionId: string) => Promise<void>) | undefined
  /** How long the store keeps a session this handshake made while it stays empty (ms; 0: its cookie's lifetime). */
  emptySessionTtl?: number | undefined
  now: number
}): Promise<Registration> {
  const { request, handshake, links, sessions, lifetimes, rotation, identify, now } = input
  if (!handshake) {
    // express-session did not run or its store failed: there is no session to link to yet.
    throw new SessionSocketError('STORE_UNAVAILABLE', 'no session could be loaded for this handshake', { retryAfter: 1000 })
  }
  const hash = request.token === null ? null : hashSecret(request.token)
  const record = hash === null ? null : await links.getLink(hash)
  let state = tokenState(record, hash !== null, now, lifetimes)
  if (state === 'valid' && rotation && record && hash !== null && (await isReuse(links, hash, record, rotation, now))) state = 'reused'
  let reuseIn: string | undefined
  if (state === 'reused' && record) {
    // Both the replaced token and its successor were used: one of their holders is not the
    // user. End the session itself, not only its tokens: a thief who traded a restore code has
    // its cookie too.
    if (input.endStolenSession) await input.endStolenSession(record.sessionId)
    else await links.revokeSession(record.sessionId, now)
    reuseIn = record.sessionId
    debug('reuse of a rotated token detected; session ended')
    if (handshake.sessionId === record.sessionId) {
      // This handshake loaded the session just ended: there is no session to put the socket in.
      throw new SessionSocketError('SESSION_ENDED', 'this session was ended: a replaced link token was used again')
    }
  }

  let sessionId: string
  let reason: RegisterReason | null
  /** The presented token, when it stays the tab's token as it is. */
  let kept = false
  /** The successor minted by rotation, when the presented token was rotated. */
  let successor: string | undefined
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
      // The presented token stays acceptable as it is for the grace window; presented again
      // later with its successor unused (the reply was lost), it opens a new window. The
      // successor keeps the original absolute expiry, so rotation never extends a token's life.
      successor = mintSecret()
      const replacedAt = record.replacedAt !== undefined && record.replacedAt + rotation.grace >= now ? record.replacedAt : now
      await links.putLink(hash, { ...record, sessionId, lastSeenAt: now, replacedAt, successor: hashSecret(successor) })
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

  const savesNewSession = sessionId === handshake.sessionId && handshake.isNew
  // Before anything is written for it: a refused register leaves no link and no session.
  if (savesNewSession) input.admitNewSession?.()
  const token = kept && request.token !== null ? request.token : successor ?? mintSecret()
  const tokenHash = kept && hash !== null ? hash : hashSecret(token)
  const userId = identify?.(data)
  if (!kept) {
    const minted: LinkRecord = { sessionId, createdAt, lastSeenAt: now, expiresAt }
    if (userId !== undefined) minted.userId = userId
    if (successor !== undefined && hash !== null) minted.predecessor = hash
    await links.putLink(tokenHash, minted)
  }
  // A presented token that stays linked (as is, or through its rotated successor) says which
  // user its links name: only a change costs a write (a sign-in over HTTP, a token moved to
  // the cookie's session). A new token carries the user itself.
  if (identify && state === 'valid' && record && reason !== 'session-ended' && record.userId !== userId) {
    await links.setSessionUser(sessionId, userId ?? null)
  }

  // `seq` (durable events) is filled in once the socket has joined its rooms.
  const reply: RegisterReply = { v: PROTOCOL_VERSION, token, tabId: request.tabId, restored: reason === null, reason, newSession: false, seq: 0 }
  if (savesNewSession) {
    // A session made by this handshake is only in memory so far (WebSocket handshakes never
    // run express-session's save-on-end); it must exist in the store before a token points at it.
    await saveNewSession(sessions, handshake.session, input.emptySessionTtl ?? 0, now)
    reply.newSession = true
  }
  if (sessionId !== handshake.sessionId || (handshake.isNew && !handshake.cookieSet)) {
    reply.restoreCode = await mintRestoreCode(links, sessionId, now, lifetimes)
  }
  debug('register tab=%s restored=%s reason=%s new=%s restore=%s', logTabId(request.tabId), reply.restored, reason, reply.newSession, reply.restoreCode !== undefined)
  const failed = state === 'unknown' || state === 'expired' || state === 'revoked' || state === 'reused'
  const registration: Registration = { reply, sessionId, tokenHash, failed, session: data }
  if (userId !== undefined) registration.userId = userId
  if (reuseIn !== undefined) registration.reuseIn = reuseIn
  if (state === 'valid' && record && record.sessionId !== sessionId) registration.linkedTo = record.sessionId
  return registration
}
