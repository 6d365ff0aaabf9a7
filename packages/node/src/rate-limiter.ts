/** A limit: at most `limit` hits per `windowMs`. */
export interface Limit {
  limit: number
  windowMs: number
}

/** Rate limits and their defaults; each key is counted per node. */
export interface RateLimits {
  /** Engine.IO handshakes per client IP (reconnect storms, connection floods). @default 300 per 10 s */
  handshakesPerIp: Limit
  /** Registers per client IP whose token was unknown, expired, revoked or malformed (token guessing). @default 30 per minute */
  failedRegistersPerIp: Limit
  /** Registers per session (a tab stuck in a reconnect loop). @default 120 per minute */
  registersPerSession: Limit
  /** Restore requests per client IP whose code was wrong, used or expired. @default 30 per minute */
  failedRestoresPerIp: Limit
  /** Restore requests per session. @default 30 per minute */
  restoresPerSession: Limit
}

export const DEFAULT_RATE_LIMITS: RateLimits = {
  handshakesPerIp: { limit: 300, windowMs: 10_000 },
  failedRegistersPerIp: { limit: 30, windowMs: 60_000 },
  registersPerSession: { limit: 120, windowMs: 60_000 },
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

  /** Milliseconds until `key` may act again, or 0 if it is under the limit now. */
  blockedFor(key: string): number {
    const window = this.#windows.get(key)
    const now = this.#now()
    if (!window || window.resetAt <= now) return 0
    return window.count >= this.#limit.limit ? window.resetAt - now : 0
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
