import type { DefaultEventsMap, Namespace, Server, Socket } from 'socket.io'
import type { AnyEvents, ClientToServerEvents, EventMap, ServerToClientEvents } from '@session-socket/protocol'
import type { SocketData } from './socket-data.js'

/**
 * A Socket.IO server as `createSessionSocketServer` takes it: the protocol's events both ways,
 * plus the app's own events to the client. Any `new Server(httpServer)` fits, typed or not.
 *
 * @example
 * const io: SessionServer<{ counter: (value: number) => void }> = new Server(httpServer)
 */
export type SessionServer<AppEvents extends EventMap = AnyEvents> = Server<ClientToServerEvents, ServerToClientEvents & AppEvents, DefaultEventsMap, any>

/**
 * The main namespace as session-socket uses it: the protocol's events (so the SDK's own `ss:`
 * emits are type-checked), and `socket.data` is {@link SocketData} once the socket has
 * registered (before that it is Socket.IO's empty object; code that may meet an unregistered
 * socket checks `data.sessionId`). App events go out through `ss.toSession` and the like.
 *
 * @example
 * const nsp = io.of('/') as SessionNamespace
 */
export type SessionNamespace = Namespace<ClientToServerEvents, ServerToClientEvents, DefaultEventsMap, SocketData>

/** A socket of {@link SessionNamespace}. */
export type SessionSocket = Socket<ClientToServerEvents, ServerToClientEvents, DefaultEventsMap, SocketData>

/**
 * The room of every tab of a session, on every node.
 *
 * @example
 * nsp.to(sessionRoom(sessionId)).emit(EVENTS.ENDED, { reason: 'logout' })
 */
export function sessionRoom(sessionId: string): string {
  return `session:${sessionId}`
}

/**
 * The room of one tab (one socket at a time), on whichever node holds it.
 *
 * @example
 * nsp.to(tabRoom(tabId)).emit(EVENTS.REPLACED)
 */
export function tabRoom(tabId: string): string {
  return `tab:${tabId}`
}

/**
 * The room of every tab of every session of a user (`identify` names the user).
 *
 * @example
 * nsp.in(userRoom('alice')).fetchSockets()
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
