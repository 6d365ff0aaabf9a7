import createDebug from 'debug'
import type { CallReply } from '@session-socket/protocol'
import type { CallResults } from './link-store.js'

const debug = createDebug('session-socket:unsettled-calls')

/**
 * Longest wait before writing again what the store refused (ms), when no other call shows the
 * store answering again. Not shorter: a write every few seconds to a Redis that stopped
 * answering keeps its connection busy, and node-redis's socketTimeout (which finds such a
 * Redis) counts only an idle connection.
 */
const RETRY_IDLE = 5_000
/** Most calls kept: past it, the oldest is given up (its claim lapses after callLease, as a crashed node's). */
const MAX_KEPT = 10_000

/**
 * What the store still has to be told about a call key: the reply of a call that ran; the same,
 * after saving its session again (`save`: the save failed, it may or may not have been
 * written); that a call which did not run gives its claim up; or (its claim failed: the store
 * may or may not have taken it) that this node wants no claim on it.
 */
export type Unsettled = { reply: CallReply; save?: () => Promise<void> } | 'release' | 'unclaim'

/** The answer to a resend of a call whose session still cannot be saved. */
const NOT_SAVED: CallReply = { ok: false, e: { code: 'STORE_UNAVAILABLE', message: 'the session could not be saved; send the call again', retryAfter: 1000 } }

interface Kept {
  write: Unsettled
  /** Until when the write is worth trying: the claim's lease, the reply's life. */
  until: number
  /** The write in flight: resolves true once the store took it. */
  writing?: Promise<boolean> | undefined
}

/** What the server's dispatcher tells the unsettled calls. */
export interface UnsettledCallsOptions {
  results: CallResults
  /** This server's claim owner (`claimCall`'s `owner`). */
  owner: string
  /** How long a reply is kept (ms), for a reply recorded after its session was saved again. */
  resultTtl: number
  /** How long a claim holds (ms): an `unclaim` takes the claim for that long, then gives it up. */
  callLease: number
  now: () => number
  /** The server is closing: stop writing. */
  signal: AbortSignal
  /** A call of this key is running on this node (its claim is in use: leave it). */
  isRunning: (key: string) => boolean
}

/**
 * Replies and claims the store did not settle because it failed between the claim and the end
 * of the call, written again until it does. Without this a claim taken just before an outage
 * stayed `pending` in the store for the whole `callLease` after the store was back: every resend
 * was answered IN_PROGRESS. A resend to this node meanwhile gets the kept reply; a call that did
 * not run is claimed again, which the store grants to the claim's own owner.
 *
 * The writes start as soon as another call shows the store answering again (`storeAnswered`),
 * within a second of its return while tabs resend, else every 5 s; one at a time, oldest first,
 * until one fails.
 *
 * @example
 * const unsettled = new UnsettledCalls({ results: links, owner, resultTtl: 600_000, callLease: 60_000, now: Date.now, signal, isRunning: (key) => running.has(key) })
 * unsettled.keep(key, 'release', claimUntil) // the release failed
 * unsettled.storeAnswered() // another call's claim went through: write it now
 * unsettled.resume(key) // undefined: claim it again (the store gives it back to this owner)
 */
export class UnsettledCalls {
  readonly #options: UnsettledCallsOptions
  readonly #kept = new Map<string, Kept>()
  #timer: ReturnType<typeof setTimeout> | undefined
  #writing = false

  constructor(options: UnsettledCallsOptions) {
    this.#options = options
    options.signal.addEventListener('abort', () => clearTimeout(this.#timer), { once: true })
  }

  /** How many calls wait for the store. */
  get size(): number {
    return this.#kept.size
  }

  /** Keeps what the store must be told about `key`, tried until `until`. */
  keep(key: string, write: Unsettled, until: number): void {
    if (this.#options.signal.aborted) return
    this.#kept.delete(key)
    this.#kept.set(key, { write, until })
    if (this.#kept.size > MAX_KEPT) this.#kept.delete(this.#kept.keys().next().value!)
    this.#schedule()
  }

  /**
   * A resend of `key` arrived: the kept reply if the call ran (for a call whose session was not
   * saved, once it is saved now; STORE_UNAVAILABLE while it cannot be), else undefined (claim it
   * as usual; nothing is written for it any more). Waits for a write of `key` in flight.
   */
  resume(key: string): { reply: CallReply } | undefined | Promise<{ reply: CallReply } | undefined> {
    const kept = this.#kept.get(key)
    if (!kept) return undefined
    if (kept.writing) return kept.writing.then(() => this.resume(key))
    if (typeof kept.write !== 'object') {
      this.#kept.delete(key)
      return undefined
    }
    if (!kept.write.save) return { reply: kept.write.reply }
    const { reply } = kept.write
    const writing = this.#write(key, kept.write, kept.until)
    kept.writing = writing
    return writing.then((done) => {
      kept.writing = undefined
      if (!done) return { reply: NOT_SAVED }
      if (this.#kept.get(key) === kept) this.#kept.delete(key)
      return { reply }
    })
  }

  /** A store call of this node just succeeded: write what is kept now. */
  storeAnswered(): void {
    if (this.#kept.size === 0 || this.#writing) return
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#schedule(0)
  }

  #schedule(delay = RETRY_IDLE): void {
    if (this.#timer !== undefined || this.#writing || this.#kept.size === 0 || this.#options.signal.aborted) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#flush()
    }, delay)
    this.#timer.unref?.()
  }

  /** Writes the kept calls oldest first, one at a time, until one fails or none is left. */
  async #flush(): Promise<void> {
    this.#writing = true
    try {
      for (const [key, kept] of this.#kept) {
        if (this.#options.signal.aborted) return
        // Past its time, or claimed again by a resend running here now: nothing left to write.
        if (kept.until <= this.#options.now() || (typeof kept.write !== 'object' && this.#options.isRunning(key))) {
          this.#kept.delete(key)
          continue
        }
        const writing = this.#write(key, kept.write, kept.until)
        kept.writing = writing
        const done = await writing
        kept.writing = undefined
        if (!done) return
        if (this.#kept.get(key) === kept) this.#kept.delete(key)
      }
    } finally {
      this.#writing = false
      this.#schedule()
    }
  }

  async #write(key: string, write: Unsettled, until: number): Promise<boolean> {
    const { results, owner, callLease, now } = this.#options
    try {
      if (typeof write === 'object') {
        if (write.save) {
          await write.save()
          // Saved: from now on a resend is answered from the reply, and the store keeps it.
          delete write.save
          await results.finishCall(key, write.reply, this.#options.resultTtl, now())
        } else {
          await results.finishCall(key, write.reply, until - now(), now())
        }
      } else if (write === 'release') {
        await results.releaseCall(key)
      } else {
        // Whether the failed claim was taken or not, this owner gets it now (or someone else
        // holds it, or it is done): give it up again, so a resend to any node runs the call.
        const claim = await results.claimCall(key, callLease, now(), owner)
        if (claim.state === 'new') await results.releaseCall(key)
      }
      debug('a call the store had refused is settled now (%d still waiting)', this.#kept.size - 1)
      return true
    } catch (err) {
      debug('settling a call failed again: %s', (err as Error).message)
      return false
    }
  }
}
