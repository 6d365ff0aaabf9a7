import createDebug from 'debug'
import type { SessionData } from 'express-session'
import { EVENTS, type EndReason } from '@session-socket/protocol'
import type { LinkStore } from './link-store.js'
import { localSocketsIn, sessionRoom, type SessionNamespace, type SessionSocket } from './rooms.js'
import type { RegeneratedUsers } from './session-bridge.js'
import { markRegenerated } from './sign-in-marks.js'
import type { UserOf } from './users.js'

const debug = createDebug('session-socket:sign-in')

/**
 * What happens to a session's tabs when `session.regenerate()` replaces it: a sign-in (the
 * session-fixation-sensitive code), or a sign-out when the user `identify` names goes away or
 * changes (passport's `req.logout()` regenerates), over HTTP and over RPC.
 */
export interface SignIn {
  /**
   * `req.session.regenerate()` in an HTTP request (the session bridge's `regenerated` hook).
   * A sign-out ends every tab of the old session (`logout`, tokens revoked) once the response is
   * sent. A sign-in marks the old session as regenerated (its tabs that come back without the
   * new cookie are asked to retry, `SIGN_IN_PENDING`) and, once the response is sent, tells
   * every tab of it to rejoin.
   */
  regenerated(fromId: string, toId: string, done: Promise<void>, users: RegeneratedUsers): void
  /**
   * `ctx.session.regenerate()` in a method handler (the RPC dispatcher's `onRegenerated`).
   * Only the calling browser moves: its token (it proved it holds the session by calling) and
   * its tabs on this node, at once, so their calls until they rejoin run in the new session.
   * Every tab of the old session is then told to rejoin: the browser's to get its cookie
   * restored to the new session, anyone else's (a session-fixation attacker's token) to land
   * in a fresh one. Resolves once the caller's token points at `toId`. A sign-out over RPC
   * (the user changed or went away) moves nothing: the old session's tokens are revoked now
   * and its tabs end after the reply.
   */
  moveBrowser(caller: SessionSocket, fromId: string, toId: string): Promise<void>
  /** After each call's reply: tells the caller to rejoin (or ends its session) if its call moved it. */
  afterReply(socket: SessionSocket): void
  /**
   * A request came with a signed-in session cookie and a provisional cookie naming `sessionId`:
   * the browser signed in without it (a login sent before the first handshake's cookie was
   * stored). The tabs of `sessionId` rejoin and come back into the signed-in session.
   */
  healed(sessionId: string): void
}

/**
 * Sign-in and sign-out by regenerate, for one server.
 *
 * @example
 * const signIn = createSignIn({ nsp, links, now: Date.now, identify, rejoinWindow: 10_000, endSession, storedSession })
 * const sessions = new SessionBridge(middleware, { destroyed, regenerated: signIn.regenerated })
 */
export function createSignIn(deps: {
  nsp: SessionNamespace
  links: LinkStore
  now: () => number
  identify: UserOf | undefined
  /** How long the tabs of a regenerated session may take to come back with the new cookie (ms). */
  rejoinWindow: number
  endSession: (sessionId: string, reason: EndReason) => Promise<void>
  /** The stored data of a session (the session bridge's `get`). */
  storedSession: (sessionId: string) => Promise<SessionData | null>
}): SignIn {
  const { nsp, links, now, identify, rejoinWindow, endSession, storedSession } = deps
  /** Sockets to tell `ss:rejoin` once the reply of their current call is out. */
  const rejoinAfterReply = new WeakSet<SessionSocket>()
  /** Sockets whose call signed out: their old session ends once the reply is out. */
  const endAfterReply = new WeakMap<SessionSocket, string>()
  const logFailure = (what: string) => (err: unknown) => debug('%s failed: %s', what, (err as Error).message)

  return {
    regenerated(fromId, toId, done, users) {
      // Written before the tabs hear of it (below, after the response): a tab that reconnects
      // with the old cookie must find the mark on whichever node it lands.
      const marked = markRegenerated(links, fromId, toId, now(), rejoinWindow).catch(logFailure('marking the regenerated session'))
      void done.then(async () => {
        await marked
        const after = users.after()
        if (users.before !== undefined && after !== users.before) {
          debug('session regenerated without its user: a sign-out')
          await endSession(fromId, 'logout').catch(logFailure('ending the signed-out session'))
          return
        }
        // Tabs prove they hold the new cookie by reconnecting; moving their tokens here would
        // also move a session-fixation attacker's (see SECURITY.md).
        nsp.to(sessionRoom(fromId)).emit(EVENTS.REJOIN)
      })
    },
    async moveBrowser(caller, fromId, toId) {
      const { tokenHash, userId } = caller.data
      if (identify && userId !== undefined) {
        const data = await storedSession(toId)
        if ((data ? identify(data) : undefined) !== userId) {
          await links.revokeSession(fromId, now())
          endAfterReply.set(caller, fromId)
          debug('session regenerated in a method handler without its user: a sign-out')
          return
        }
      }
      await links.touchLink(tokenHash, toId, now())
      for (const socket of localSocketsIn(nsp, sessionRoom(fromId))) {
        const data = socket.data
        if (data.tokenHash !== tokenHash) continue
        data.sessionId = toId
        socket.leave(sessionRoom(fromId))
        void socket.join(sessionRoom(toId))
        if (socket !== caller) socket.emit(EVENTS.REJOIN)
      }
      nsp.to(sessionRoom(fromId)).emit(EVENTS.REJOIN)
      rejoinAfterReply.add(caller)
      debug('session regenerated in a method handler: the calling browser moved')
    },
    healed(sessionId) {
      debug('a provisional session met a signed-in cookie: its tabs rejoin')
      nsp.to(sessionRoom(sessionId)).emit(EVENTS.REJOIN)
    },
    afterReply(socket) {
      // After the reply, so the caller has its answer before it reconnects (or ends).
      if (rejoinAfterReply.delete(socket)) socket.emit(EVENTS.REJOIN)
      const signedOut = endAfterReply.get(socket)
      if (signedOut !== undefined) {
        endAfterReply.delete(socket)
        endSession(signedOut, 'logout').catch(logFailure('ending the signed-out session'))
      }
    },
  }
}
