import type { IncomingMessage, ServerResponse } from 'node:http'
import createDebug from 'debug'
import type { Server } from 'socket.io'
import type { SessionSocketError } from '@session-socket/protocol'

const debug = createDebug('session-socket:handshake-refusal')

const kRefusal = Symbol('session-socket.refusal')

type RefusableRequest = IncomingMessage & { _query?: Record<string, string>; [kRefusal]?: SessionSocketError }

/** The parts of an Engine.IO connection (`io.engine`'s `connection` event) used here. */
interface EngineConnection {
  id: string
  request: IncomingMessage
  write(data: string): void
  close(): void
  on(event: 'data', listener: (data: unknown) => void): void
  once(event: 'close', listener: () => void): void
  removeAllListeners(event: 'data'): void
}

/** How long a refused connection may stay open without sending its CONNECT (ms). */
const REFUSED_LINGER = 10_000

/** Namespaces echoed in a refusal: what Socket.IO clients send, nothing that needs escaping. */
const NAMESPACE = /^\/[\w\-./]{0,127}$/

/**
 * Marks an Engine.IO handshake as refused: no session is loaded, every CONNECT on it is answered with `error`.
 *
 * @example
 * refuseHandshake(req, new SessionSocketError('FORBIDDEN', 'Origin https://evil.example is not allowed'))
 */
export function refuseHandshake(req: IncomingMessage, error: SessionSocketError): void {
  ;(req as RefusableRequest)[kRefusal] = error
}

/**
 * Why the handshake was refused, if it was.
 *
 * @example
 * if (handshakeRefusal(socket.request)) return next(new Error('refused'))
 */
export function handshakeRefusal(req: IncomingMessage): SessionSocketError | undefined {
  return (req as RefusableRequest)[kRefusal]
}

/** The namespace a Socket.IO CONNECT packet (`0`, `0{…}`, `0/admin,{…}`) asks for; undefined for anything else. */
function connectNamespace(data: unknown): string | undefined {
  if (typeof data !== 'string' || data[0] !== '0') return undefined
  if (data[1] !== '/') return '/'
  const end = data.indexOf(',')
  const nsp = end === -1 ? data.slice(1) : data.slice(1, end)
  return NAMESPACE.test(nsp) ? nsp : undefined
}

/** A Socket.IO CONNECT_ERROR packet: `connect_error` on the client, with `err.data = { code, retryAfter? }`. */
function connectErrorPacket(nsp: string, error: SessionSocketError): string {
  const data = error.retryAfter === undefined ? { code: error.code } : { code: error.code, retryAfter: error.retryAfter }
  return `4${nsp === '/' ? '' : `${nsp},`}${JSON.stringify({ message: error.message, data })}`
}

function allowReading(req: IncomingMessage, res: ServerResponse): void {
  const origin = req.headers.origin
  if (origin === undefined || res.headersSent) return
  res.setHeader('Access-Control-Allow-Origin', origin)
  res.setHeader('Access-Control-Allow-Credentials', 'true')
  res.setHeader('Vary', 'Origin')
}

/**
 * Tells refused clients why, in a form every Socket.IO client reads on every transport. An
 * Engine.IO refusal reaches a browser as an opaque failure: a WebSocket upgrade answered 400
 * shows only an `error` event, and a cross-origin polling 403 cannot be read at all. So a
 * refused handshake (see `refuseHandshake`) is let through Engine.IO, with no session loaded,
 * and its connection is taken from Socket.IO before any packet reaches it: no namespace, ours
 * or the app's, can accept it. Each CONNECT on it is answered with CONNECT_ERROR
 * `{ message, data: { code, retryAfter? } }` and the connection is closed. Long-polling
 * responses of a refused connection carry CORS headers for its Origin, so a page on a refused
 * origin can read that answer (and nothing else: no session, no cookie).
 *
 * @example
 * io.engine.use(handshakeMiddleware) // calls refuseHandshake(req, error) for a foreign Origin
 * answerRefusedConnections(io)
 */
export function answerRefusedConnections(io: Server): void {
  /** Engine.IO ids of refused connections still open: their polling requests need CORS too. */
  const refused = new Set<string>()
  io.engine.use((req: RefusableRequest, res: ServerResponse, next: (err?: unknown) => void) => {
    const sid = req._query?.sid
    const error = sid === undefined ? req[kRefusal] : undefined
    if (error?.code === 'FORBIDDEN' || (sid !== undefined && refused.has(sid))) allowReading(req, res)
    next()
  })
  io.engine.on('connection', (conn: EngineConnection) => {
    const error = handshakeRefusal(conn.request)
    if (!error) return
    refused.add(conn.id)
    // Socket.IO made its client for this connection before this listener ran; it must never
    // see a packet, or a namespace without middleware would accept the connection.
    conn.removeAllListeners('data')
    const linger = setTimeout(() => conn.close(), REFUSED_LINGER)
    linger.unref()
    conn.once('close', () => {
      clearTimeout(linger)
      refused.delete(conn.id)
    })
    conn.on('data', (data) => {
      const nsp = connectNamespace(data)
      // Engine.IO flushes what was written before it closes.
      if (nsp !== undefined) conn.write(connectErrorPacket(nsp, error))
      conn.close()
    })
    debug('refused connection opened to be told %s', error.code)
  })
}
