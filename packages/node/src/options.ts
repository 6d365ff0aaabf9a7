import type { IncomingMessage } from 'node:http'
import type { Session, SessionData, Store } from 'express-session'
import { DEFAULT_PAYLOAD_LIMITS, type PayloadLimits } from '@session-socket/protocol'
import { DEFAULT_DURABLE, type DurableOptions } from './durable.js'
import { checkAllowedOrigins, type AllowedOrigins } from './handshake.js'
import type { LinkStore } from './link-store.js'
import { DEFAULT_RATE_LIMITS, type RateLimits } from './rate-limiter.js'
import { DEFAULT_LIFETIMES, type RotationOptions, type TokenLifetimes } from './register.js'
import type { SessionMiddleware } from './session-bridge.js'
import { MemoryLinkStore } from './stores/memory.js'
import { createProxyTrust, type ProxyTrust, type TrustProxy } from './trust-proxy.js'
import { identifyUser, type UserOf } from './users.js'

/** Options of {@link createSessionSocketServer}. */
export interface SessionSocketServerOptions {
  /** The app's express-session middleware, the same instance `app.use()` gets. */
  session: SessionMiddleware
  /** Where token links, restore codes and recent call results live. @default new MemoryLinkStore() */
  store?: LinkStore
  /** The express-session store, if it cannot be found by running `session` once at start-up. @default discovered */
  sessionStore?: Store
  /** Origins allowed to open a socket and call the restore endpoint. @default 'same-origin' */
  allowedOrigins?: AllowedOrigins
  /** URL prefix of the HTTP routes mounted by `ss.http()`. @default '/session-socket' */
  path?: string
  /**
   * The Socket.IO namespace session-socket serves, e.g. `'/chat'`; browsers connect with
   * `url: origin + '/chat'`. Other namespaces stay the app's: a session-socket client that
   * connects to one of them is refused with NOT_FOUND. @default '/'
   */
  namespace?: string
  /**
   * The reverse proxies trusted to say who the client is (`X-Forwarded-For`, for `clientIp`)
   * and what it asked for (`X-Forwarded-Host` and `X-Forwarded-Proto`, for the `same-origin`
   * check and `req.secure` on the handshake, for a secure cookie behind TLS termination), as
   * Express's `trust proxy`: `true`, a number of hops, `'loopback'`, a subnet list, or
   * `(address, hop) => boolean`. @default false (forwarded headers are ignored)
   */
  trustProxy?: TrustProxy
  /**
   * Names the user of a session, to enable `toUser` and `endUser`. `null`, `undefined` or `''`:
   * no user. Asked at every register and after every call that changed the session; the link
   * store keeps the answer with the session's tokens. @default undefined (no user rooms)
   */
  identify?: (session: Session & Partial<SessionData>) => string | number | null | undefined
  /** Token and restore code lifetimes in ms. @default { idle: 30 days, absolute: 90 days, restoreCode: 60 s } */
  lifetimes?: Partial<TokenLifetimes>
  /** How often live sessions are checked against the store, to end tabs of expired ones (ms). @default 60000 */
  sessionCheckInterval?: number
  /**
   * How long the session store keeps a session that a socket's handshake created while nothing
   * is stored in it (ms): a host registering without a token again and again leaves sessions
   * that vanish on their own. Kept alive while one of its tabs is connected (at each session
   * check); its first HTTP request or call gives it the cookie's full lifetime. 0: the cookie's
   * lifetime from the start. @default 3600000
   */
  emptySessionTtl?: number
  /** How often the link store is swept of expired rows (ms); 0 disables. @default 600000 */
  sweepInterval?: number
  /** How long a call's reply is kept to answer a resend of the same call id (ms). @default 600000 */
  resultTtl?: number
  /**
   * How long a started call counts as running (ms). A resend of it on another node (or after a
   * crash) within the lease is answered IN_PROGRESS; after it, the call runs again. Keep it
   * above your slowest handler. @default 60000
   */
  callLease?: number
  /** Most calls one socket may have running at once. @default 64 */
  maxInFlight?: number
  /** Least time between two expiry resets of one session by calls (ms); calls keep a session alive as HTTP requests do. @default 60000 */
  touchInterval?: number
  /**
   * Session-using calls of one session run one after another on a node, so concurrent changes
   * are not lost; the calls waiting behind a running one share one reload and one save. A
   * step (load, one handler, save) holds the session at most this long (ms) for the calls
   * behind it. @default 5000
   */
  sessionLockTimeout?: number
  /** Limits on call params. @default DEFAULT_PAYLOAD_LIMITS */
  limits?: Partial<PayloadLimits>
  /** Rotate the token on every register; `true` for a 60 s grace window. @default false */
  rotation?: boolean | Partial<RotationOptions>
  /** Rate limits per node; `false` turns them all off (benchmarks). @default DEFAULT_RATE_LIMITS */
  rateLimits?: Partial<RateLimits> | false
  /** The client IP rate limits count by. @default the address `trustProxy` finds: req.socket.remoteAddress unless a proxy is trusted */
  clientIp?: (req: IncomingMessage) => string
  /**
   * After `req.session.regenerate()` (a sign-in over HTTP), how long the old session's tabs may
   * take to come back with the new session cookie (ms). Until then a tab that presents the old
   * session's token without that cookie is told to retry (`SIGN_IN_PENDING`) instead of getting
   * a fresh session: the browser may still be storing the login response. After it, such a tab
   * gets a fresh session, as a session-fixation attacker does. @default 10000
   */
  rejoinWindow?: number
  /** Durable events: how long they wait for an absent tab, and per-tab bounds. @default { window: 10 min, maxEvents: 1000, maxBytes: 1 MiB } */
  durable?: Partial<DurableOptions>
  /** Clock, for tests. @default Date.now */
  now?: () => number
}

