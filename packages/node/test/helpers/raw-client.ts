import { io, type Socket } from 'socket.io-client'
import { EVENTS, PROTOCOL_VERSION, type RegisterReply } from '@session-socket/protocol'

/** A bare socket.io-client speaking the protocol by hand, as another client implementation would. */
export interface RawClient {
  socket: Socket
  reply: RegisterReply
  close(): void
}

/** Connects with register in the CONNECT auth and resolves with the `ss:registered` reply. */
export function rawRegister(url: string, auth: { token: string | null; tabId: string; v?: number }, headers: Record<string, string> = {}): Promise<RawClient> {
  const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, auth: { v: PROTOCOL_VERSION, ...auth }, extraHeaders: headers })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close()
      reject(new Error('no ss:registered within 5 s'))
    }, 5000)
    socket.once(EVENTS.REGISTERED, (reply: RegisterReply) => {
      clearTimeout(timer)
      resolve({ socket, reply, close: () => socket.close() })
    })
    socket.once('connect_error', (err) => {
      clearTimeout(timer)
      socket.close()
      reject(err)
    })
  })
}
