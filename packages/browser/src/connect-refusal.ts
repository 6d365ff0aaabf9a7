import { SessionSocketError } from '@session-socket/protocol'

/** What the client does after a refused connect: stop for good, end the session, or try again. */
export type ConnectRefusal =
  | { action: 'stop'; error: SessionSocketError }
  | { action: 'end'; reason: 'revoked' }
  | { action: 'retry'; error: SessionSocketError | undefined; retryAfter: number | undefined; soon: boolean }

/**
 * Reads a socket.io-client `connect_error`: the server's typed refusal (`data: { code,
 * retryAfter? }`), Socket.IO's own "Invalid namespace", or a network failure (no data).
 *
 * @example
 * const refusal = readConnectRefusal(err, '/')
 * if (refusal.action === 'retry') schedule(refusal.retryAfter)
 */
export function readConnectRefusal(err: Error & { data?: unknown }, namespace: string): ConnectRefusal {
  if (err.data === undefined && err.message === 'Invalid namespace') {
    // Socket.IO's answer for a namespace the server does not have: no retry changes it.
    return { action: 'stop', error: new SessionSocketError('NOT_FOUND', `the server has no namespace ${namespace}`) }
  }
  const error = err.data ? SessionSocketError.from(err.data) : undefined
  // The browser is still storing a sign-in's cookie: not a failure, try again soon.
  if (error?.code === 'SIGN_IN_PENDING') return { action: 'retry', error, retryAfter: error.retryAfter ?? 200, soon: true }
  // The session was ended as the tab came back (its token was reused): as ss:ended would say.
  if (error?.code === 'SESSION_ENDED') return { action: 'end', reason: 'revoked' }
  if (error && !error.retryable) return { action: 'stop', error: new SessionSocketError(error.code, err.message) }
  return { action: 'retry', error, retryAfter: error?.retryAfter, soon: false }
}
