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
  readonly deadline: number
  /** Bumped on every send, so an answer to an earlier send of the same call is ignored. */
  attempt: number
  sent: boolean
  resolve(value: unknown): void
  reject(error: SessionSocketError): void
}

/**
 * The calls of one client in the order they were made: waiting for a connection, or sent and
 * waiting for their answer. Bounded, so a long outage cannot grow it without limit.
 */
export class Outbox {
  readonly #calls = new Map<string, PendingCall>()
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
    id: string = this.#prefix + (this.#next++).toString(36),
  ): PendingCall {
    if (this.#calls.size >= this.#limit) {
      throw new SessionSocketError('OUTBOX_FULL', `${this.#limit} calls are already waiting; raise maxQueue or wait for the connection`)
    }
    if (this.#calls.has(id)) throw new SessionSocketError('BAD_REQUEST', `a call with id ${id} is already waiting`)
    const deadline = performance.now() + timeout
    const call: PendingCall = { id, method, params, timeout, deadline, attempt: 0, sent: false, resolve, reject }
    this.#calls.set(id, call)
    if (deadline < this.#due) this.#arm(deadline)
    return call
  }

  /** Whether the call is still waiting (not answered, timed out, cancelled). */
  has(call: PendingCall): boolean {
    return this.#calls.get(call.id) === call
  }

  /** Answers a call that is still waiting: takes it out, then resolves it, or rejects it with `error`. */
  settle(call: PendingCall, value: unknown, error?: SessionSocketError): void {
    if (!this.has(call)) return
    this.#calls.delete(call.id)
    if (error) call.reject(error)
    else call.resolve(value)
  }

  /** Calls not sent on the current connection, oldest first. */
  unsent(): PendingCall[] {
    return [...this.#calls.values()].filter((call) => !call.sent)
  }

  /** The connection dropped: everything must be sent again (same ids, answered once by the server). */
  markAllUnsent(): void {
    for (const call of this.#calls.values()) call.sent = false
  }

  rejectAll(error: SessionSocketError): void {
    this.#arm(Infinity)
    for (const call of this.#calls.values()) this.settle(call, undefined, error)
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
    for (const call of this.#calls.values()) {
      if (call.deadline <= now) this.settle(call, undefined, new SessionSocketError('TIMEOUT', `'${call.method}' got no answer in ${call.timeout} ms`))
      else next = Math.min(next, call.deadline)
    }
    this.#arm(next)
  }
}
