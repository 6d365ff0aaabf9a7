/** A limit: at most `limit` hits per `windowMs`. */
export interface Limit {
  limit: number
  windowMs: number
}

/**
 * Rate limits and their defaults; each key is counted per node.
 *
 * Per-address budgets are sized for many users behind one address (an office or carrier-grade
 * NAT), where a deploy or a restart makes every tab reconnect at once. No per-address limit
 * counts other clients' failures: an unknown, expired or revoked token is answered with a fresh
 * one (192 random bits cannot be guessed), so a valid token or a first visit is never refused
 * because of what others sent from the same address.
 */
export interface RateLimits {
  /** Engine.IO handshakes per client IP: a backstop against one host flooding, above any NAT's reconnect burst. @default 5000 per 10 s */
  handshakesPerIp: Limit
  /** Sessions registers create per client IP (first visits, tokens whose session is gone). @default 2000 per minute */
  newSessionsPerIp: Limit
  /** Registers per session (a tab stuck in a reconnect loop). @default 120 per minute */
  registersPerSession: Limit
  /** Restore codes asked for over `ss:cookie` per socket. @default 10 per minute */
  cookieCodesPerSocket: Limit
  /** Restore codes asked for over `ss:cookie` per client IP. @default 1000 per minute */
  cookieCodesPerIp: Limit
  /** Restore requests per client IP whose code was wrong, used or expired. @default 30 per minute */
  failedRestoresPerIp: Limit
  /** Restore requests per session. @default 30 per minute */
  restoresPerSession: Limit
}

export const DEFAULT_RATE_LIMITS: RateLimits = {
  handshakesPerIp: { limit: 5_000, windowMs: 10_000 },
  newSessionsPerIp: { limit: 2_000, windowMs: 60_000 },
  registersPerSession: { limit: 120, windowMs: 60_000 },
  cookieCodesPerSocket: { limit: 10, windowMs: 60_000 },
  cookieCodesPerIp: { limit: 1_000, windowMs: 60_000 },
  failedRestoresPerIp: { limit: 30, windowMs: 60_000 },
  restoresPerSession: { limit: 30, windowMs: 60_000 },
}

interface Window {
  count: number
  resetAt: number
}

/** Most keys one limiter keeps; past this, expired windows are dropped (and, failing that, all). */
const MAX_KEYS = 50_000

/**
 * Fixed-window counters per key, in memory. Bounded: a flood of distinct keys cannot grow it
 * past MAX_KEYS. Each node counts for itself, so N nodes allow up to N times the limit.
 */
export class RateLimiter {
  readonly #windows = new Map<string, Window>()
  readonly #limit: Limit
  readonly #now: () => number

  constructor(limit: Limit, now: () => number) {
    this.#limit = limit
    this.#now = now
  }

  /** Counts one hit; returns milliseconds to wait if this hit went over the limit, else 0. */
  hit(key: string): number {
    const now = this.#now()
    let window = this.#windows.get(key)
    if (!window || window.resetAt <= now) {
      if (this.#windows.size >= MAX_KEYS) this.#prune(now)
      window = { count: 0, resetAt: now + this.#limit.windowMs }
      this.#windows.set(key, window)
    }
    window.count++
    return window.count > this.#limit.limit ? window.resetAt - now : 0
  }

  get size(): number {
    return this.#windows.size
  }

  #prune(now: number): void {
    for (const [key, window] of this.#windows) if (window.resetAt <= now) this.#windows.delete(key)
    if (this.#windows.size >= MAX_KEYS) this.#windows.clear()
  }
}

/**
 * The limiter for one of `limits`, counting on `now`; undefined when rate limits are off.
 *
 * @example
 * const perIp = createRateLimiter(DEFAULT_RATE_LIMITS, 'handshakesPerIp', Date.now)
 * if (perIp?.hit(ip)) refuse()
 */
export function createRateLimiter(limits: RateLimits | undefined, key: keyof RateLimits, now: () => number): RateLimiter | undefined {
  return limits ? new RateLimiter(limits[key], now) : undefined
}
