import createDebug from 'debug'
import { EVENTS, type EndReason } from '@session-socket/protocol'
import { keepEmptySessionAlive } from './empty-session.js'
import type { LinkStore } from './link-store.js'
import { sessionRoom, type SessionNamespace } from './rooms.js'
import type { SessionBridge } from './session-bridge.js'
import { recordSessionEnded, type SessionEnder } from './telemetry.js'
import type { UserOf, Users } from './users.js'

const debug = createDebug('session-socket:lifecycle')

/** How sessions end for session-socket: logout, expiry, revocation, "sign out everywhere". */
export interface Lifecycle {
  /** Revokes the session's tokens and ends its tabs on every node (`ss:ended`, terminal on the client). */
  endSession(sessionId: string, reason: EndReason, by?: SessionEnder): Promise<void>
  /** The session was destroyed (logout over HTTP, or by the app): the session bridge's `destroyed` hook. */
  destroyed(sessionId: string): void
  /** A call found the session gone from the store: the RPC dispatcher's `onSessionGone`. */
  expired(sessionId: string): void
  /** `ss.disconnectSession`: ends the tabs, revokes the tokens, keeps the HTTP session. */
  disconnectSession(sessionId: string, reason?: EndReason): Promise<void>
  /** `ss.endUser`: every session of the user, also those with no tab open, ended and destroyed. */
  endUser(userId: string | number, reason?: EndReason): Promise<void>
  /**
   * Checks this node's live sessions against the store every `every` ms (0: never), ending the
   * expired ones and keeping empty ones alive while their tabs are connected.
   */
  startExpiryCheck(every: number): NodeJS.Timeout | undefined
}

/**
 * The ends of sessions for one server.
 *
 * @example
 * const lifecycle = createLifecycle({ nsp, links, now: Date.now, sessions, identify, users })
 * await lifecycle.disconnectSession(sessionId)
 */
export function createLifecycle(deps: {
  nsp: SessionNamespace
  links: LinkStore
  now: () => number
  sessions: SessionBridge
  identify: UserOf | undefined
  users: Users
  /** How long the store keeps an empty session the sockets created (see `emptySessionTtl`). */
  emptySessionTtl?: number
}): Lifecycle {
  const { nsp, links, now, sessions, identify, users, emptySessionTtl = 0 } = deps
  /** Sessions being ended: the calls queued behind the one that found the session gone find it gone too. */
  const ending = new Map<string, Promise<void>>()

  // Register is the one caller that does not say `by`: it ends a session on a token reuse.
  function endSession(sessionId: string, reason: EndReason, by: SessionEnder = 'token-reuse'): Promise<void> {
    const running = ending.get(sessionId)
    if (running) return running
    const ended = (async () => {
      const revoked = await links.revokeSession(sessionId, now())
      recordSessionEnded(reason, by)
      debug('session ended (%s): %d token(s) revoked', reason, revoked)
      // Each socket's calls still waiting are answered SESSION_ENDED as this goes out (pending-calls.ts).
      nsp.to(sessionRoom(sessionId)).emit(EVENTS.ENDED, { reason })
      nsp.in(sessionRoom(sessionId)).disconnectSockets(true)
    })().finally(() => ending.delete(sessionId))
    ending.set(sessionId, ended)
    return ended
  }

  function checkExpiry(): void {
    const ids = new Set<string>()
    for (const socket of nsp.sockets.values()) {
      const id = socket.data.sessionId
      if (id !== undefined) ids.add(id)
    }
    for (const id of ids) {
      sessions
        .get(id)
        .then((data): Promise<unknown> => (data ? keepEmptySessionAlive(sessions, id, data, emptySessionTtl, now()) : endSession(id, 'expired', 'expiry')))
        .catch((err) => debug('session check failed: %s', (err as Error).message))
    }
  }

  return {
    endSession,
    destroyed(sessionId) {
      endSession(sessionId, 'logout', 'destroy').catch((err) => debug('ending session after logout failed: %O', err))
    },
    expired(sessionId) {
      endSession(sessionId, 'expired', 'expiry').catch((err) => debug('ending expired session failed: %O', err))
    },
    disconnectSession: (sessionId, reason = 'revoked') => endSession(sessionId, reason, 'disconnect-session'),
    async endUser(userId, reason = 'logout') {
      const id = String(userId)
      for (const sessionId of await users.userSessionIds(id)) {
        const data = await sessions.get(sessionId)
        // The store names the user the session had when last seen; it may have another by now
        // (changed over HTTP): leave that session alone and correct its links.
        const current = data && identify?.(data)
        if (data && identify && current !== id) {
          await links.setSessionUser(sessionId, current ?? null)
          continue
        }
        await endSession(sessionId, reason, 'end-user')
        if (data) await sessions.destroy(sessionId)
      }
    },
    startExpiryCheck(every) {
      if (every <= 0) return undefined
      const timer = setInterval(checkExpiry, every)
      timer.unref()
      return timer
    },
  }
}
