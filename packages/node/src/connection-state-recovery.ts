import type { Server } from 'socket.io'
import { sessionRoom, tabRoom, userRoom, type SessionSocket } from './rooms.js'
import type { SocketData } from './socket-data.js'

/** The keys of `socket.data` session-socket owns; every other key is the app's. */
export const SOCKET_DATA_KEYS = ['sessionId', 'tabId', 'since', 'tokenHash', 'userId'] as const satisfies readonly (keyof SocketData)[]

/**
 * Refuses, at start-up, Socket.IO's `connectionStateRecovery` with `skipMiddlewares: true`
 * (its default): a recovered socket would then skip register and come back with the identity
 * it had before the disconnection, unchecked, and a client waiting for its register reply
 * would wait for ever. With `skipMiddlewares: false` register runs on every connection,
 * recovered or not.
 *
 * @example
 * checkConnectionStateRecovery(io)   // throws with the fix in the message
 */
export function checkConnectionStateRecovery(io: Server): void {
  const recovery = io._opts.connectionStateRecovery
  if (recovery && recovery.skipMiddlewares !== false) {
    throw new TypeError(
      'connectionStateRecovery skips middlewares by default, and session-socket registers every connection in a middleware: ' +
        'a recovered socket would keep the session it had before the disconnection without its token or cookie being checked again. ' +
        'Set connectionStateRecovery: { skipMiddlewares: false } (missed packets and rooms are still recovered), or leave it off: ' +
        "session-socket's durable events (ss.toTab(id, { durable: true })) deliver missed events with the session checked.",
    )
  }
}

/**
 * Before register runs on a socket Socket.IO recovered: drops the session-socket identity and
 * rooms the socket had before the disconnection, so that register decides them afresh (the
 * session may have ended or changed meanwhile). The app's rooms and `socket.data` keys stay.
 *
 * @example
 * if (socket.recovered) forgetRecoveredIdentity(socket)
 */
export function forgetRecoveredIdentity(socket: SessionSocket): void {
  const data = socket.data as Partial<SocketData> | undefined
  if (!data) return
  const rooms: string[] = []
  if (data.sessionId !== undefined) rooms.push(sessionRoom(data.sessionId))
  if (data.tabId !== undefined) rooms.push(tabRoom(data.tabId))
  if (data.userId !== undefined) rooms.push(userRoom(data.userId))
  for (const room of rooms) void socket.leave(room)
  for (const key of SOCKET_DATA_KEYS) delete data[key]
}
