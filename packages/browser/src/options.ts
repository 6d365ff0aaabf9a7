import type { ManagerOptions, SocketOptions } from 'socket.io-client'
import { defaultBackoff } from './retry-policy.js'
import { defaultTabIdStorage, defaultTokenStorage } from './default-storage.js'
import { browserLocks, browserPageLifecycle, type Locks, type PageLifecycle } from './page-lifecycle.js'
import type { TabIdStorage } from './tab-id.js'
import type { TokenStorage } from './token-storage.js'

/** An optional logger: free when absent. */
export type Logger = (level: 'debug' | 'info' | 'warn' | 'error', message: string, data?: unknown) => void

/** Options of {@link createSessionSocket}. */
export interface SessionSocketOptions {
  /**
   * Server URL; its path is the Socket.IO namespace, as with socket.io-client's `io(url)`:
   * `'https://app.example.com/chat'`, or `'/chat'` on the page's origin, for a server that
   * serves `namespace: '/chat'`. @default the page's origin, namespace '/'
   */
  url?: string
  /** URL prefix of the server's HTTP routes (`ss.http()`). @default '/session-socket' */
  path?: string
  /** Where the link token lives. @default defaultTokenStorage(logger): IndexedDB in browsers, memory elsewhere */
  tokenStorage?: TokenStorage
  /** Where this tab's id lives. @default defaultTabIdStorage(logger): sessionStorage in browsers, memory elsewhere */
  tabIdStorage?: TabIdStorage
  /** Most calls that may wait for a connection at once. @default 100 */
  maxQueue?: number
  /** Default call timeout (ms), counted from `call()`, queueing included. @default 30000 */
  callTimeout?: number
  /** Reconnect delay (ms) for the n-th attempt (0-based). @default exponential 0.5 s → 30 s with jitter */
  backoff?: (attempt: number) => number
  /** How long to wait for the cookie restore request (ms). @default 10000 */
  restoreTimeout?: number
  /** Extra Socket.IO client options (transports, socket.io `path`, extraHeaders in Node…). @default {} */
  socketOptions?: Partial<ManagerOptions & SocketOptions>
  /** fetch used for the cookie restore request. @default globalThis.fetch */
  fetch?: typeof fetch
  /** Receives debug, info, warn and error messages. @default undefined (silent) */
  logger?: Logger
  /** Connect at once; with false, call `connect()`. @default true */
  autoConnect?: boolean
  /** Page visibility, connectivity and bfcache events; null to ignore the page. @default browserPageLifecycle() */
  page?: PageLifecycle | null
  /** Web Locks, to let one tab at a time register without a token. @default navigator.locks when present */
  locks?: Locks | null
}

/** Options of one call. */
export interface CallOptions {
  /** Milliseconds before the call fails with TIMEOUT; `Infinity` for none. @default the client's callTimeout */
  timeout?: number
  /**
   * The call's id (1–64 of [A-Za-z0-9_-]), to send again a call an earlier load of this tab
   * made: the server answers a known id from memory instead of running it twice.
   * @default a new random id
   */
  id?: string
  /**
   * Keep the call until answered, across reloads of the tab: needs `createDurableCalls(s)`
   * from `@session-socket/browser/durable` (kept out of the core bundle). @default false
   */
  durable?: boolean
  /** Aborting fails the call with CANCELLED (the server may still run it if it was sent). */
  signal?: AbortSignal
}

/** {@link SessionSocketOptions} with every default applied, and a logger that is always there. */
export interface ResolvedOptions extends SessionSocketOptions {
  path: string
  /** The Socket.IO namespace: the path of `url`, as socket.io-client reads it. */
  namespace: string
  maxQueue: number
  callTimeout: number
  backoff: (attempt: number) => number
  restoreTimeout: number
  tokenStorage: TokenStorage
  tabIdStorage: TabIdStorage
  page: PageLifecycle | null
  locks: Locks | null
  /** `logger` when given, else a no-op. */
  log: Logger
  /** The application's `socketOptions` over ours, except what the client must decide itself. */
  socketOptions: Partial<ManagerOptions & SocketOptions>
}

/** The namespace of a server URL, as socket.io-client's `io(url)` takes it: the URL's path. */
function namespaceOf(url: string | undefined): string {
  if (url === undefined) return '/'
  try {
    return new URL(url, globalThis.location?.href ?? 'http://localhost').pathname
  } catch {
    return '/'
  }
}

/**
 * Checks the options and applies every default, once per client, so the parts of the client
 * read one resolved object. `auth` is the socket.io `auth` callback that supplies the register
 * payload on every (re)connect.
 *
 * @example
 * const options = resolveOptions({ callTimeout: 5000 }, (cb) => cb(registerPayload()))
 * options.path // '/session-socket'
 */
export function resolveOptions(options: SessionSocketOptions, auth: (cb: (payload: object) => void) => void): ResolvedOptions {
  if (options.path !== undefined && (!options.path.startsWith('/') || options.path.endsWith('/'))) {
    throw new TypeError(`path must start with "/" and not end with one, e.g. '/session-socket' (got '${options.path}')`)
  }
  return {
    path: '/session-socket',
    namespace: namespaceOf(options.url),
    maxQueue: 100,
    callTimeout: 30_000,
    backoff: defaultBackoff,
    restoreTimeout: 10_000,
    ...options,
    tokenStorage: options.tokenStorage ?? defaultTokenStorage(options.logger),
    tabIdStorage: options.tabIdStorage ?? defaultTabIdStorage(options.logger),
    page: options.page === undefined ? browserPageLifecycle() : options.page,
    locks: options.locks === undefined ? browserLocks() : options.locks,
    log: options.logger ?? (() => {}),
    socketOptions: {
      withCredentials: true,
      // socket.io's 20 s: a connect attempt into a silently dropped network waits it out in full.
      timeout: 10_000,
      ...options.socketOptions,
      autoConnect: false,
      // A Manager (and connection) of its own: socket.io-client caches one per server and hands
      // it to the app's own io() calls, which would then inherit autoConnect and reconnection
      // false from ours and never connect.
      forceNew: true,
      // Reconnects are decided by the client (backoff, retry-after, terminal states), not by socket.io.
      reconnection: false,
      // socket.io-client calls this on every (re)connect: the token is read from storage each
      // time and travels in the CONNECT packet, so register costs no extra round trip.
      auth,
    },
  }
}
