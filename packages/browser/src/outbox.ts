import { nanoid } from 'nanoid'
import { SessionSocketError } from '@session-socket/protocol'

/** One call waiting for its answer. */
export interface PendingCall {
  readonly id: string
  readonly method: string
  readonly params: unknown
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

  constructor(limit: number) {
    this.#limit = limit
  }

  get size(): number {
    return this.#calls.size
  }

  add(
    method: string,
    params: unknown,
    settle: { resolve(value: unknown): void; reject(error: SessionSocketError): void },
    id: string = this.#prefix + (this.#next++).toString(36),
  ): PendingCall {
    if (this.#calls.size >= this.#limit) {
      throw new SessionSocketError('OUTBOX_FULL', `${this.#limit} calls are already waiting; raise maxQueue or wait for the connection`)
    }
    if (this.#calls.has(id)) throw new SessionSocketError('BAD_REQUEST', `a call with id ${id} is already waiting`)
    const call: PendingCall = {
      id,
      method,
      params,
      attempt: 0,
      sent: false,
      ...settle,
    }
    this.#calls.set(call.id, call)
    return call
  }

  get(id: string): PendingCall | undefined {
    return this.#calls.get(id)
  }

  remove(id: string): void {
    this.#calls.delete(id)
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
    const calls = [...this.#calls.values()]
    this.#calls.clear()
    for (const call of calls) call.reject(error)
  }
}
