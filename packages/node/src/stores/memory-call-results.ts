import type { CallReply } from '@session-socket/protocol'
import type { CallClaim } from '../link-store.js'

interface CallEntry {
  /** Null while the call runs. */
  reply: CallReply | null
  expiresAt: number
}

/** The claims every caller gets, shared: a claim is read, never changed. */
const NEW: CallClaim = Object.freeze({ state: 'new' })
const PENDING: CallClaim = Object.freeze({ state: 'pending' })

/** Fewer popped slots than this are not worth copying the queue for. */
const COMPACT_AFTER = 1024

/**
 * The memory store's call results: who runs each call key, and its reply once finished.
 * Answers at once (no promise): the dispatcher calls it directly, which saves it a promise and a
 * turn of the event loop per call.
 *
 * Replies are forgotten at their expiry as new calls come, oldest first, from a queue in finish
 * order: no scan of the whole memory, and no more kept than the TTL asks. Past `maxResults`
 * replies, the oldest are forgotten early, so a busy process cannot grow without bound (at
 * 1,000 calls/s a 10-minute TTL alone would keep 600,000 replies).
 */
export class MemoryCallResults {
  readonly #entries = new Map<string, CallEntry>()
  readonly #max: number
  /**
   * Finished calls, oldest first: each key with the entry it had then. A key claimed again
   * since has a new entry, and its old place in the queue is skipped.
   */
  #keys: string[] = []
  #finished: CallEntry[] = []
  #head = 0

  constructor(maxResults: number) {
    if (!(Number.isInteger(maxResults) && maxResults > 0)) throw new TypeError(`maxResults must be a positive integer (got ${maxResults})`)
    this.#max = maxResults
  }

  claim(key: string, ttlMs: number, now: number): CallClaim {
    this.#forget(now)
    const entry = this.#entries.get(key)
    if (entry && entry.expiresAt > now) return entry.reply ? { state: 'done', reply: entry.reply } : PENDING
    this.#entries.set(key, { reply: null, expiresAt: now + ttlMs })
    return NEW
  }

  finish(key: string, reply: CallReply, ttlMs: number, now: number): void {
    let entry = this.#entries.get(key)
    if (entry && entry.reply === null) {
      entry.reply = reply
      entry.expiresAt = now + ttlMs
    } else {
      entry = { reply, expiresAt: now + ttlMs }
      this.#entries.set(key, entry)
    }
    this.#keys.push(key)
    this.#finished.push(entry)
    if (this.#keys.length - this.#head > this.#max) this.#forget(now)
  }

  release(key: string): void {
    this.#entries.delete(key)
  }

  /** Forgets every expired claim and reply; returns how many. */
  sweep(now: number): number {
    let count = 0
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) {
        this.#entries.delete(key)
        count++
      }
    }
    return count
  }

  /** Pops the queue's expired replies, and the oldest beyond `maxResults`. */
  #forget(now: number): void {
    const keys = this.#keys
    const finished = this.#finished
    let head = this.#head
    while (head < keys.length && (finished[head]!.expiresAt <= now || keys.length - head > this.#max)) {
      const key = keys[head]!
      if (this.#entries.get(key) === finished[head]) this.#entries.delete(key)
      head++
    }
    if (head > COMPACT_AFTER && head * 2 > keys.length) {
      this.#keys = keys.slice(head)
      this.#finished = finished.slice(head)
      head = 0
    }
    this.#head = head
  }
}
