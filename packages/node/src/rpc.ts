import { randomUUID } from 'node:crypto'
import createDebug from 'debug'
import type { Socket } from 'socket.io'
import type { Session, SessionData } from 'express-session'
import { SessionSocketError, parseCall, type CallReply, type PayloadLimits } from '@session-socket/protocol'
import type { CallClaim, CallResults } from './link-store.js'
import { isThenable } from './is-thenable.js'
import type { SessionBridge } from './session-bridge.js'
import { SessionBatches, type SessionCallOutcome } from './session-batch.js'
import { noteSessionExpiry, sessionMayHaveExpired } from './session-expiry.js'
import type { SocketData } from './socket-data.js'
import { recordRateLimited, traceCall } from './telemetry.js'
import { UnsettledCalls } from './unsettled-calls.js'

const debug = createDebug('session-socket:rpc')

/** What a method handler gets besides its params. */
export interface MethodContext {
  /**
   * The HTTP session, reloaded from the store for this call and saved after it if changed (calls
   * of one session waiting behind a running one share one reload and one save, in call order).
   * After `ctx.session.regenerate()` it is the new session (as `req.session` is over HTTP), after
   * `destroy()` undefined. Undefined with `{ session: false }`.
   */
  session: (Session & Partial<SessionData>) | undefined
  sessionId: string
  tabId: string
  /**
   * This call's key (`tabId:callId`): the same on every resend of the call, to every server,
   * different for every other call. A resend is answered from the recorded reply, but a server
   * killed after the handler's effect and before the reply was recorded runs the call again on
   * resend: a handler whose effect lives in a database can make it idempotent with this key,
   * recorded in the effect's own transaction (a unique column, `INSERT … ON CONFLICT DO NOTHING`).
   *
   * @example
   * ss.method('order.place', (params, { callKey }) =>
   *   db.transaction(() => {
   *     const placed = db.prepare('INSERT INTO orders (call_key, sku) VALUES (?, ?) ON CONFLICT (call_key) DO NOTHING').run(callKey, params.sku)
   *     if (placed.changes === 1) db.prepare('UPDATE stock SET n = n - 1 WHERE sku = ?').run(params.sku)
   *     return db.prepare('SELECT id FROM orders WHERE call_key = ?').get(callKey)
   *   })(),
   * )
   */
  callKey: string
  socket: Socket
  /** Aborted when the server closes. */
  signal: AbortSignal
}

/** A method handler: return a JSON value or throw a SessionSocketError for a typed failure. */
export type MethodHandler<P = any, R = unknown> = (params: P, ctx: MethodContext) => R | Promise<R>

export interface MethodOptions {
  /**
   * Reload the session before the handler and save it after if changed. With `false` the
   * handler gets no session and the call reads none, except once the session's cookie expiry
   * (as the socket last read it) has passed: then the store says whether it expired. @default true
   */
  session?: boolean
}

interface MethodEntry {
  handler: MethodHandler
  options: Required<MethodOptions>
}

/** What the dispatcher needs from the server. */
export interface RpcEnvironment {
  /** Where calls are claimed and their replies kept (the server's link store). */
  links: CallResults
  sessions: SessionBridge
  limits: PayloadLimits
  /** How long a call's reply is remembered for a resend (ms). */
  resultTtl: number
  /** How long a started call is presumed running (ms); after that, a resend may run it again. */
  callLease: number
  /** Most calls one socket may have running at once. */
  maxInFlight: number
  /** Least time between two touches of one session by calls (ms). */
  touchInterval: number
  /** Longest a session-using call waits for the previous one of its session (ms). */
  sessionLockTimeout: number
  signal: AbortSignal
  now: () => number
  /** The session turned out to be gone: end its tabs. */
  onSessionGone: (sessionId: string) => void
  /** The session may have changed (e.g. a user signed in): refresh per-user rooms. */
  onSessionChanged: (socket: Socket, session: Session & Partial<SessionData>) => void
  /**
   * The handler called `session.regenerate()` (a sign-in over RPC): move the calling browser
   * to `toId` before the reply goes out. Resolves once the caller's token points at `toId`.
   */
  onRegenerated: (socket: Socket, fromId: string, toId: string) => Promise<void>
}

