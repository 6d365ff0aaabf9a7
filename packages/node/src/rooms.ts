import type { Namespace, Socket } from 'socket.io'
import type { SocketData } from './socket-data.js'

/**
 * The main namespace as session-socket uses it: `socket.data` is {@link SocketData} once the
 * socket has registered (before that it is Socket.IO's empty object; code that may meet an
 * unregistered socket checks `data.sessionId`). App events stay untyped here.
 *
 * @example
 * const nsp = io.of('/') as SessionNamespace
 */
export type SessionNamespace = Namespace<any, any, any, SocketData>

/** A socket of {@link SessionNamespace}. */
export type SessionSocket = Socket<any, any, any, SocketData>

/**
 * The room of every tab of a session, on every node.
 *
 * @example
 * nsp.to(sessionRoom(sessionId)).emit('news', 'hello')
 */
export function sessionRoom(sessionId: string): string {
  return `session:${sessionId}`
}

/**
 * The room of one tab (one socket at a time), on whichever node holds it.
 *
 * @example
 * nsp.to(tabRoom(tabId)).emit('news', 'only you')
 */
export function tabRoom(tabId: string): string {
  return `tab:${tabId}`
}

/**
 * The room of every tab of every session of a user (`identify` names the user).
 *
 * @example
 * nsp.to(userRoom('alice')).emit('news', 'hello alice')
 */
export function userRoom(userId: string): string {
  return `user:${userId}`
}

/**
 * This node's sockets in a room, from the adapter's room index: no scan of every socket of the
 * node. A copy, so callers may make the sockets leave the room while they walk it.
 *
 * @example
 * for (const socket of localSocketsIn(nsp, sessionRoom(sessionId))) socket.data.userId = userId
 */
export function localSocketsIn(nsp: SessionNamespace, room: string): SessionSocket[] {
  const out: SessionSocket[] = []
  for (const id of nsp.adapter.rooms.get(room) ?? []) {
    const socket = nsp.sockets.get(id)
    if (socket) out.push(socket)
  }
  return out
}
