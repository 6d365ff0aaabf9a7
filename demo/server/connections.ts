import type http from 'node:http'
import type { Socket } from 'node:net'

/**
 * Every TCP connection of `server`, WebSockets included, and whether each is serving an HTTP
 * request right now, so that shutdown can end the ones left open.
 *
 * @example
 * const connections = trackConnections(httpServer)
 * httpServer.close()
 * setTimeout(() => connections.destroyIdle(), 100)
 */
export function trackConnections(server: http.Server): { destroyIdle(): void; destroyAll(): void } {
  const busy = new Map<Socket, number>()
  server.on('connection', (socket: Socket) => {
    busy.set(socket, 0)
    socket.once('close', () => busy.delete(socket))
  })
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket
    busy.set(socket, (busy.get(socket) ?? 0) + 1)
    res.once('close', () => {
      if (busy.has(socket)) busy.set(socket, busy.get(socket)! - 1)
    })
  })
  return {
    destroyIdle() {
      for (const [socket, requests] of busy) if (requests === 0) socket.destroy()
    },
    destroyAll() {
      for (const socket of busy.keys()) socket.destroy()
    },
  }
}
