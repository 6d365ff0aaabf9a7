import type { Session } from 'express-session'

/**
 * The session store failed (Redis away, SQLite busy): the client may retry. The demo's error
 * handler answers it 503 STORE_UNAVAILABLE with Retry-After.
 *
 * @example
 * req.session.regenerate((err) => (err ? next(new StoreUnavailableError(err)) : done()))
 */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError'
  constructor(cause: unknown) {
    super('session store unavailable', { cause })
  }
}

/**
 * Saves a session, failing with a StoreUnavailableError.
 *
 * @example
 * await save(ctx.session)
 */
export function save(s: Session): Promise<void> {
  return new Promise((resolve, reject) => s.save((err) => (err ? reject(new StoreUnavailableError(err)) : resolve())))
}
