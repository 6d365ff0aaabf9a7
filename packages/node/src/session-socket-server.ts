import createDebug from 'debug'
import type { Namespace, Server } from 'socket.io'
import {
  EVENTS,
  SessionSocketError,
  parseAck,
  parseRegister,
  type CallReply,
  type EndReason,
  type RegisterReply,
  type RegisterRequest,
  type WireError,
} from '@session-socket/protocol'
import { createHandshakeMiddleware, refusedOrigin } from './handshake.js'
import { createHttpRoutes } from './http-routes.js'
import type { LinkStore } from './link-store.js'
import { resolveOptions, type SessionSocketServerOptions } from './options.js'
import { mintRestoreCode } from './register.js'
import { createRateLimiter, type RateLimits } from './rate-limiter.js'
import { RpcDispatcher, type MethodHandler, type MethodOptions } from './rpc.js'
import { DurableEvents } from './durable.js'
import { SessionBridge } from './session-bridge.js'
import type { TabInfo } from './socket-data.js'
import type { SessionNamespace, SessionSocket } from './rooms.js'
import { listTabs } from './tabs.js'
import { createSignIn } from './sign-in.js'
import { createUsers } from './users.js'
import { createLifecycle } from './lifecycle.js'
import { createRegisterSocket } from './register-socket.js'
import { TabEvents, type SessionSocketServerEvents } from './tab-events.js'
import { createTargets, type DurableEmitter, type DurableFlag } from './targets.js'

const debug = createDebug('session-socket:server')
/** Security-relevant events (refused origin, bad token, rate limit, token reuse); never a token or cookie value. */
const security = createDebug('session-socket:security')

/** The object {@link createSessionSocketServer} returns. */
export interface SessionSocketServer {
  /**
   * Listens to tabs registering on (`tab:open`) or leaving (`tab:close`) this node, e.g. to
   * push a fresh tab list. Returns a function that removes the listener.
   *
   * @example
   * ss.on('tab:open', async ({ sessionId }) => ss.toSession(sessionId).emit('tabs', await ss.tabs(sessionId)))
   */
  on<E extends keyof SessionSocketServerEvents>(event: E, listener: SessionSocketServerEvents[E]): () => void
  /** Express/connect middleware serving `POST {path}/restore`. Mount it with `app.use(ss.http())`. */
  http(): (req: any, res: any, next: (err?: unknown) => void) => void
  /** Registers an RPC method. */
  method<P = any, R = unknown>(name: string, handler: MethodHandler<P, R>, options?: MethodOptions): void
  /**
   * Emits to every tab of a session, on every node. With `{ durable: true }`, tabs seen within
   * the durable window get it too when they come back, exactly once and in order.
   */
  toSession(sessionId: string): ReturnType<Namespace['to']>
  toSession(sessionId: string, options: DurableFlag): DurableEmitter
  /**
   * Emits to one tab, on whichever node holds it; `{ durable: true }` as for toSession, and
   * the send rejects with QUOTA_EXCEEDED when the tab's durable events are full.
   */
  toTab(tabId: string): ReturnType<Namespace['to']>
  toTab(tabId: string, options: DurableFlag): DurableEmitter
  /**
   * Emits to every tab of every session of a user (needs `identify`). With `{ durable: true }`,
   * it reaches the sessions that have a live tab now, and all their tabs seen within the window.
   */
  toUser(userId: string | number): ReturnType<Namespace['to']>
  toUser(userId: string | number, options: DurableFlag): DurableEmitter
  /** The live tabs of a session, across nodes. */
  tabs(sessionId: string): Promise<TabInfo[]>
  /** Ends every tab of a session (terminal on the client) and revokes its tokens. The HTTP session stays. */
  disconnectSession(sessionId: string, reason?: EndReason): Promise<void>
  /**
   * "Sign out everywhere" (needs `identify`): every session of the user, found through the link
   * store (also browsers that have no tab open now) and the user's live tabs (any node), has its
   * tokens revoked, its tabs ended with `reason` and is destroyed in the session store. A session
   * is the user's when `identify` named them at its last register or session-changing call and
   * still names them now (one session-store read each).
   *
   * @example
   * app.post('/sign-out-everywhere', async (req, res) => {
   *   await ss.endUser(req.session.userId)
   *   res.sendStatus(204)
   * })
   */
  endUser(userId: string | number, reason?: EndReason): Promise<void>
  /** The link store in use. */
  readonly store: LinkStore
  /** Stops timers. Does not close the Socket.IO server or the store. */
  close(): void
}

