import type { IncomingMessage } from 'node:http'
import createDebug from 'debug'
import type { Server } from 'socket.io'
import { EVENTS, SessionSocketError, parseAck, parseConnectAuth, parseRegister, type CallReply, type RegisterReply, type RegisterRequest, type WireError } from '@session-socket/protocol'
import { forgetRecoveredIdentity } from './connection-state-recovery.js'
import type { DurableEvents } from './durable.js'
import { holdPackets } from './first-event.js'
import { createHandshakeMiddleware, handshakeSetCookie, type AllowedOrigins } from './handshake.js'
import { answerRefusedConnections } from './handshake-refusal.js'
import type { LinkStore } from './link-store.js'
import type { ProvisionalCookie } from './provisional-cookie.js'
import { holdCall } from './pending-calls.js'
import type { RateLimiter } from './rate-limiter.js'
import { createRefusalWarning } from './refusal-warning.js'
import { mintRestoreCode, type TokenLifetimes } from './register.js'
import type { RegisterSocket } from './register-socket.js'
import type { SessionNamespace, SessionSocket } from './rooms.js'
import type { RpcDispatcher } from './rpc.js'
import type { SessionBridge, SessionMiddleware } from './session-bridge.js'
import type { SignIn } from './sign-in.js'
import type { ProxyTrust } from './trust-proxy.js'
import { recordHandshakeRefused, recordRateLimited, recordRegisterRefused } from './telemetry.js'

const debug = createDebug('session-socket:connection')
/** Security-relevant events (refused origin, rate limit); never a token or cookie value. */
const security = createDebug('session-socket:security')

/** Per socket: calls in flight (`count`, as rpc.dispatch counts them) and where register stands. */
interface SocketState {
  count: number
  registered: boolean
  registering: boolean
}

/** A refusal in the CONNECT step: the client gets `connect_error` with `err.data = { code, retryAfter? }`. */
function connectError(err: unknown): Error {
  const error = SessionSocketError.from(err)
  const out = new Error(error.message) as Error & { data: unknown }
  out.data = error.retryAfter === undefined ? { code: error.code } : { code: error.code, retryAfter: error.retryAfter }
  return out
}

/**
 * Wires session-socket into `io`: the Engine.IO handshake middleware (Origin check, rate limit,
 * express-session), `allowRequest`, register in the CONNECT step (namespace middleware), and
 * per socket the `ss:` packet router (`ss:register`, `ss:call`, `ss:ack`, `ss:cookie`).
 *
 * @example
 * acceptConnections({ io, nsp: io.of('/') as SessionNamespace, session, allowedOrigins, proxy, sessions, registerSocket, rpc, durable, signIn, links, lifetimes, now: Date.now, clientIp, handshakesPerIp, cookieCodesPerSocket, cookieCodesPerIp })
 */
