import { describe, expect, it } from 'vitest'
import { readConnectRefusal } from '../src/connect-refusal.js'

/** A connect_error as socket.io-client builds it from a CONNECT_ERROR packet. */
const refused = (message: string, data?: unknown) => Object.assign(new Error(message), data === undefined ? {} : { data })

describe('readConnectRefusal', () => {
  it('should stop with NOT_FOUND, naming the namespace, on a namespace the server does not have', () => {
    const refusal = readConnectRefusal(refused('Invalid namespace'), '/chat')
    expect(refusal).toMatchObject({ action: 'stop', error: { code: 'NOT_FOUND', message: 'the server has no namespace /chat' } })
  })

  it('should retry after the backoff on a network failure (no data)', () => {
    expect(readConnectRefusal(refused('xhr poll error'), '/')).toEqual({ action: 'retry', error: undefined, retryAfter: undefined, soon: false })
  })

  it('should retry a retryable refusal no sooner than its retryAfter', () => {
    const refusal = readConnectRefusal(refused('too many', { code: 'RATE_LIMITED', retryAfter: 4000 }), '/')
    expect(refusal).toMatchObject({ action: 'retry', error: { code: 'RATE_LIMITED' }, retryAfter: 4000, soon: false })
  })

  it('should connect again soon, not as an outage, while a sign-in cookie is on its way', () => {
    expect(readConnectRefusal(refused('pending', { code: 'SIGN_IN_PENDING', retryAfter: 200 }), '/')).toMatchObject({ action: 'retry', retryAfter: 200, soon: true })
    expect(readConnectRefusal(refused('pending', { code: 'SIGN_IN_PENDING' }), '/')).toMatchObject({ action: 'retry', retryAfter: 200, soon: true })
  })

  it('should end the tab as revoked when the server ended its session at connect', () => {
    expect(readConnectRefusal(refused('the session has ended', { code: 'SESSION_ENDED' }), '/')).toEqual({ action: 'end', reason: 'revoked' })
  })

  it("should stop on a refusal no retry changes, keeping the server's message", () => {
    const refusal = readConnectRefusal(refused('Origin http://evil.example is not allowed', { code: 'FORBIDDEN' }), '/')
    expect(refusal).toMatchObject({ action: 'stop', error: { code: 'FORBIDDEN', message: 'Origin http://evil.example is not allowed' } })
  })
})
