import createDebug from 'debug'
import { EVENTS } from '@session-socket/protocol'
import type { LinkStore } from './link-store.js'
import { localSocketsIn, sessionRoom, type SessionNamespace, type SessionSocket } from './rooms.js'

const debug = createDebug('session-socket:sign-in')

/**
 * What happens to a session's tabs when `session.regenerate()` (a sign-in) replaces it: the
 * session-fixation-sensitive code, over HTTP and over RPC.
 */
export interface SignIn {
  /**
   * `req.session.regenerate()` in an HTTP request (the session bridge's `regenerated` hook):
   * once the response carrying the new cookie is sent, every tab of the old session rejoins.
   */
  regenerated(fromId: string, toId: string, done: Promise<void>): void
  /**
   * `ctx.session.regenerate()` in a method handler (the RPC dispatcher's `onRegenerated`).
   * Only the calling browser moves: its token (it proved it holds the session by calling) and
   * its tabs on this node, at once, so their calls until they rejoin run in the new session.
   * Every tab of the old session is then told to rejoin: the browser's to get its cookie
   * restored to the new session, anyone else's (a session-fixation attacker's token) to land
   * in a fresh one. Resolves once the caller's token points at `toId`.
   */
  moveBrowser(caller: SessionSocket, fromId: string, toId: string): Promise<void>
  /** After each call's reply: tells the caller to rejoin if its call moved it. */
  afterReply(socket: SessionSocket): void
}

/**
 * Sign-in handling for one server.
 *
 * @example
 * const signIn = createSignIn({ nsp, links, now: Date.now })
 * const sessions = new SessionBridge(middleware, { destroyed, regenerated: signIn.regenerated })
 */
export function createSignIn(deps: { nsp: SessionNamespace; links: LinkStore; now: () => number }): SignIn {
  const { nsp, links, now } = deps
  /** Sockets to tell `ss:rejoin` once the reply of their current call is out. */
  const rejoinAfterReply = new WeakSet<SessionSocket>()
  return {
    regenerated(fromId, _toId, done) {
      // Tabs prove they hold the new cookie by reconnecting; moving their tokens here would
      // also move a session-fixation attacker's (see SECURITY.md).
      void done.then(() => nsp.to(sessionRoom(fromId)).emit(EVENTS.REJOIN))
    },
    async moveBrowser(caller, fromId, toId) {
      const { tokenHash } = caller.data
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
    afterReply(socket) {
      // After the reply, so the caller has its answer before it reconnects.
      if (rejoinAfterReply.delete(socket)) socket.emit(EVENTS.REJOIN)
    },
  }
}
