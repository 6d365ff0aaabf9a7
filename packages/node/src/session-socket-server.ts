import createDebug from 'debug'
import type { DefaultEventsMap, Namespace } from 'socket.io'
import type { AnyEvents, AppEventMap, EndReason, EventMap } from '@session-socket/protocol'
import { acceptConnections } from './connection.js'
import { checkConnectionStateRecovery } from './connection-state-recovery.js'
import { DurableEvents, keepStreamsAlive } from './durable.js'
import { createHttpRoutes } from './http-routes.js'
import { createLifecycle } from './lifecycle.js'
import { createProvisionalCookie } from './provisional-cookie.js'
import type { LinkStore } from './link-store.js'
import { guardOtherNamespaces } from './namespace-guard.js'
import { resolveOptions, type SessionSocketServerOptions } from './options.js'
import { createRateLimiter, type RateLimits } from './rate-limiter.js'
import { createRegisterSocket } from './register-socket.js'
import type { SessionNamespace, SessionServer } from './rooms.js'
import { RpcDispatcher, type MethodHandler, type MethodOptions } from './rpc.js'
import { SessionBridge } from './session-bridge.js'
import { createSignIn } from './sign-in.js'
import type { TabInfo } from './socket-data.js'
import { TabEvents, type SessionSocketServerEvents } from './tab-events.js'
import { listTabs } from './tabs.js'
import { createTargets, type DurableEmitter, type DurableFlag } from './targets.js'
import { createUsers } from './users.js'
import { instrumentLinkStore, instrumentRegister, instrumentSessionBridge, observeTabs, startTelemetry } from './telemetry.js'

const debug = createDebug('session-socket:server')

/**
 * The object {@link createSessionSocketServer} returns. `AppEvents` types what `toSession`,
 * `toTab` and `toUser` emit (plain and durable); without it any event name and arguments pass.
 */
