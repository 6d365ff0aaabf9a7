import { nanoid } from 'nanoid'
import { SessionSocketError } from '@session-socket/protocol'

/** One call waiting for its answer. */
export interface PendingCall {
  readonly id: string
  readonly method: string
  readonly params: unknown
  /** The call's timeout (ms), for the TIMEOUT message. */
  readonly timeout: number
  /** When it fails with TIMEOUT, on the `performance.now()` clock; Infinity for never. */
  readonly due: number
  /**
   * Bumped on every send and when the call settles, so an answer to an earlier send (or a retry
   * planned for it) is ignored.
   */
  attempt: number
  /** Sent on the current connection (unset until the first send). */
  sent?: boolean
  resolve(value: unknown): void
  reject(error: SessionSocketError): void
}

/**
 * The calls of one client in the order they were made: waiting for a connection, or sent and
 * waiting for their answer. Bounded, so a long outage cannot grow it without limit.
 */
export class Outbox {
  /**
   * Oldest first. An array, not a Map by id: answers come mostly in order, so the call is near
   * the front, and a Map churning one entry per call kept its old tables (and the calls they
   * held) alive into the old generation (~0.5 MB promoted per scavenge at 100 in flight).
   */
  readonly #calls: PendingCall[] = []
  readonly #limit: number
  /**
   * Call ids are this random prefix plus a counter: unique per tab, and across reloads (the
   * server remembers replies by id), with one random draw per client instead of one per call
   * (crypto.getRandomValues per call measured ~3 µs in Node's webcrypto).
   */
  readonly #prefix = nanoid(10)
  #next = 0
  /**
   * One timer for all calls instead of one per call (a timer per call was ~1 µs of CPU per
   * call in Node, measured with bench/rpc-profile.ts): due at the earliest deadline it was
   * armed for. Calls with the default timeout have ever later deadlines, so it is re-armed only
   * when it fires or a call with a shorter timeout comes.
   */
  #timer: ReturnType<typeof setTimeout> | undefined
  #due = Infinity

  constructor(limit: number) {
    this.#limit = limit
  }

  add(
    method: string,
    params: unknown,
    timeout: number,
    resolve: (value: unknown) => void,
    reject: (error: SessionSocketError) => void,
    id?: string,
  ): PendingCall {
    if (this.#calls.length >= this.#limit) {
      throw new SessionSocketError('OUTBOX_FULL', `${this.#limit} calls are already waiting; raise maxQueue or wait for the connection`)
    }
    // Only an id given by the caller can be one already waiting.
    if (id === undefined) id = this.#prefix + (this.#next++).toString(36)
    else if (this.#calls.some((call) => call.id === id)) throw new SessionSocketError('BAD_REQUEST', `a call with id ${id} is already waiting`)
    const due = performance.now() + timeout
    const call: PendingCall = { id, method, params, timeout, due, attempt: 0, resolve, reject }
    this.#calls.push(call)
    if (due < this.#due) this.#arm(due)
    return call
  }

  /** Answers a call that is still waiting: takes it out, then rejects it with `error`, or resolves it with `value`. */
  settle(call: PendingCall, error: SessionSocketError | undefined, value?: unknown): void {
    const at = this.#calls.indexOf(call)
    if (at < 0) return
    this.#calls.splice(at, 1)
    call.attempt++
    if (error) call.reject(error)
    else call.resolve(value)
  }

  /** Calls not sent on the current connection, oldest first. */
  unsent(): PendingCall[] {
    return this.#calls.filter((call) => !call.sent)
  }

  /** The connection dropped: everything must be sent again (same ids, answered once by the server). */
  markAllUnsent(): void {
    for (const call of this.#calls) call.sent = false
  }

  rejectAll(error: SessionSocketError): void {
    this.#arm(Infinity)
    for (const call of [...this.#calls]) this.settle(call, error)
  }

  /** Sets the timer for `due` (none for Infinity). */
  #arm(due: number): void {
    clearTimeout(this.#timer)
    this.#due = due
    // A delay over 2^31 - 1 ms would fire at once: wait 2e9 ms at most and look again.
    if (due < Infinity) this.#timer = setTimeout(() => this.#expire(), Math.min(due - performance.now(), 2e9))
  }

  /** Fails the calls past their deadline with TIMEOUT and arms the timer for the next one. */
  #expire(): void {
    const now = performance.now()
    let next = Infinity
    for (const call of [...this.#calls]) {
      if (call.due <= now) this.settle(call, new SessionSocketError('TIMEOUT', `'${call.method}' got no answer in ${call.timeout} ms`))
      else next = Math.min(next, call.due)
    }
    this.#arm(next)
  }
}