function fail(error: SessionSocketError): CallReply {
  return { ok: false, e: error.toWire() }
}

/**
 * An answer that asks the client to send the same call again later (the store was unavailable,
 * to the handler too): remembered, it would be the answer to that resend as well.
 */
function asksForResend(reply: CallReply): boolean {
  return !reply.ok && (reply.e.code === 'STORE_UNAVAILABLE' || reply.e.code === 'RATE_LIMITED' || reply.e.code === 'IN_PROGRESS')
}

function succeeded(result: unknown): CallReply {
  return { ok: true, r: result === undefined ? null : result }
}

function handlerFailed(err: unknown): CallReply {
  if (err instanceof SessionSocketError) return fail(err)
  // Never leak a stack or internals to the client: the log has the details.
  debug('method handler threw: %O', err)
  return fail(new SessionSocketError('INTERNAL', 'internal error'))
}

/**
 * An answer given before the handler ran (its session could not be loaded, or is gone): there
 * is nothing to remember, and the claim is released, so that a resend of the call runs it.
 * Recorded, a STORE_UNAVAILABLE would have answered every resend until the call timed out.
 */
class NotRun {
  constructor(readonly reply: CallReply) {}
}

/**
 * A call that ran but whose session could not be saved: the store may have taken the save
 * before it failed (a crash after the write) or not. Its reply waits with the claim until the
 * same session is saved again (the same data: saving it twice changes nothing), so that a resend
 * neither runs the handler again nor answers as if the change were kept when it was not.
 */
class Unsaved {
  constructor(
    readonly reply: CallReply,
    readonly save: () => Promise<void>,
  ) {}
}

const SESSION_NOT_SAVED: CallReply = fail(new SessionSocketError('STORE_UNAVAILABLE', 'the session could not be saved; send the call again', { retryAfter: 1000 }))

/** The answer for a session-using call, as the batch left it. */
function batchReply(outcome: SessionCallOutcome): CallReply | NotRun | Unsaved {
  switch (outcome.status) {
    case 'returned':
      return succeeded(outcome.value)
    case 'threw':
      return handlerFailed(outcome.error)
    case 'not-run':
      return new NotRun(fail(outcome.error))
    case 'unsaved':
      return new Unsaved(succeeded(outcome.value), outcome.save)
    case 'failed':
      return fail(outcome.error)
  }
}

const IN_PROGRESS: CallReply = fail(new SessionSocketError('IN_PROGRESS', 'this call is still running on another server', { retryAfter: 500 }))

/**
 * Runs RPC calls: validation, exactly-once by call id, session reload/save, typed errors.
 */
export class RpcDispatcher {
  readonly #methods = new Map<string, MethodEntry>()
  /** Calls running on this node, by `tabId:callId`: a resend joins the running one. */
  readonly #running = new Map<string, Promise<CallReply>>()
  readonly #env: RpcEnvironment
  /** Session-using calls, one reload and one save per batch of a session's waiting calls. */
  readonly #batches: SessionBatches
  /** Replies and claims the store failed to settle, written again until it does. */
  readonly #unsettled: UnsettledCalls
  /** This server's claim owner: a claim it took is its own again on a resend (see CallResults.claimCall). */
  readonly #owner = randomUUID()

