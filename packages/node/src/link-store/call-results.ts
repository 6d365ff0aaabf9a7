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
 * concurrent claims of one key exactly one gets `new`, and an expired claim or result counts as
 * `new`.
 *
 * @example
 * const claim = await results.claimCall(key, 60_000, Date.now())
 * if (claim.state === 'new') await results.finishCall(key, { ok: true, r: await run() }, 600_000, Date.now())
 */
export interface CallResults {
  /** Claims a call key for execution, or reports it pending or done. */
  claimCall(key: string, ttlMs: number, now: number): Promise<CallClaim>
  /** Stores the reply of a claimed call for `ttlMs`. */
  finishCall(key: string, reply: CallReply, ttlMs: number, now: number): Promise<void>
  /** Forgets a claim whose call never ran to completion (so a resend runs it). */
  releaseCall(key: string): Promise<void>
}
