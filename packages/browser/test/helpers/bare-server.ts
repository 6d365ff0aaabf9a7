import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server, type Socket as ServerSocket } from 'socket.io'
import { io, type Socket } from 'socket.io-client'

/**
 * A plain Socket.IO server on 127.0.0.1, port 0, with no session-socket on it: the test plays
 * the server's side of the protocol by hand (`ss:registered`, `ss:event`, call replies…).
 */
export interface BareServer {
  url: string
  io: Server
  /** The next socket that connects, server side. */
  nextConnection(): Promise<ServerSocket>
  /** A client that does not connect until `connect()`, so the code under test can listen first. */
  client(): Socket
  /** Closes every client made by `client()` and the server. */
  close(): Promise<void>
}

export async function startBareServer(): Promise<BareServer> {
  const httpServer = http.createServer()
  const server = new Server(httpServer)
  const clients: Socket[] = []
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`
  return {
    url,
    io: server,
    nextConnection: () => new Promise((resolve) => server.once('connection', resolve)),
    client() {
      const socket = io(url, { autoConnect: false, reconnection: false, transports: ['websocket'] })
      clients.push(socket)
      return socket
    },
    async close() {
      for (const socket of clients) socket.disconnect()
      await server.close()
    },
  }
}

/** Connects `client` and resolves with its socket on the server side. */
export async function connectTo(server: BareServer, client: Socket): Promise<ServerSocket> {
  const connection = server.nextConnection()
  client.connect()
  const [serverSide] = await Promise.all([connection, new Promise<void>((resolve) => client.once('connect', () => resolve()))])
  return serverSide
}
