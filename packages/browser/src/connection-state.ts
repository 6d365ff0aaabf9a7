import type { EndReason, RegisterReason } from '@session-socket/protocol'
import type { SessionSocketError } from '@session-socket/protocol'

/**
 * The connection, as one discriminated union. `ended` and `closed` are terminal; `offline`
 * means "trying again". `rejoining`: the session was replaced by a sign-in and the tab is
 * reconnecting into the new one (not a network loss: calls queue and go out once it is `ready`
 * again); it stays `rejoining` until then, retrying while the browser stores the new cookie.
 */
export type ConnectionState =
  | { status: 'connecting' }
  | { status: 'registering' }
  | { status: 'ready'; restored: boolean; reason: RegisterReason | null }
  | { status: 'rejoining' }
  | { status: 'offline'; attempt: number; retryIn: number; error?: SessionSocketError }
  | { status: 'ended'; reason: EndReason }
  | { status: 'closed'; error?: SessionSocketError }

export type Status = ConnectionState['status']

/** Statuses after which the connection never comes back by itself. */
export function isTerminal(status: Status): boolean {
  return status === 'ended' || status === 'closed'
}
