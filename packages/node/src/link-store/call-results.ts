import type { CallReply } from '@session-socket/protocol'

/**
 * State of one call id in the results memory.
 *
 * @example
 * const claim = await results.claimCall(key, 60_000, Date.now())
 * if (claim.state === 'done') return claim.reply
 */
export type CallClaim =
  | { state: 'new' }
  | { state: 'pending' }
  | { state: 'done'; reply: CallReply }

/**
 * Who runs each call key, and its reply once finished, so that a resent call is answered
 * instead of run again.
 *
 * Contract (`test/stores/contract.ts`, "call results"): `claimCall` is atomic, of two
 * concurrent claims of one key exactly one gets `new`, an expired claim or result counts as
 * `new`, and so does a pending claim for its own owner.
 *
 * The synchronous fast path: each method may answer with a plain value (or throw) instead of a
 * promise. A store that has the answer at hand, in this process's memory, should: the dispatcher
 * then takes a call whose handler returns a plain value from claim to recorded reply within one
 * turn of the event loop, with no promise of its own. A store that answers with promises is
 * treated the same way, only later; a subclass may turn either into the other.
 *
 * @example
 * class AuditedStore extends MemoryLinkStore {
 *   override claimCall(key: string, ttlMs: number, now: number) {
 *     audit.push(key) // still answered at once: the fast path stays
 *     return super.claimCall(key, ttlMs, now)
 *   }
 * }
 */
export interface CallResults {
  /**
   * Claims a call key for execution, or reports it pending or done. With `owner` (one per
   * server process), a pending claim taken by the same owner counts as `new`, with a fresh
   * lease: a server that took a claim whose answer it never got (the store failed after writing
   * it), or could not release one, takes it back and runs the call on a resend, instead of
   * answering IN_PROGRESS until the lease ends. Claims of other owners stay pending for them.
   */
  claimCall(key: string, ttlMs: number, now: number, owner?: string): CallClaim | Promise<CallClaim>
  /** Stores the reply of a claimed call for `ttlMs`. */
  finishCall(key: string, reply: CallReply, ttlMs: number, now: number): void | Promise<void>
  /** Forgets a claim whose call never ran to completion (so a resend runs it). */
  releaseCall(key: string): void | Promise<void>
}
