import type { CallReply } from '@session-socket/protocol'
import type { CallClaim } from '../link-store.js'

interface CallEntry {
  /** Null while the call runs. */
  reply: CallReply | null
  expiresAt: number
  /** Who claimed it (a pending claim is `new` again for its owner). */
  owner?: string | undefined
}

/** The claims every caller gets, shared: a claim is read, never changed. */
const NEW: CallClaim = Object.freeze({ state: 'new' })
const PENDING: CallClaim = Object.freeze({ state: 'pending' })

/**
 * The memory store's call results: who runs each call key, and its reply once finished.
 * Answers at once (no promise): the store's synchronous fast path.
 *
 * Two generations of entries, so that forgetting costs nothing per call: new entries go to the
 * current one; once it holds `maxResults`, it becomes the previous one and the previous one is
 * dropped whole; and the previous one is dropped as soon as everything in it has expired. So
 * the latest `maxResults` replies are always kept (for their TTL), and at most twice as many are
 * in memory: a busy process cannot grow without bound (at 1,000 calls/s a 10-minute TTL alone
 * would keep 600,000 replies).
 */
export class MemoryCallResults {
  readonly #max: number
  #current = new Map<string, CallEntry>()
  #previous = new Map<string, CallEntry>()
  /** The latest expiry in each generation. */
  #currentUntil = 0
  #previousUntil = 0

  constructor(maxResults: number) {
    if (!(Number.isInteger(maxResults) && maxResults > 0)) throw new TypeError(`maxResults must be a positive integer (got ${maxResults})`)
    this.#max = maxResults
  }

  claim(key: string, ttlMs: number, now: number, owner?: string): CallClaim {
    if (this.#previousUntil <= now && this.#previous.size > 0) this.#previous = new Map()
    const entry = this.#current.get(key) ?? this.#previous.get(key)
    if (entry && entry.expiresAt > now && (entry.reply || owner === undefined || entry.owner !== owner)) {
      return entry.reply ? { state: 'done', reply: entry.reply } : PENDING
    }
    this.#put(key, { reply: null, expiresAt: now + ttlMs, owner })
    return NEW
  }

  finish(key: string, reply: CallReply, ttlMs: number, now: number): void {
    const entry = this.#current.get(key)
    if (entry && entry.reply === null) {
      entry.reply = reply
      entry.expiresAt = now + ttlMs
      this.#currentUntil = Math.max(this.#currentUntil, entry.expiresAt)
    } else {
      // Not claimed here, or its claim is in the previous generation: the current one shadows it.
      this.#put(key, { reply, expiresAt: now + ttlMs })
    }
  }

  release(key: string): void {
    this.#current.delete(key)
    this.#previous.delete(key)
  }

  /** Forgets every expired claim and reply; returns how many. */
  sweep(now: number): number {
    let count = 0
    for (const generation of [this.#current, this.#previous]) {
      for (const [key, entry] of generation) {
        if (entry.expiresAt <= now) {
          generation.delete(key)
          count++
        }
      }
    }
    return count
  }

  #put(key: string, entry: CallEntry): void {
    if (this.#current.size >= this.#max) {
      this.#previous = this.#current
      this.#previousUntil = this.#currentUntil
      this.#current = new Map()
      this.#currentUntil = 0
    }
    this.#current.set(key, entry)
    this.#currentUntil = Math.max(this.#currentUntil, entry.expiresAt)
  }
}
