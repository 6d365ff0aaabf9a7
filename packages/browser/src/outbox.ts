import type { Socket } from 'socket.io-client'
import { nanoid } from 'nanoid'
import { EVENTS, SessionSocketError, type CallReply } from '@session-socket/protocol'
import type { CallOptions } from './options.js'
import { CALL_RETRY_DELAY, RETRIED_CALL_CODES } from './retry-policy.js'

/** One call waiting for its answer. */
interface PendingCall {
  readonly id: string
  readonly method: string
  readonly params: unknown
  /** The call's timeout (ms), for the TIMEOUT message. */
  readonly timeout: number
  /** When it fails with TIMEOUT, on the `performance.now()` clock; Infinity for never. */
  readonly due: number
  /**
   * Bumped on every send and when the call settles, so an answer to an earlier send (or a retry
   * planned for it) is ignored.
   */
  attempt: number
  /** Sent on the current connection (unset until the first send). */
  sent?: boolean
  resolve(value: unknown): void
  reject(error: SessionSocketError): void
}

/**
 * The calls of one client in the order they were made: waiting for a connection, or sent and
 * waiting for their answer. Bounded, so a long outage cannot grow it without limit.
 */
export interface Outbox {
  /**
   * Queues a call and sends it at once if the client is ready. The promise settles with the
   * answer, or fails with TIMEOUT after `timeout` ms, CANCELLED when `options.signal` aborts,
   * OUTBOX_FULL when the outbox is full, BAD_REQUEST when a call with `options.id` waits already.
   */
  add(method: string, params: unknown, timeout: number, options: CallOptions): Promise<unknown>
  /** Sends the calls not sent on the current connection, oldest first (the client is ready). */
  flush(): void
  /** The connection dropped: everything must be sent again (same ids, answered once by the server). */
  markAllUnsent(): void
  /** Fails every waiting call with `error`. */
  rejectAll(error: SessionSocketError): void
}

/**
 * Creates the outbox of one client: at most `limit` calls, sent over `socket` while `ready()`.
 * A call the server asks to retry (IN_PROGRESS, RATE_LIMITED…) is sent again with the same id,
 * which the server runs at most once, until its timeout.
 *
 * @example
 * const outbox = createOutbox(100, socket, () => state.status === 'ready')
 * const result = await outbox.add('counter.increment', { by: 1 }, 30_000, {})
 */
export function createOutbox(limit: number, socket: Socket, ready: () => boolean): Outbox {
  /**
   * Oldest first. An array, not a Map by id: answers come mostly in order, so the call is near
   * the front, and a Map churning one entry per call keeps its old tables (and the calls they
   * held) alive into the old generation.
   */
  const calls: PendingCall[] = []
  /**
   * Call ids are this random prefix plus a counter: unique per tab, and across reloads (the
   * server remembers replies by id), with one random draw per client instead of one per call.
   */
  const prefix = nanoid(10)
  let next = 0
  /**
   * One timer for all calls instead of one per call, due at the earliest deadline it was armed
   * for. Calls with the default timeout have ever later deadlines, so it is re-armed only when
   * it fires or a call with a shorter timeout comes.
   */
  let timer: ReturnType<typeof setTimeout> | undefined
  let armedFor = Infinity

  /** Sets the timer for `due` (none for Infinity). */
  const arm = (due: number) => {
    clearTimeout(timer)
    armedFor = due
    // A delay over 2^31 - 1 ms would fire at once: wait 2e9 ms at most and look again.
    if (due < Infinity) timer = setTimeout(expire, Math.min(due - performance.now(), 2e9))
  }
  /** Fails the calls past their deadline with TIMEOUT and arms the timer for the next one. */
  const expire = () => {
    const now = performance.now()
    let soonest = Infinity
    for (const call of [...calls]) {
      if (call.due <= now) settle(call, new SessionSocketError('TIMEOUT', `'${call.method}' got no answer in ${call.timeout} ms`))
      else soonest = Math.min(soonest, call.due)
    }
    arm(soonest)
  }
  /** Answers a call that is still waiting: takes it out, then rejects it with `error`, or resolves it with `value`. */
  const settle = (call: PendingCall, error: SessionSocketError | undefined, value?: unknown) => {
    const at = calls.indexOf(call)
    if (at < 0) return
    calls.splice(at, 1)
    call.attempt++
    if (error) call.reject(error)
    else call.resolve(value)
  }
  const send = (call: PendingCall) => {
    if (!socket.connected) return
    call.sent = true
    const attempt = ++call.attempt
    socket.emit(EVENTS.CALL, { id: call.id, m: call.method, p: call.params }, (reply: CallReply) => {
      // An answer to an earlier send; one to a call no longer waiting is dropped by settle.
      if (call.attempt !== attempt) return
      if (reply.ok) return settle(call, undefined, reply.r)
      const error = SessionSocketError.from(reply.e)
      if (!RETRIED_CALL_CODES.includes(error.code)) return settle(call, error)
      call.sent = false
      setTimeout(() => {
        // Not if sent again since (a reconnect) or settled (timed out, cancelled).
        if (call.attempt === attempt && ready()) send(call)
      }, error.retryAfter ?? CALL_RETRY_DELAY)
    })
  }

  return {
    add(method, params, timeout, { id, signal }) {
      if (signal?.aborted) return Promise.reject(new SessionSocketError('CANCELLED', 'the call was aborted'))
      let call: PendingCall | undefined
      const promise = new Promise<unknown>((resolve, reject) => {
        // Thrown here, OUTBOX_FULL or BAD_REQUEST rejects the promise.
        if (calls.length >= limit) {
          throw new SessionSocketError('OUTBOX_FULL', `${limit} calls are already waiting; raise maxQueue or wait for the connection`)
        }
        // Only an id given by the caller can be one already waiting.
        if (id === undefined) id = prefix + (next++).toString(36)
        else if (calls.some((waiting) => waiting.id === id)) throw new SessionSocketError('BAD_REQUEST', `a call with id ${id} is already waiting`)
        const due = performance.now() + timeout
        call = { id, method, params, timeout, due, attempt: 0, resolve, reject }
        calls.push(call)
        if (due < armedFor) arm(due)
      })
      if (call && signal) {
        const onAbort = () => settle(call!, new SessionSocketError('CANCELLED', 'the call was aborted'))
        // The listener goes when the call settles, however: a long-lived signal must not collect them.
        const off = () => signal.removeEventListener('abort', onAbort)
        signal.addEventListener('abort', onAbort)
        promise.then(off, off)
      }
      if (call && ready()) send(call)
      return promise
    },
    flush() {
      for (const call of calls.filter((waiting) => !waiting.sent)) send(call)
    },
    markAllUnsent() {
      for (const call of calls) call.sent = false
    },
    rejectAll(error) {
      arm(Infinity)
      for (const call of [...calls]) settle(call, error)
    },
  }
}