  constructor(env: RpcEnvironment) {
    this.#env = env
    this.#batches = new SessionBatches(env)
    this.#unsettled = new UnsettledCalls({
      results: env.links,
      owner: this.#owner,
      resultTtl: env.resultTtl,
      callLease: env.callLease,
      now: env.now,
      signal: env.signal,
      isRunning: (key) => this.#running.has(key),
    })
  }

  add(name: string, handler: MethodHandler, options: MethodOptions = {}): void {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('method(name, handler): name must be a non-empty string')
    if (typeof handler !== 'function') throw new TypeError(`method('${name}', handler): handler must be a function`)
    if (this.#methods.has(name)) throw new Error(`method '${name}' is already registered; register each method once`)
    this.#methods.set(name, { handler, options: { session: options.session ?? true } })
  }

  /**
   * Handles one `ss:call` from a registered socket. An answer known at once (a refusal, or a
   * memory-store claim and a handler that returned a plain value) comes as a plain value, to be
   * sent in the same turn; else a promise of it.
   */
  dispatch(socket: Socket, raw: unknown, inFlight: { count: number }): CallReply | Promise<CallReply> {
    return traceCall(raw, this.#methods, () => this.#dispatch(socket, raw, inFlight))
  }

  #dispatch(socket: Socket, raw: unknown, inFlight: { count: number }): CallReply | Promise<CallReply> {
    let request
    try {
      request = parseCall(raw, this.#env.limits)
    } catch (err) {
      return fail(SessionSocketError.from(err))
    }
    const data = socket.data as SocketData
    const entry = this.#methods.get(request.m)
    if (!entry) return fail(new SessionSocketError('NOT_FOUND', `no method '${request.m}'`))
    const key = `${data.tabId}:${request.id}`
    const running = this.#running.get(key)
    if (running) return running
    if (inFlight.count >= this.#env.maxInFlight) {
      recordRateLimited('maxInFlight')
      return fail(new SessionSocketError('RATE_LIMITED', `more than ${this.#env.maxInFlight} calls in flight on this socket`, { retryAfter: 100 }))
    }
    const reply = this.#claimAndRun(socket, data, key, entry, request.p)
    // Answered already (a memory-store claim and a handler that returned a plain value): it
    // never was "in flight", and no resend can arrive before this reply is recorded.
    if (!(reply instanceof Promise)) return reply
    inFlight.count++
    const settled = (value: CallReply) => {
      inFlight.count--
      this.#running.delete(key)
      return value
    }
    const promise = reply.then(settled, (err: unknown) => settled(fail(SessionSocketError.from(err))))
    this.#running.set(key, promise)
    return promise
  }

  /**
   * Claims the call key, runs the handler if the claim is new, records the reply. Each step takes
   * a plain value or a promise: with a store that answers at once and a handler that returns a
   * plain value, the call is answered in this turn, with no promise of its own.
   */
  #claimAndRun(socket: Socket, data: SocketData, key: string, entry: MethodEntry, params: unknown): CallReply | Promise<CallReply> {
    // A call this node settled while the store could not take it: answered from its reply here.
    const resumed = this.#unsettled.size === 0 ? undefined : this.#unsettled.resume(key)
    if (resumed === undefined) return this.#claim(socket, data, key, entry, params)
    const go = (kept: { reply: CallReply } | undefined) => (kept ? kept.reply : this.#claim(socket, data, key, entry, params))
    return isThenable(resumed) ? resumed.then(go) : go(resumed)
  }

  #claim(socket: Socket, data: SocketData, key: string, entry: MethodEntry, params: unknown): CallReply | Promise<CallReply> {
    let claim: CallClaim | Promise<CallClaim>
    const { links, callLease, now } = this.#env
    const claimUntil = now() + callLease
    // The store may have taken a claim whose answer failed: this node (its owner) takes it back
    // on a resend, and gives it up as soon as the store answers again.
    const failed = (err: unknown) => {
      const error = SessionSocketError.from(err)
      if (error.code === 'STORE_UNAVAILABLE') this.#unsettled.keep(key, 'unclaim', claimUntil)
      return fail(error)
    }
    try {
      // A claim outlives its node only for the lease: a call whose server died mid-run is run
      // again on resend rather than answered IN_PROGRESS until the results memory forgets it.
      claim = links.claimCall(key, callLease, now(), this.#owner)
    } catch (err) {
      return failed(err)
    }
    if (!isThenable(claim)) return this.#runClaimed(socket, data, key, entry, params, claim, claimUntil)
    return Promise.resolve(claim).then((settled) => {
      // The store answers again: what it could not take before goes to it now.
      if (this.#unsettled.size > 0) this.#unsettled.storeAnswered()
      return this.#runClaimed(socket, data, key, entry, params, settled, claimUntil)
    }, failed)
  }

  #runClaimed(socket: Socket, data: SocketData, key: string, entry: MethodEntry, params: unknown, claim: CallClaim, claimUntil: number): CallReply | Promise<CallReply> {
    if (claim.state === 'done') return claim.reply
    if (claim.state === 'pending') return IN_PROGRESS
    const reply = this.#execute(socket, data, key, entry, params)
    return reply instanceof Promise ? reply.then((value) => this.#record(key, value, claimUntil)) : this.#record(key, reply, claimUntil)
  }

  /**
   * Keeps the reply of a call that ran, or releases the claim of one that did not (or whose
   * answer asks for a resend: remembered, it would answer every resend the same), and answers
   * once the store has done so: a resend that follows the answer finds the reply, or runs the
   * call, instead of being told IN_PROGRESS. A store that fails here does not hold the answer
   * back: the write is kept and tried again until the store takes it (unsettled-calls.ts).
   */
  #record(key: string, reply: CallReply | NotRun | Unsaved, claimUntil: number): CallReply | Promise<CallReply> {
    if (reply instanceof Unsaved) {
      // The claim stays this node's; the reply goes out once the session is saved again.
      this.#unsettled.keep(key, { save: reply.save, reply: reply.reply }, claimUntil)
      return SESSION_NOT_SAVED
    }
    const answer = reply instanceof NotRun ? reply.reply : reply
    const remembered = !(reply instanceof NotRun) && !asksForResend(reply)
    const { links, resultTtl, now } = this.#env
    const unrecorded = (err: unknown) => {
      // Not the call key: it holds the tab id.
      debug('could not remember a reply or release a claim, trying again later: %s', (err as Error).message)
      if (remembered) this.#unsettled.keep(key, { reply: answer }, now() + resultTtl)
      else this.#unsettled.keep(key, 'release', claimUntil)
      return answer
    }
    let stored: void | Promise<void>
    try {
      stored = remembered ? links.finishCall(key, answer, resultTtl, now()) : links.releaseCall(key)
    } catch (err) {
      return unrecorded(err)
    }
    if (!isThenable(stored)) return answer
    return Promise.resolve(stored).then(() => answer, unrecorded)
  }

  /** Runs a claimed call: in its session's turn if it uses the session, else at once. */
  #execute(socket: Socket, data: SocketData, key: string, entry: MethodEntry, params: unknown): CallReply | NotRun | Promise<CallReply | NotRun | Unsaved> {
    if (entry.options.session) {
      return this.#batches
        .call(socket, (current) => {
          // ctx.session follows regenerate() and destroy() as req.session does over HTTP, so a
          // sign-in can write the user into the new session after regenerating.
          const ctx = { sessionId: data.sessionId, tabId: data.tabId, callKey: key, socket, signal: this.#env.signal } as MethodContext
          Object.defineProperty(ctx, 'session', { get: current, enumerable: true })
          return entry.handler(params, ctx)
        })
        .then(batchReply)
    }
    // A call without the session still ends an expired one. The store is read only once the
    // expiry the socket last read (register, a reload) has passed: a call costs no read before.
    if (sessionMayHaveExpired(socket, this.#env.now())) {
      return this.#sessionGone(socket, data).then((gone) => gone ?? this.#runWithoutSession(socket, data, key, entry, params))
    }
    return this.#runWithoutSession(socket, data, key, entry, params)
  }

  /** The answer for a call whose session is gone from the store (or cannot be read), else undefined. */
  async #sessionGone(socket: Socket, data: SocketData): Promise<NotRun | undefined> {
    let stored
    try {
      stored = await this.#env.sessions.get(data.sessionId)
    } catch (err) {
      return new NotRun(fail(SessionSocketError.from(err)))
    }
    if (!stored) {
      this.#env.onSessionGone(data.sessionId)
      return new NotRun(fail(new SessionSocketError('SESSION_ENDED', 'the session has ended')))
    }
    noteSessionExpiry(socket, stored)
    return undefined
  }

  #runWithoutSession(socket: Socket, data: SocketData, key: string, entry: MethodEntry, params: unknown): CallReply | Promise<CallReply> {
    let result: unknown
    try {
      result = entry.handler(params, { session: undefined, sessionId: data.sessionId, tabId: data.tabId, callKey: key, socket, signal: this.#env.signal })
    } catch (err) {
      return handlerFailed(err)
    }
    // A handler that returns a plain value is answered without a promise.
    return isThenable(result) ? Promise.resolve(result).then(succeeded, handlerFailed) : succeeded(result)
  }
}
