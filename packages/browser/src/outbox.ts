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
  /** Kept in durable storage until answered (survives reloads). */
  readonly durable: boolean
  /** When it was made (ms since epoch). */
  readonly createdAt: number
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
  /** Creation times are strictly increasing, so durable calls sort in call order after a reload. */
  #lastCreatedAt = 0

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
    origin: { id?: string; durable?: boolean; createdAt?: number } = {},
  ): PendingCall {
    if (this.#calls.size >= this.#limit) {
      throw new SessionSocketError('OUTBOX_FULL', `${this.#limit} calls are already waiting; raise maxQueue or wait for the connection`)
    }
    const createdAt = origin.createdAt ?? (this.#lastCreatedAt = Math.max(Date.now(), this.#lastCreatedAt + 1))
    const call: PendingCall = {
      id: origin.id ?? nanoid(12),
      method,
      params,
      attempt: 0,
      sent: false,
      durable: origin.durable ?? false,
      createdAt,
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

  /** Every waiting call, oldest first. */
  all(): PendingCall[] {
    return [...this.#calls.values()]
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
