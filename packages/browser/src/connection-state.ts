import type { EndReason, RegisterReason } from '@session-socket/protocol'
import type { SessionSocketError } from '@session-socket/protocol'

/**
 * The connection, as one discriminated union. `ended` and `closed` are terminal; `offline`
 * means "trying again".
 */
export type ConnectionState =
  | { status: 'connecting' }
  | { status: 'registering' }
  | { status: 'ready'; restored: boolean; reason: RegisterReason | null }
  | { status: 'offline'; attempt: number; retryIn: number; error?: SessionSocketError }
  | { status: 'ended'; reason: EndReason }
  | { status: 'closed'; error?: SessionSocketError }

export type Status = ConnectionState['status']

/** Statuses after which the connection never comes back by itself. */
export function isTerminal(status: Status): boolean {
  return status === 'ended' || status === 'closed'
}

/**
 * Default reconnect delay: exponential from 500 ms, capped at 30 s, with "equal jitter"
 * (half fixed, half random) so a server restart is not met by every tab at the same instant.
 */
export function defaultBackoff(attempt: number): number {
  const base = Math.min(30_000, 500 * 2 ** Math.min(attempt, 16))
  return Math.round(base / 2 + (Math.random() * base) / 2)
}
