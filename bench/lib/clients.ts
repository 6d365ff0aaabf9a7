import { io, type Socket } from 'socket.io-client'
import type * as Browser from '../../packages/browser/dist/index.js'
import type { SessionSocket, TokenStorage } from '../../packages/browser/dist/index.js'
import { importDist } from './dist.js'
import { CookieJar, JarWebSocket, jarFetch } from './jar.js'

const browser = await importDist<typeof Browser>('browser')
const { createSessionSocket, memoryTabIdStorage } = browser
export const { memoryTokenStorage } = browser

/** Which side of a comparison: the SDK, or plain Socket.IO with the express-session recipe. */
export type Side = 'ss' | 'plain'

/**
 * Reconnect schedules.
 * - `sio`: socket.io-client's defaults on both sides — reconnectionDelay 1000 ms, ×2 per attempt,
 *   randomizationFactor 0.5, reconnectionDelayMax 5000 ms. The SDK gets the same function as its
 *   `backoff` option (a copy of socket.io-client's backo2), so both sides retry alike.
 * - `native`: each side's own default — socket.io-client as above; the SDK's defaultBackoff
 *   (0.5 s ×2, equal jitter, cap 30 s).
 */
export type BackoffMode = 'sio' | 'native'

export const SIO_BACKOFF = { min: 1000, max: 5000, factor: 2, jitter: 0.5 }

/** socket.io-client's backo2 `duration()` for the n-th attempt (0-based), as the SDK's `backoff`. */
export function sioBackoff(attempt: number): number {
  let ms = SIO_BACKOFF.min * SIO_BACKOFF.factor ** attempt
  const rand = Math.random()
  const deviation = Math.floor(rand * SIO_BACKOFF.jitter * ms)
  ms = (Math.floor(rand * 10) & 1) === 0 ? ms - deviation : ms + deviation
  return Math.min(ms, SIO_BACKOFF.max) | 0
}

/** One simulated browser tab, with what the benchmarks watch: when it got (back) to ready. */
export interface Tab {
  side: Side
  jar: CookieJar
  /** Epoch ms of the last `ready` (SDK) / `connect` (plain). */
  readyAt: number | undefined
  /** What the tab last settled on: ready, or ended (the SDK's terminal state). */
  settled: 'ready' | 'ended' | undefined
  /** Reconnect attempts since the last arm(). */
  attempts: number
  /** Clears readyAt/settled/attempts, to time the next comeback. */
  arm(): void
  /** Resolves on the next ready/ended after now. */
  nextSettle(timeoutMs: number): Promise<'ready' | 'ended'>
  /** A call through the SDK, or emitWithAck on the plain socket. */
  call(method: string, params: unknown): Promise<unknown>
  close(): void
  ss?: SessionSocket
  socket: Socket
}

export interface OpenOptions {
  backoff?: BackoffMode
  jar?: CookieJar
  tokens?: TokenStorage
  /** Extra SDK options (callTimeout, maxQueue). */
  sdk?: Record<string, unknown>
  /** Extra socket.io-client options for plain tabs (ackTimeout, retries). */
  plain?: Record<string, unknown>
}

function makeTab(side: Side, jar: CookieJar): Tab & { settle(kind: 'ready' | 'ended'): void } {
  let waiters: Array<(kind: 'ready' | 'ended') => void> = []
  const tab = {
    side,
    jar,
    readyAt: undefined as number | undefined,
    settled: undefined as 'ready' | 'ended' | undefined,
    attempts: 0,
    arm() {
      tab.readyAt = undefined
      tab.settled = undefined
      tab.attempts = 0
    },
    settle(kind: 'ready' | 'ended') {
      tab.readyAt = Date.now()
      tab.settled = kind
      const current = waiters
      waiters = []
      for (const waiter of current) waiter(kind)
    },
    nextSettle(timeoutMs: number) {
      return new Promise<'ready' | 'ended'>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== done)
          reject(new Error(`tab did not settle in ${timeoutMs} ms`))
        }, timeoutMs)
        const done = (kind: 'ready' | 'ended') => {
          clearTimeout(timer)
          resolve(kind)
        }
        waiters.push(done)
      })
    },
  }
  return tab as Tab & { settle(kind: 'ready' | 'ended'): void }
}

/** A tab of the SDK: createSessionSocket as a browser would run it, in Node. */
export function openSsTab(url: string, options: OpenOptions = {}): Tab {
  const jar = options.jar ?? new CookieJar()
  const tab = makeTab('ss', jar)
  const s = createSessionSocket({
    url,
    tokenStorage: options.tokens ?? memoryTokenStorage(),
    tabIdStorage: memoryTabIdStorage(),
    page: null,
    locks: null,
    fetch: jarFetch(jar),
    ...(options.backoff === 'native' ? {} : { backoff: sioBackoff }),
    ...options.sdk,
    // forceNew: socket.io-client would otherwise multiplex every tab of this process on one connection.
    socketOptions: { transports: [JarWebSocket], forceNew: true, jar } as never,
  })
  s.on('ready', () => tab.settle('ready'))
  s.on('ended', () => tab.settle('ended'))
  s.on('status', (state) => {
    if (state.status === 'connecting') tab.attempts++
  })
  return Object.assign(tab, {
    ss: s,
    socket: s.socket,
    call: (method: string, params: unknown) => s.call(method, params),
    close: () => s.close(),
  })
}

/** A tab of plain Socket.IO: io() with socket.io-client's own reconnection. */
export function openPlainTab(url: string, options: OpenOptions = {}): Tab {
  const jar = options.jar ?? new CookieJar()
  const tab = makeTab('plain', jar)
  const socket = io(url, {
    transports: [JarWebSocket],
    forceNew: true,
    reconnectionDelay: SIO_BACKOFF.min,
    reconnectionDelayMax: SIO_BACKOFF.max,
    randomizationFactor: SIO_BACKOFF.jitter,
    ...options.plain,
    jar,
  } as never)
  socket.on('connect', () => tab.settle('ready'))
  socket.io.on('reconnect_attempt', () => tab.attempts++)
  return Object.assign(tab, {
    socket,
    call: (method: string, params: unknown) => socket.emitWithAck(method, params),
    close: () => socket.close(),
  })
}

export function openTab(side: Side, url: string, options: OpenOptions = {}): Tab {
  return side === 'ss' ? openSsTab(url, options) : openPlainTab(url, options)
}
