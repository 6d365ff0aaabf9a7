import type { ErrorCode } from '@session-socket/protocol'

/** A hidden tab retries no sooner than this (ms), so a restart is not met by every background tab. */
export const HIDDEN_MIN_DELAY = 5_000
/** A hidden tab waits this many times its backoff; becoming visible or online retries at once. */
export const HIDDEN_SLOWDOWN = 4
/** Wait before sending again a call the server asked to retry without saying when (ms). */
export const CALL_RETRY_DELAY = 500
/**
 * Call errors answered by sending the same call id again later: the server runs a call id at
 * most once, and a store outage is network trouble too. The call's own timeout bounds it.
 */
export const RETRIED_CALL_CODES: readonly ErrorCode[] = ['IN_PROGRESS', 'RATE_LIMITED', 'UNREGISTERED', 'STORE_UNAVAILABLE']

/**
 * Default reconnect delay: exponential from 500 ms, capped at 30 s, with "equal jitter"
 * (half fixed, half random) so a server restart is not met by every tab at the same instant.
 *
 * @example
 * const s = createSessionSocket({ backoff: (attempt) => Math.max(2000, defaultBackoff(attempt)) })
 */
export function defaultBackoff(attempt: number): number {
  const base = Math.min(30_000, 500 * 2 ** Math.min(attempt, 16))
  return Math.round(base / 2 + (Math.random() * base) / 2)
}
