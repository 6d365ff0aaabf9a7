import createDebug from 'debug'
import type { CallReply } from '@session-socket/protocol'
import type { CallResults } from './link-store.js'

const debug = createDebug('session-socket:unsettled-calls')

/** First wait before writing again what the store refused (ms); doubles up to RETRY_MAX while it keeps refusing. */
const RETRY_MIN = 100
const RETRY_MAX = 1_000
/** Most calls kept: past it, the oldest is given up (its claim lapses after callLease, as a crashed node's). */
const MAX_KEPT = 10_000

/** A call whose claim this node holds and whose outcome the store has not taken yet. */
interface Kept {
  /** The reply to record; undefined: the call did not run and its claim is to be released. */
  reply: CallReply | undefined
  /** Until when the write is worth trying: the claim's lease (a release), the reply's life (a reply). */
  until: number
  /** The claim's lease end: a call that did not run is this node's to run until then. */
  claimUntil: number
  /** The write in flight: resolves true once the store took it. */
  writing?: Promise<boolean> | undefined
}

/** What a resend of a kept call gets: the reply, or the claim (the caller runs the call under it). */
export type Resumed = { reply: CallReply } | { claimUntil: number }

/**
 * Replies and releases the store did not take (it failed between the claim and the end of the
 * call), written again until it does. Without this a claim taken just before an outage stayed
 * `pending` in the store for the whole `callLease` after the store was back: every resend was
 * answered IN_PROGRESS. Meanwhile this node answers a resend itself: with the reply, or by running
 * a call that did not run under the claim it still holds.
 *
 * One write at a time: while the store refuses, only the oldest kept call probes it (every
 * 100 ms, backing off to 1 s), so an outage costs the store a few attempts a second; once one
 * write goes through, the others follow at once.
 *
 * @example
 * const unsettled = new UnsettledCalls(links, Date.now, signal)
 * unsettled.keep(key, undefined, claimUntil, claimUntil) // the release failed
 * unsettled.resume(key, Date.now()) // { claimUntil }: run it now
 */
export class UnsettledCalls {
  readonly #results: CallResults
  readonly #now: () => number
  readonly #signal: AbortSignal
  readonly #kept = new Map<string, Kept>()
  #timer: ReturnType<typeof setTimeout> | undefined
  #delay = RETRY_MIN
  #writing = false

  constructor(results: CallResults, now: () => number, signal: AbortSignal) {
    this.#results = results
    this.#now = now
    this.#signal = signal
    signal.addEventListener('abort', () => clearTimeout(this.#timer), { once: true })
  }

  /** How many calls wait for the store. */
  get size(): number {
    return this.#kept.size
  }

  /**
   * Keeps a call the store could not settle: `reply` to record with `resultTtl` (undefined: the
   * claim to release), tried until `until`; `claimUntil` is the end of the claim's lease.
   */
  keep(key: string, reply: CallReply | undefined, until: number, claimUntil: number): void {
    if (this.#signal.aborted) return
    this.#kept.delete(key)
    this.#kept.set(key, { reply, until, claimUntil })
    if (this.#kept.size > MAX_KEPT) this.#kept.delete(this.#kept.keys().next().value!)
    this.#schedule()
  }

  /**
   * A resend of `key` arrived. Undefined: nothing kept, claim it as usual. A reply: the call ran,
   * answer it. A claim: the call did not run and this node still holds its claim; the caller
   * runs it now (nothing is released any more). Waits for a write of `key` in flight.
   */
  resume(key: string, now: number): Resumed | undefined | Promise<Resumed | undefined> {
    const kept = this.#kept.get(key)
    if (!kept) return undefined
    if (kept.writing) return kept.writing.then(() => this.resume(key, this.#now()))
    if (kept.reply) return { reply: kept.reply }
    this.#kept.delete(key)
    // Past its lease the claim is gone from the store by itself: claim again.
    return kept.claimUntil > now ? { claimUntil: kept.claimUntil } : undefined
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#writing || this.#kept.size === 0 || this.#signal.aborted) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#flush()
    }, this.#delay)
    this.#timer.unref?.()
  }

  /** Writes the kept calls oldest first, one at a time, until one fails or none is left. */
  async #flush(): Promise<void> {
    this.#writing = true
    try {
      for (const [key, kept] of this.#kept) {
        if (this.#signal.aborted) return
        if (kept.until <= this.#now()) {
          this.#kept.delete(key)
          continue
        }
        const writing = this.#write(key, kept)
        kept.writing = writing
        const done = await writing
        kept.writing = undefined
        if (!done) {
          this.#delay = Math.min(this.#delay * 2, RETRY_MAX)
          return
        }
        if (this.#kept.get(key) === kept) this.#kept.delete(key)
        this.#delay = RETRY_MIN
      }
    } finally {
      this.#writing = false
      this.#schedule()
    }
  }

  async #write(key: string, kept: Kept): Promise<boolean> {
    try {
      if (kept.reply) await this.#results.finishCall(key, kept.reply, kept.until - this.#now(), this.#now())
      else await this.#results.releaseCall(key)
      debug('a call the store had refused is settled now (%d still waiting)', this.#kept.size - 1)
      return true
    } catch (err) {
      debug('settling a call failed again: %s', (err as Error).message)
      return false
    }
  }
}
