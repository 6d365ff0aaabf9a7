/**
 * Every error code session-socket puts on the wire, with whether a client may
 * retry the same request later. One table; the types are derived from it.
 */
export const ERROR_CODES = {
  /** A call arrived before register succeeded on this connection. */
  UNREGISTERED: { retryable: true },
  /** The payload does not match the protocol (wrong type, missing field, oversize, forbidden key). */
  BAD_REQUEST: { retryable: false },
  /** The client speaks a protocol version this server does not. */
  UNSUPPORTED_VERSION: { retryable: false },
  /** No method of that name is registered on the server (or session-socket is not served on that namespace). */
  NOT_FOUND: { retryable: false },
  /** The call got no answer in time. The server may or may not have run it. */
  TIMEOUT: { retryable: true },
  /** The caller aborted the call through its AbortSignal. */
  CANCELLED: { retryable: false },
  /** The HTTP session this tab belonged to is gone (logout, expiry, revoked). */
  SESSION_ENDED: { retryable: false },
  /** Too many requests; `retryAfter` (ms) says when to try again. */
  RATE_LIMITED: { retryable: true },
  /** The request came from an Origin that is not allowed. */
  FORBIDDEN: { retryable: false },
  /** The client-side outbox is full: too many calls are waiting for a connection. */
  OUTBOX_FULL: { retryable: true },
  /** The same call id is still being run elsewhere; ask again after `retryAfter` ms. */
  IN_PROGRESS: { retryable: true },
  /** A tab already has as many unacknowledged durable events (count or bytes) as it may keep. */
  QUOTA_EXCEEDED: { retryable: true },
  /** A store cannot be used now (unreachable, busy, full, closing or closed); try again after `retryAfter` ms. */
  STORE_UNAVAILABLE: { retryable: true },
  /**
   * Register: the token's session was just replaced by a sign-in (`session.regenerate()` over
   * HTTP) and the handshake does not carry the new session's cookie yet. Connect again after
   * `retryAfter` ms: the cookie is on its way to the browser.
   */
  SIGN_IN_PENDING: { retryable: true },
  /** The client was closed by the application before the call finished. */
  CLOSED: { retryable: false },
  /** The method handler failed. Details stay in the server log. */
  INTERNAL: { retryable: false },
} as const satisfies Record<string, { retryable: boolean }>

export type ErrorCode = keyof typeof ERROR_CODES

/** The shape of an error as it travels on the wire. */
export interface WireError {
  code: ErrorCode
  message: string
  /** Milliseconds to wait before trying again (RATE_LIMITED, IN_PROGRESS, STORE_UNAVAILABLE, SIGN_IN_PENDING). */
  retryAfter?: number
}

/** True when `code` is one of {@link ERROR_CODES}. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code)
}

/**
 * The one error class of session-socket, on the server and in the browser.
 *
 * @example
 * try { await s.call('cart.add', { sku }) }
 * catch (err) { if (err instanceof SessionSocketError && err.code === 'SESSION_ENDED') showSignIn() }
 */
export class SessionSocketError extends Error {
  override readonly name = 'SessionSocketError'
  readonly code: ErrorCode
  readonly retryAfter: number | undefined

  constructor(code: ErrorCode, message: string, options: { retryAfter?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.retryAfter = options.retryAfter
  }

  /** Whether the same request may succeed if tried again later. */
  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable
  }

  /** The wire form: code, message and retryAfter only, never a stack or a cause. */
  toWire(): WireError {
    return this.retryAfter === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, retryAfter: this.retryAfter }
  }

  /**
   * Normalises whatever arrived (a wire error, a thrown value, a connect_error) into a
   * SessionSocketError. Unknown shapes become INTERNAL with a generic message.
   */
  static from(value: unknown): SessionSocketError {
    if (value instanceof SessionSocketError) return value
    if (typeof value === 'object' && value !== null) {
      const v = value as { code?: unknown; message?: unknown; retryAfter?: unknown }
      if (isErrorCode(v.code)) {
        const message = typeof v.message === 'string' ? v.message : v.code
        const retryAfter = typeof v.retryAfter === 'number' && Number.isFinite(v.retryAfter) ? v.retryAfter : undefined
        return new SessionSocketError(v.code, message, retryAfter === undefined ? {} : { retryAfter })
      }
    }
    return new SessionSocketError('INTERNAL', 'internal error', { cause: value })
  }
}
