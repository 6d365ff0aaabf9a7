import { io, type Socket } from 'socket.io-client'
import WebSocket from 'ws'
import { EVENTS, PROTOCOL_VERSION, type RegisterReply } from '@session-socket/protocol'

/** A bare socket.io-client speaking the protocol by hand, as another client implementation would. */
export interface RawClient {
  socket: Socket
  reply: RegisterReply
  close(): void
}

/** Connects with register in the CONNECT auth and resolves with the `ss:registered` reply. */
export function rawRegister(url: string, auth: { token: string | null; tabId: string; v?: number; seq?: number }, headers: Record<string, string> = {}): Promise<RawClient> {
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

/** What a raw Engine.IO register answered: the reply, or the CONNECT_ERROR's `data`. */
export interface RawEngineResult {
  reply?: RegisterReply
  refused?: { code?: string; retryAfter?: number; message?: string }
  /** Session cookies the upgrade response set (name=value). */
  setCookie: string[]
  /** Every event the server emitted to it so far (name and first argument), `ss:registered` included. */
  events: Array<[string, unknown]>
  close(): void
}

/**
 * Registers over a bare WebSocket speaking Engine.IO v4 and Socket.IO v5 by hand: the cheapest
 * client there is, so that a test can open a thousand of them. `localAddress` picks the source
 * address (any 127.x works on Linux loopback).
 */
export function rawEngineRegister(
  url: string,
  auth: { token: string | null; tabId: string; v?: number },
  options: {
    cookie?: string | undefined
    localAddress?: string
    origin?: string
    timeout?: number
    /** Drops the connection as soon as the server accepts the CONNECT: the register reply is lost. */
    loseReply?: boolean
  } = {},
): Promise<RawEngineResult> {
  const headers: Record<string, string> = {}
  if (options.cookie) headers.Cookie = options.cookie
  if (options.origin) headers.Origin = options.origin
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`, {
    headers,
    ...(options.localAddress ? { localAddress: options.localAddress } : {}),
  })
  let setCookie: string[] = []
  const events: Array<[string, unknown]> = []
  return new Promise((resolve, reject) => {
    const close = () => ws.terminate()
    const timer = setTimeout(() => {
      close()
      reject(new Error('no ss:registered within the timeout'))
    }, options.timeout ?? 10_000)
    const settle = (result: Omit<RawEngineResult, 'setCookie' | 'close' | 'events'>) => {
      clearTimeout(timer)
      resolve({ ...result, setCookie, events, close })
    }
    ws.on('upgrade', (response) => {
      setCookie = (response.headers['set-cookie'] ?? []).map((line) => line.split(';')[0]!)
    })
    ws.on('message', (raw) => {
      const frame = raw.toString()
      if (frame.startsWith('0')) ws.send(`40${JSON.stringify({ v: PROTOCOL_VERSION, ...auth })}`)
      else if (frame === '2') ws.send('3')
      else if (frame.startsWith('44')) {
        const packet = JSON.parse(frame.slice(2)) as { message?: string; data?: RawEngineResult['refused'] }
        settle({ refused: { ...packet.data, ...(packet.message === undefined ? {} : { message: packet.message }) } })
      }
      else if (frame.startsWith('40') && options.loseReply) {
        close()
        settle({})
      } else if (frame.startsWith('42')) {
        const [event, payload] = JSON.parse(frame.slice(2)) as [string, RegisterReply]
        events.push([event, payload])
        if (event === EVENTS.REGISTERED) settle({ reply: payload })
      }
    })
    ws.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}
