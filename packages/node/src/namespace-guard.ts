import createDebug from 'debug'
import type { Namespace, Server } from 'socket.io'
import { SessionSocketError } from '@session-socket/protocol'

const debug = createDebug('session-socket:namespace-guard')

/** A CONNECT auth that is a session-socket register (`{ v, token, tabId, … }`), not the app's own. */
function isRegisterAuth(auth: unknown): boolean {
  if (typeof auth !== 'object' || auth === null) return false
  return Object.hasOwn(auth, 'v') && Object.hasOwn(auth, 'token') && Object.hasOwn(auth, 'tabId')
}

/**
 * Refuses a session-socket client on a namespace session-socket does not serve, with
 * NOT_FOUND naming the served one: otherwise Socket.IO would accept it, no register reply
 * would come and the tab would wait for ever. Sockets of the app's own (any other auth) pass;
 * namespaces the app creates later are guarded as they appear.
 *
 * @example
 * guardOtherNamespaces(io, '/chat')
 */
export function guardOtherNamespaces(io: Server, served: string): void {
  const guard = (nsp: Namespace) => {
    if (nsp.name === served) return
    nsp.use((socket, next) => {
      if (!isRegisterAuth(socket.handshake.auth)) return next()
      debug('refused a session-socket client on namespace %s', nsp.name)
      const error = new SessionSocketError(
        'NOT_FOUND',
        `session-socket is not served on namespace '${nsp.name}' but on '${served}': connect to that one (url: ${served === '/' ? 'the origin, no path' : `origin + '${served}'`}), or serve this one with createSessionSocketServer(io, { namespace: '${nsp.name}' })`,
      )
      next(Object.assign(new Error(error.message), { data: { code: error.code } }))
    })
  }
  for (const nsp of io._nsps.values()) guard(nsp)
  io.on('new_namespace', guard)
}