export interface SessionSocketServer<AppEvents extends EventMap = AnyEvents> {
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
  toSession(sessionId: string): ReturnType<Namespace<DefaultEventsMap, AppEvents>['to']>
  toSession(sessionId: string, options: DurableFlag): DurableEmitter<AppEvents>
  /**
   * Emits to one tab, on whichever node holds it; `{ durable: true }` as for toSession, and
   * the send rejects with QUOTA_EXCEEDED when the tab's durable events are full.
   */
  toTab(tabId: string): ReturnType<Namespace<DefaultEventsMap, AppEvents>['to']>
  toTab(tabId: string, options: DurableFlag): DurableEmitter<AppEvents>
  /**
   * Emits to every tab of every session of a user (needs `identify`). With `{ durable: true }`,
   * it reaches the sessions that have a live tab now, and all their tabs seen within the window.
   */
  toUser(userId: string | number): ReturnType<Namespace<DefaultEventsMap, AppEvents>['to']>
  toUser(userId: string | number, options: DurableFlag): DurableEmitter<AppEvents>
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

/**
 * Ties every Socket.IO connection of `io` to its express-session, through cookie loss,
 * restarts and network loss. Register happens in the CONNECT step, so a registered socket
 * costs no round trip over a bare Socket.IO connect.
 *
 * `AppEvents`, the app's own server-to-client events (the same map the browser's
 * `createSessionSocket<Methods, AppEvents>()` takes), types `toSession`, `toTab` and `toUser`;
 * a name starting with `ss:` or one of the client's `status`, `ready`, `ended`, `gap` is a
 * type error. Without it, any event passes.
 *
 * @example
 * interface AppEvents { counter: (value: number) => void }
 * const ss = createSessionSocketServer<AppEvents>(io, { session: sessionMiddleware })
 * app.use(ss.http())
 * ss.method('counter.increment', (_params, { session, sessionId }) => {
 *   session!.count = (session!.count ?? 0) + 1
 *   ss.toSession(sessionId).emit('counter', session!.count) // every tab of the session
 * })
 */
export function createSessionSocketServer<AppEvents extends EventMap & AppEventMap<AppEvents> = AnyEvents>(
  io: SessionServer<AppEvents>,
  options: SessionSocketServerOptions,
): SessionSocketServer<AppEvents> {
  if (!io || typeof io.of !== 'function' || !io.engine) {
    throw new TypeError('createSessionSocketServer(io, options): io must be a Socket.IO Server attached to an HTTP server (new Server(httpServer))')
  }
  const o = resolveOptions(options)
  checkConnectionStateRecovery(io)
  startTelemetry()
  o.store = instrumentLinkStore(o.store)
  const { now, store: links, identify, clientIp } = o
  const limiter = (key: keyof RateLimits) => createRateLimiter(o.rateLimits, key, now)
  const nsp = io.of(o.namespace) as SessionNamespace
  guardOtherNamespaces(io, o.namespace)
  const stopObservingTabs = observeTabs(nsp)
  const closed = new AbortController()
  const tabEvents = new TabEvents()
  const durable = new DurableEvents(links, nsp, now, o.durable)
  const users = createUsers({ nsp, links, now, identify })
  const signIn = createSignIn({
    nsp,
    links,
    now,
    identify,
    rejoinWindow: o.rejoinWindow,
    // Resolved when called, as the bridge's hooks below.
    endSession: (sessionId, reason) => lifecycle.endSession(sessionId, reason, 'sign-out'),
    storedSession: (sessionId) => sessions.get(sessionId),
  })
  const sessions = instrumentSessionBridge(new SessionBridge(
    o.session,
    {
      // Resolved when called: the bridge calls its hooks on a destroy or regenerate, never while it is built.
      destroyed: (sessionId) => lifecycle.destroyed(sessionId),
      regenerated: signIn.regenerated,
    },
    o.sessionStore,
    identify,
  ))
  const lifecycle = createLifecycle({ nsp, links, now, sessions, identify, users, emptySessionTtl: o.emptySessionTtl })
  const cookies = createProvisionalCookie(o.session)
  const targets = createTargets<AppEvents>({ nsp, links, now, durable, users })
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
    onSessionChanged: users.joinUser,
    onRegenerated: signIn.moveBrowser,
  })
  const registerSocket = createRegisterSocket({
    nsp,
    links,
    sessions,
    durable,
    tabEvents,
    lifetimes: o.lifetimes,
    rotation: o.rotation,
    identify,
    now,
    clientIp,
    newSessionsPerIp: limiter('newSessionsPerIp'),
    registersPerSession: limiter('registersPerSession'),
    emptySessionTtl: o.emptySessionTtl,
    endSession: lifecycle.endSession,
  })
  acceptConnections({
    io,
    nsp,
    session: o.session,
    allowedOrigins: o.allowedOrigins,
    proxy: o.proxy,
    sessions,
    registerSocket: instrumentRegister(registerSocket),
    rpc,
    durable,
    signIn,
    links,
    lifetimes: o.lifetimes,
    now,
    clientIp,
    handshakesPerIp: limiter('handshakesPerIp'),
    cookieCodesPerSocket: limiter('cookieCodesPerSocket'),
    cookieCodesPerIp: limiter('cookieCodesPerIp'),
    cookies,
  })

  const timers: NodeJS.Timeout[] = []
  const expiryCheck = lifecycle.startExpiryCheck(o.sessionCheckInterval)
  if (expiryCheck) timers.push(expiryCheck)
  timers.push(keepStreamsAlive(nsp, durable, o.durable.window))
  if (o.sweepInterval > 0) {
    const sweep = setInterval(() => {
      links.sweep(now()).catch((err) => debug('sweep failed: %s', (err as Error).message))
    }, o.sweepInterval)
    sweep.unref()
    timers.push(sweep)
  }

  return {
    on: (event, listener) => tabEvents.on(event, listener),
    store: links,
    http: () =>
      createHttpRoutes({
        path: o.path,
        allowedOrigins: o.allowedOrigins,
        proxy: o.proxy,
        links,
        sessions,
        cookies,
        onHeal: signIn.healed,
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
      stopObservingTabs()
      closed.abort()
    },
  }
}