function connectError(err: unknown): Error {
  const error = SessionSocketError.from(err)
  const out = new Error(error.message) as Error & { data: unknown }
  out.data = error.retryAfter === undefined ? { code: error.code } : { code: error.code, retryAfter: error.retryAfter }
  return out
}

/**
 * Ties every Socket.IO connection of `io` to its express-session, through cookie loss,
 * restarts and network loss. Register happens in the CONNECT step, so a registered socket
 * costs no round trip over a bare Socket.IO connect.
 *
 * @example
 * const ss = createSessionSocketServer(io, { session: sessionMiddleware })
 * app.use(ss.http())
 * ss.method('counter.increment', async (params, { session }) => ({ value: (session.count = (session.count ?? 0) + 1) }))
 */
export function createSessionSocketServer(io: Server, options: SessionSocketServerOptions): SessionSocketServer {
  if (!io || typeof io.of !== 'function' || !io.engine) {
    throw new TypeError('createSessionSocketServer(io, options): io must be a Socket.IO Server attached to an HTTP server (new Server(httpServer))')
  }
  const o = resolveOptions(options)
  const { now, store: links, lifetimes, allowedOrigins, rotation, clientIp, path, identify } = o
  const limiter = (key: keyof RateLimits) => createRateLimiter(o.rateLimits, key, now)
  const handshakesPerIp = limiter('handshakesPerIp')
  const failedRegistersPerIp = limiter('failedRegistersPerIp')
  const registersPerSession = limiter('registersPerSession')
  const nsp = io.of('/') as SessionNamespace
  const closed = new AbortController()
  const tabEvents = new TabEvents()
  /** Replies of registers done in the CONNECT step, sent as the first event of the connection. */
  const replies = new WeakMap<SessionSocket, RegisterReply>()
  const durable = new DurableEvents(links, nsp, now, o.durable)
  const timers: NodeJS.Timeout[] = []
  const users = createUsers({ nsp, links, now, identify })
  const signIn = createSignIn({ nsp, links, now })

  const sessions = new SessionBridge(
    o.session,
    {
      // Resolved when called: the bridge calls its hooks on a destroy or regenerate, never while it is built.
      destroyed: (sessionId) => lifecycle.destroyed(sessionId),
      regenerated: signIn.regenerated,
    },
    o.sessionStore,
  )

  const lifecycle = createLifecycle({ nsp, links, now, sessions, identify, users })
  const targets = createTargets({ nsp, links, now, durable, users })

  const rpc = new RpcDispatcher({
    links,
    sessions,
    limits: o.limits,
    resultTtl: o.resultTtl,
    callLease: o.callLease,
    maxInFlight: o.maxInFlight,
    touchInterval: o.touchInterval,
    sessionLockTimeout: o.sessionLockTimeout,
    signal: closed.signal,
    now,
    onSessionGone: lifecycle.expired,
    onSessionChanged: (socket, session) => users.joinUser(socket, session),
    onRegenerated: signIn.moveBrowser,
  })

  const registerSocket = createRegisterSocket({
    nsp,
    links,
    sessions,
    durable,
    tabEvents,
    lifetimes,
    rotation,
    identify,
    now,
    clientIp,
    failedRegistersPerIp,
    registersPerSession,
    endSession: lifecycle.endSession,
  })

  // Runs before express-session on every Engine.IO handshake; refused Origins never load a session.
  io.engine.use(
    createHandshakeMiddleware({
      session: o.session,
      allowedOrigins,
      onStore: (store) => sessions.adopt(store),
      admit: (req) => {
        const wait = handshakesPerIp?.hit(clientIp(req)) ?? 0
        if (wait === 0) return undefined
        security('handshake refused: connection rate limit')
        return `RATE_LIMITED: too many connections from this address; retry after ${wait} ms`
      },
    }),
  )
  const previousAllowRequest = io.engine.opts.allowRequest
  io.engine.opts.allowRequest = (req, callback) => {
    const refused = refusedOrigin(req)
    if (refused) return callback(refused, false)
    if (previousAllowRequest) return previousAllowRequest(req, callback)
    callback(null, true)
  }

  nsp.use((socket, next) => {
    const auth = socket.handshake.auth as Record<string, unknown>
    // No register in CONNECT: the client may still send ss:register as its first event.
    if (!auth || Object.keys(auth).length === 0) return next()
    let request: RegisterRequest
    try {
      request = parseRegister(auth)
    } catch (err) {
      failedRegistersPerIp?.hit(clientIp(socket.request))
      return next(connectError(err))
    }
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

  /** Per socket: calls in flight (`count`, as rpc.dispatch counts them) and where register stands. */
  interface SocketState {
    count: number
    registered: boolean
    registering: boolean
  }

  nsp.on('connection', (socket) => {
    const state: SocketState = { count: 0, registered: socket.data.sessionId !== undefined, registering: false }
    const reply = replies.get(socket)
    if (reply) {
      replies.delete(socket)
      registerSocket.enter(socket, reply).then(
        (position) => {
          socket.emit(EVENTS.REGISTERED, reply)
          durable.replay((payload) => socket.emit(EVENTS.EVENT, payload), position.replay)
        },
        (err) => {
          // Without its stream position the tab could miss events: let it reconnect and retry.
          debug('reading the durable stream failed: %s', (err as Error).message)
          socket.disconnect(true)
        },
      )
    }
    // One packet middleware for every ss: event instead of a listener each: four closures fewer
    // per socket, and the socket's listener table stays in its smallest dictionary (~0.7 KB per
    // tab in all, measured with bench/heap-diff.ts). ss: events stop here; others go on.
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
      failedRegistersPerIp?.hit(clientIp(socket.request))
      return ack({ error: SessionSocketError.from(err).toWire() })
    }
    state.registering = true
    registerSocket.register(socket, request).then(
      async (reply) => {
        try {
          const position = await registerSocket.enter(socket, reply)
          state.registered = true
          state.registering = false
          ack(reply)
          durable.replay((payload) => socket.emit(EVENTS.EVENT, payload), position.replay)
        } catch (err) {
          state.registering = false
          ack({ error: SessionSocketError.from(err).toWire() })
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
    mintRestoreCode(links, socket.data.sessionId, now(), lifetimes).then(
      (code) => reply({ code }),
      (err) => reply({ error: SessionSocketError.from(err).toWire() }),
    )
  }

  function onCall(socket: SessionSocket, state: SocketState, raw: unknown, ack: unknown): void {
    if (typeof ack !== 'function') return
    const reply = ack as (r: CallReply) => void
    if (!state.registered) {
      return reply({ ok: false, e: new SessionSocketError('UNREGISTERED', 'register first: send { v, token, tabId } as the CONNECT auth or the ss:register event').toWire() })
    }
    rpc.dispatch(socket, raw, state)
      .then(reply, (err) => reply({ ok: false, e: SessionSocketError.from(err).toWire() }))
      .finally(() => signIn.afterReply(socket))
  }

  const expiryCheck = lifecycle.startExpiryCheck(o.sessionCheckInterval)
  if (expiryCheck) timers.push(expiryCheck)
  // A connected tab that neither reconnects nor gets events keeps its durable stream (and so
  // its numbering) alive: otherwise the next event would start a new stream and read as a gap.
  // The calls of one pass are one turn: DurableEvents writes them in batches (recordTabs).
  const keepStreams = setInterval(() => {
    for (const socket of nsp.sockets.values()) {
      const data = socket.data
      if (data.sessionId === undefined || data.tabId === undefined) continue
      durable.seen(data.sessionId, data.tabId).catch((err) => debug('keeping a stream alive failed: %s', (err as Error).message))
    }
  }, Math.max(1_000, o.durable.window / 2))
  keepStreams.unref()
  timers.push(keepStreams)

  const sweepEvery = o.sweepInterval
  if (sweepEvery > 0) {
    const timer = setInterval(() => {
      links.sweep(now()).catch((err) => debug('sweep failed: %s', (err as Error).message))
    }, sweepEvery)
    timer.unref()
    timers.push(timer)
  }

  return {
    on: (event, listener) => tabEvents.on(event, listener),
    store: links,
    http: () =>
      createHttpRoutes({
        path,
        allowedOrigins,
        links,
        sessions,
        now,
        clientIp,
        failedPerIp: limiter('failedRestoresPerIp'),
        perSession: limiter('restoresPerSession'),
      }),
    method: (name, handler, methodOptions) => rpc.add(name, handler as MethodHandler, methodOptions),
    ...targets,
    tabs: (sessionId) => listTabs(nsp, sessionId),
    disconnectSession: lifecycle.disconnectSession,
    endUser: lifecycle.endUser,
    close() {
      for (const timer of timers) clearInterval(timer)
      closed.abort()
    },
  }
}