export function acceptConnections(deps: {
  io: Server
  nsp: SessionNamespace
  session: SessionMiddleware
  allowedOrigins: AllowedOrigins
  /** How requests are read behind trusted proxies (trustProxy). */
  proxy: ProxyTrust
  sessions: SessionBridge
  registerSocket: RegisterSocket
  rpc: RpcDispatcher
  durable: DurableEvents
  signIn: SignIn
  links: LinkStore
  lifetimes: TokenLifetimes
  now: () => number
  clientIp: (req: IncomingMessage) => string
  handshakesPerIp: RateLimiter | undefined
  /** `ss:cookie` restore codes per socket and per client IP. */
  cookieCodesPerSocket: RateLimiter | undefined
  cookieCodesPerIp: RateLimiter | undefined
  cookies: ProvisionalCookie
}): void {
  const { io, nsp, sessions, registerSocket, rpc, durable, signIn, links, lifetimes, now, clientIp, handshakesPerIp, cookieCodesPerSocket, cookieCodesPerIp } = deps
  /** Replies of registers done in the CONNECT step, sent as the first event of the connection. */
  const replies = new WeakMap<SessionSocket, RegisterReply>()

  // Runs before express-session on every Engine.IO handshake; refused Origins never load a session.
  io.engine.use(
    createHandshakeMiddleware({
      session: deps.session,
      allowedOrigins: deps.allowedOrigins,
      proxy: deps.proxy,
      onOriginRefused: createRefusalWarning(deps.allowedOrigins, deps.proxy),
      onStore: (store) => sessions.adopt(store),
      admit: (req) => {
        const wait = handshakesPerIp?.hit(clientIp(req)) ?? 0
        if (wait === 0) return undefined
        recordHandshakeRefused('rate-limit')
        security('handshake refused: connection rate limit')
        return new SessionSocketError('RATE_LIMITED', 'too many connections from this address; try again later', { retryAfter: wait })
      },
      cookies: deps.cookies,
      onHeal: (sessionId) => signIn.healed(sessionId),
    }),
  )
  // The provisional cookie rides the handshake response itself, polling or WebSocket 101.
  io.engine.on('initial_headers', (headers: Record<string, unknown>, req: IncomingMessage) => {
    const lines = handshakeSetCookie(req)
    if (!lines) return
    const existing = headers['Set-Cookie']
    headers['Set-Cookie'] = [...(existing === undefined ? [] : Array.isArray(existing) ? existing : [existing]), ...lines]
  })
  answerRefusedConnections(io)

  nsp.use((socket, next) => {
    // connectionStateRecovery (skipMiddlewares: false) gave the socket its rooms and data of
    // before the disconnection: session-socket's part is decided again by this register.
    if (socket.recovered) forgetRecoveredIdentity(socket)
    let request: RegisterRequest | null
    try {
      request = parseConnectAuth(socket.handshake.auth)
    } catch (err) {
      recordRegisterRefused(socket, err)
      return next(connectError(err))
    }
    // No register in CONNECT: the client may still send ss:register as its first event.
    if (request === null) return next()
    registerSocket.register(socket, request).then(
      (reply) => {
        replies.set(socket, reply)
        next()
      },
      (err) => {
        debug('register failed: %s', (err as Error).message)
        next(connectError(err))
      },
    )
  })

  nsp.on('connection', (socket) => {
    const reply = replies.get(socket)
    // Registered in CONNECT or not at all: socket.data may hold keys of the app's own.
    const state: SocketState = { count: 0, registered: reply !== undefined, registering: false }
    if (reply) {
      replies.delete(socket)
      // Nothing reaches the tab before its register reply, whatever is emitted to its rooms meanwhile.
      const sendFirst = holdPackets(socket)
      registerSocket.enter(socket, reply).then(
        (position) => {
          sendFirst(() => socket.emit(EVENTS.REGISTERED, reply))
          durable.replay((payload) => socket.emit(EVENTS.EVENT, payload), position.replay)
        },
        (err) => {
          // Without its stream position the tab could miss events: let it reconnect and retry.
          debug('reading the durable stream failed: %s', (err as Error).message)
          sendFirst(() => {})
          socket.disconnect(true)
        },
      )
    }
    // One packet middleware for every ss: event instead of a listener each: four closures fewer
    // per socket, and the socket's listener table stays in its smallest dictionary. ss: events
    // stop here; others go on.
    socket.use((packet, next) => {
      const [event, first, second] = packet as [unknown, unknown, unknown]
      if (event === EVENTS.CALL) onCall(socket, state, first, second)
      else if (event === EVENTS.ACK) onAck(socket, state, first)
      else if (event === EVENTS.REGISTER) onRegister(socket, state, first, second)
      else if (event === EVENTS.COOKIE) onCookie(socket, state, first)
      else next()
    })
  })

  function onRegister(socket: SessionSocket, state: SocketState, raw: unknown, ack: unknown): void {
    if (typeof ack !== 'function') return
    if (state.registered || state.registering) {
      return ack({ error: new SessionSocketError('BAD_REQUEST', 'this socket is already registered').toWire() })
    }
    let request: RegisterRequest
    try {
      request = parseRegister(raw)
    } catch (err) {
      recordRegisterRefused(socket, err)
      return ack({ error: SessionSocketError.from(err).toWire() })
    }
    state.registering = true
    registerSocket.register(socket, request).then(
      async (reply) => {
        const sendFirst = holdPackets(socket)
        try {
          const position = await registerSocket.enter(socket, reply)
          state.registered = true
          state.registering = false
          sendFirst(() => ack(reply))
          durable.replay((payload) => socket.emit(EVENTS.EVENT, payload), position.replay)
        } catch (err) {
          state.registering = false
          sendFirst(() => ack({ error: SessionSocketError.from(err).toWire() }))
        }
      },
      (err) => {
        state.registering = false
        ack({ error: SessionSocketError.from(err).toWire() })
      },
    )
  }

  function onAck(socket: SessionSocket, state: SocketState, raw: unknown): void {
    if (!state.registered) return
    let seq: number
    try {
      seq = parseAck(raw).seq
    } catch {
      return
    }
    durable.ack(socket.data.tabId, seq).catch((err) => debug('ack failed: %s', (err as Error).message))
  }

  function onCookie(socket: SessionSocket, state: SocketState, ack: unknown): void {
    if (typeof ack !== 'function') return
    const reply = ack as (r: { code: string } | { error: WireError }) => void
    if (!state.registered) return reply({ error: new SessionSocketError('UNREGISTERED', 'register first').toWire() })
    // Each code is a stored row for its lifetime: bounded per socket, and per address for many sockets.
    const perSocket = cookieCodesPerSocket?.hit(socket.id) ?? 0
    const wait = perSocket || cookieCodesPerIp?.hit(clientIp(socket.request)) || 0
    if (wait > 0) {
      security('restore code refused: too many asked for')
      recordRateLimited(perSocket > 0 ? 'cookieCodesPerSocket' : 'cookieCodesPerIp')
      return reply({ error: new SessionSocketError('RATE_LIMITED', 'too many restore codes asked for; try again later', { retryAfter: wait }).toWire() })
    }
    mintRestoreCode(links, socket.data.sessionId, now(), lifetimes).then(
      (code) => reply({ code }),
      (err) => reply({ error: SessionSocketError.from(err).toWire() }),
    )
  }

  function onCall(socket: SessionSocket, state: SocketState, raw: unknown, ack: unknown): void {
    if (typeof ack !== 'function') return
    if (!state.registered) {
      return ack({ ok: false, e: new SessionSocketError('UNREGISTERED', 'register first: send { v, token, tabId } as the CONNECT auth or the ss:register event').toWire() })
    }
    const answer = rpc.dispatch(socket, raw, state)
    // Answered in this turn: nothing is owed that the end of the session could overtake.
    if (!(answer instanceof Promise)) {
      ack(answer)
      return signIn.afterReply(socket)
    }
    // Answered SESSION_ENDED ahead of `ss:ended` if its session ends before its answer.
    const reply = holdCall(socket, ack as (r: CallReply) => void)
    answer
      .then(reply, (err) => reply({ ok: false, e: SessionSocketError.from(err).toWire() }))
      .finally(() => signIn.afterReply(socket))
  }
}
