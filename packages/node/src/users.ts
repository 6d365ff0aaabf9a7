import createDebug from 'debug'
import type { Session, SessionData } from 'express-session'
import type { LinkStore } from './link-store.js'
import { localSocketsIn, sessionRoom, userRoom, type SessionNamespace, type SessionSocket } from './rooms.js'

const debug = createDebug('session-socket:users')

/** The app's `identify` option, as it is given. */
export type Identify = (session: Session & Partial<SessionData>) => string | number | null | undefined

/** The user a session's data names, as a string; undefined for none. */
export type UserOf = (session: object) => string | undefined

/**
 * Normalises the app's `identify`: `null`, `undefined` and `''` name no user, a number becomes
 * its string (room names, link records and `endUser` compare strings).
 *
 * @example
 * const userOf = identifyUser((session) => session.userId)
 * userOf({ userId: 7 }) // '7'
 */
export function identifyUser(identify: Identify): UserOf {
  return (session) => {
    const id = identify(session as Session & Partial<SessionData>)
    return id === null || id === undefined || id === '' ? undefined : String(id)
  }
}

/** The user rooms of a server. */
export interface Users {
  /**
   * After a call that may have changed the session: moves every tab of the session (every
   * node) to the user room `identify` names now, and records the user in the link store.
   */
  joinUser(socket: SessionSocket, session: Session & Partial<SessionData>): void
  /**
   * The sessions of a user: those the link store records for them (also a browser with no tab
   * open now) and those of the user's live tabs on any node.
   */
  userSessionIds(userId: string): Promise<Set<string>>
}

/**
 * The user rooms (`user:<id>`) and the user index of the link store, kept in step.
 *
 * @example
 * const users = createUsers({ nsp, links, now: Date.now, identify: identifyUser((s) => s.userId) })
 * const sessionIds = await users.userSessionIds('alice')
 */
export function createUsers(deps: { nsp: SessionNamespace; links: LinkStore; now: () => number; identify: UserOf | undefined }): Users {
  const { nsp, links, now, identify } = deps
  return {
    joinUser(socket, session) {
      if (!identify) return
      const data = socket.data
      const userId = identify(session)
      if (userId === data.userId) return
      // Every tab of the session changes user, not only the caller: the rooms move on every node
      // through the adapter; local sockets also keep the new id in their data.
      const tabs = nsp.in(sessionRoom(session.id))
      if (data.userId !== undefined) tabs.socketsLeave(userRoom(data.userId))
      if (userId !== undefined) tabs.socketsJoin(userRoom(userId))
      for (const local of localSocketsIn(nsp, sessionRoom(session.id))) local.data.userId = userId
      data.userId = userId
      // So that endUser finds the session when none of its tabs is connected. Should the write
      // fail, the next register of one of its tabs writes it again (register compares).
      links.setSessionUser(session.id, userId ?? null).catch((err) => debug('recording the user of a session failed: %s', (err as Error).message))
    },
    async userSessionIds(userId) {
      const ids = new Set(await links.userSessions(userId, now()))
      for (const socket of await nsp.in(userRoom(userId)).fetchSockets()) ids.add(socket.data.sessionId)
      return ids
    },
  }
}