/** The options as the server's parts read them: checked, every default applied. */
export interface ResolvedOptions {
  session: SessionMiddleware
  sessionStore: Store | undefined
  store: LinkStore
  allowedOrigins: AllowedOrigins
  path: string
  namespace: string
  /** `trustProxy` compiled. */
  proxy: ProxyTrust
  /** `identify` normalised; undefined: no user rooms. */
  identify: UserOf | undefined
  lifetimes: TokenLifetimes
  sessionCheckInterval: number
  emptySessionTtl: number
  sweepInterval: number
  resultTtl: number
  callLease: number
  maxInFlight: number
  touchInterval: number
  sessionLockTimeout: number
  limits: PayloadLimits
  /** Undefined: no rotation. */
  rotation: RotationOptions | undefined
  /** Undefined: rate limits off. */
  rateLimits: RateLimits | undefined
  clientIp: (req: IncomingMessage) => string
  rejoinWindow: number
  durable: DurableOptions
  now: () => number
}

/** The defaults of the plain-valued options; the grouped ones have their own DEFAULT_* constant. */
const DEFAULTS = {
  allowedOrigins: 'same-origin',
  path: '/session-socket',
  namespace: '/',
  sessionCheckInterval: 60_000,
  emptySessionTtl: 3_600_000,
  sweepInterval: 600_000,
  resultTtl: 600_000,
  callLease: 60_000,
  maxInFlight: 64,
  touchInterval: 60_000,
  sessionLockTimeout: 5_000,
  rotation: { grace: 60_000 },
  rejoinWindow: 10_000,
} as const

/**
 * Checks the options (misuse throws at once, with the fix in the message) and applies every
 * default.
 *
 * @example
 * const { path, lifetimes } = resolveOptions({ session: sessionMiddleware })
 * // path === '/session-socket', lifetimes === DEFAULT_LIFETIMES
 */
export function resolveOptions(options: SessionSocketServerOptions): ResolvedOptions {
  if (!options || typeof options.session !== 'function') {
    throw new TypeError('createSessionSocketServer(io, { session }): session must be your express-session middleware, e.g. session({ secret, resave: false, saveUninitialized: false })')
  }
  const allowedOrigins = options.allowedOrigins ?? DEFAULTS.allowedOrigins
  checkAllowedOrigins(allowedOrigins)
  const path = options.path ?? DEFAULTS.path
  if (!path.startsWith('/') || path.endsWith('/')) throw new TypeError(`path must start with "/" and not end with one, e.g. '/session-socket' (got '${path}')`)
  const namespace = options.namespace ?? DEFAULTS.namespace
  if (typeof namespace !== 'string' || !namespace.startsWith('/')) {
    throw new TypeError(`namespace must be a Socket.IO namespace name starting with "/", e.g. '/chat' (got ${typeof namespace === 'string' ? `'${namespace}'` : typeof namespace}); one namespace, not a pattern`)
  }
  const proxy = createProxyTrust(options.trustProxy)
  return {
    session: options.session,
    sessionStore: options.sessionStore,
    store: options.store ?? new MemoryLinkStore(),
    allowedOrigins,
    path,
    namespace,
    proxy,
    identify: options.identify ? identifyUser(options.identify) : undefined,
    lifetimes: { ...DEFAULT_LIFETIMES, ...options.lifetimes },
    sessionCheckInterval: options.sessionCheckInterval ?? DEFAULTS.sessionCheckInterval,
    emptySessionTtl: options.emptySessionTtl ?? DEFAULTS.emptySessionTtl,
    sweepInterval: options.sweepInterval ?? DEFAULTS.sweepInterval,
    resultTtl: options.resultTtl ?? DEFAULTS.resultTtl,
    callLease: options.callLease ?? DEFAULTS.callLease,
    maxInFlight: options.maxInFlight ?? DEFAULTS.maxInFlight,
    touchInterval: options.touchInterval ?? DEFAULTS.touchInterval,
    sessionLockTimeout: options.sessionLockTimeout ?? DEFAULTS.sessionLockTimeout,
    limits: { ...DEFAULT_PAYLOAD_LIMITS, ...options.limits },
    rotation: options.rotation ? { ...DEFAULTS.rotation, ...(typeof options.rotation === 'object' ? options.rotation : {}) } : undefined,
    rateLimits: options.rateLimits === false ? undefined : { ...DEFAULT_RATE_LIMITS, ...options.rateLimits },
    clientIp: options.clientIp ?? proxy.clientIp,
    rejoinWindow: options.rejoinWindow ?? DEFAULTS.rejoinWindow,
    durable: { ...DEFAULT_DURABLE, ...options.durable },
    now: options.now ?? Date.now,
  }
}
