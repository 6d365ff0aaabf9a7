import createDebug from 'debug'
import type { Socket } from 'socket.io'
import type { Session, SessionData } from 'express-session'
import { SessionSocketError, parseCall, type CallReply, type PayloadLimits } from '@session-socket/protocol'
import type { LinkStore } from './link-store.js'
import { sessionFingerprint, type SessionBridge } from './session-bridge.js'
import type { SocketData } from './socket-data.js'

const debug = createDebug('session-socket:rpc')

/** What a method handler gets besides its params. */
export interface MethodContext {
  /** The HTTP session, reloaded from the store for this call and saved after it if changed. Undefined with `{ session: false }`. */
  session: (Session & Partial<SessionData>) | undefined
  sessionId: string
  tabId: string
  socket: Socket
  /** Aborted when the server closes. */
  signal: AbortSignal
}

/** A method handler: return a JSON value or throw a SessionSocketError for a typed failure. */
export type MethodHandler<P = any, R = unknown> = (params: P, ctx: MethodContext) => R | Promise<R>

export interface MethodOptions {
  /** Reload the session before the handler and save it after if changed. @default true */
  session?: boolean
}

interface MethodEntry {
  handler: MethodHandler
  options: Required<MethodOptions>
}

/** What the dispatcher needs from the server. */
export interface RpcEnvironment {
  links: LinkStore
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
 * Runs RPC calls: validation, exactly-once by call id, session reload/save, typed errors.
 */
export class RpcDispatcher {
  readonly #methods = new Map<string, MethodEntry>()
  /** Calls running on this node, by `tabId:callId`: a resend joins the running one. */
  readonly #running = new Map<string, Promise<CallReply>>()
  readonly #env: RpcEnvironment
  /** The tail of each session's queue of session-using calls on this node. */
  readonly #sessionQueues = new Map<string, Promise<unknown>>()
  /** When calls last touched each session on this node, to keep touches cheap. */
  readonly #touched = new Map<string, number>()

  constructor(env: RpcEnvironment) {
    this.#env = env
  }

  add(name: string, handler: MethodHandler, options: MethodOptions = {}): void {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('method(name, handler): name must be a non-empty string')
    if (typeof handler !== 'function') throw new TypeError(`method('${name}', handler): handler must be a function`)
    if (this.#methods.has(name)) throw new Error(`method '${name}' is already registered; register each method once`)
    this.#methods.set(name, { handler, options: { session: options.session ?? true } })
  }

  /** Handles one `ss:call` from a registered socket. */
  async dispatch(socket: Socket, raw: unknown, inFlight: { count: number }): Promise<CallReply> {
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
      return fail(new SessionSocketError('RATE_LIMITED', `more than ${this.#env.maxInFlight} calls in flight on this socket`, { retryAfter: 100 }))
    }
    const promise = this.#claimAndRun(socket, data, key, entry, request.p)
    this.#running.set(key, promise)
    inFlight.count++
    try {
      return await promise
    } finally {
      inFlight.count--
      this.#running.delete(key)
    }
  }

  async #claimAndRun(socket: Socket, data: SocketData, key: string, entry: MethodEntry, params: unknown): Promise<CallReply> {
    const { links, resultTtl, callLease, now } = this.#env
    let claim
    try {
      // A claim outlives its node only for the lease: a call whose server died mid-run is run
      // again on resend rather than answered IN_PROGRESS until the results memory forgets it.
      claim = await links.claimCall(key, callLease, now())
    } catch (err) {
      return fail(SessionSocketError.from(err))
    }
    if (claim.state === 'done') return claim.reply
    if (claim.state === 'pending') {
      return fail(new SessionSocketError('IN_PROGRESS', 'this call is still running on another server', { retryAfter: 500 }))
    }
    const reply = entry.options.session
      ? await this.#serialised(data.sessionId, () => this.#run(socket, data, entry, params))
      : await this.#run(socket, data, entry, params)
    try {
      await links.finishCall(key, reply, resultTtl, now())
    } catch (err) {
      debug('could not remember reply of %s: %s', key, (err as Error).message)
    }
    return reply
  }

  async #run(socket: Socket, data: SocketData, entry: MethodEntry, params: unknown): Promise<CallReply> {
    const { sessions } = this.#env
    let session: (Session & Partial<SessionData>) | undefined
    let before = ''
    try {
      if (entry.options.session) {
        const loaded = await sessions.load(data.sessionId)
        if (!loaded) {
          this.#env.onSessionGone(data.sessionId)
          return fail(new SessionSocketError('SESSION_ENDED', 'the session has ended'))
        }
        session = loaded
        before = sessionFingerprint(loaded)
      }
    } catch (err) {
      return fail(SessionSocketError.from(err))
    }
    let result: unknown
    try {
      result = await entry.handler(params, { session, sessionId: data.sessionId, tabId: data.tabId, socket, signal: this.#env.signal })
    } catch (err) {
      if (err instanceof SessionSocketError) return fail(err)
      // Never leak a stack or internals to the client: the log has the details.
      debug('method handler threw: %O', err)
      return fail(new SessionSocketError('INTERNAL', 'internal error'))
    }
    // The handler may have destroyed, reloaded or regenerated ctx.session; save what it is now.
    const after = session && sessions.current(session)
    if (after && (after !== session || sessionFingerprint(after) !== before)) {
      try {
        // As express-session does at the end of a request: a changed session is also a used one.
        after.touch()
        await sessions.save(after)
        this.#touched.set(after.id, this.#env.now())
        if (after.id !== data.sessionId) await this.#env.onRegenerated(socket, data.sessionId, after.id)
        this.#env.onSessionChanged(socket, after)
      } catch (err) {
        return fail(SessionSocketError.from(err))
      }
    } else if (after) {
      this.#touch(after)
    }
    return { ok: true, r: result === undefined ? null : result }
  }

  /**
   * Runs the session-using calls of one session one after another on this node: each reloads
   * the session, so two at once would both read the same data and the last save would win.
   * (Across nodes they can still interleave, as concurrent HTTP requests of one session do.)
   */
  #serialised<T>(sessionId: string, run: () => Promise<T>): Promise<T> {
    const previous = this.#sessionQueues.get(sessionId)
    // A handler that never settles must not stall its session for good: wait a bounded time.
    let timer: ReturnType<typeof setTimeout> | undefined
    const turn = previous
      ? Promise.race([previous, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#env.sessionLockTimeout)))])
      : Promise.resolve()
    const result = turn.then(() => {
      clearTimeout(timer)
      return run()
    })
    const tail = result.then(
      () => undefined,
      () => undefined,
    )
    this.#sessionQueues.set(sessionId, tail)
    void tail.then(() => {
      if (this.#sessionQueues.get(sessionId) === tail) this.#sessionQueues.delete(sessionId)
    })
    return result
  }

  /** A call is activity, as an HTTP request is: keep the session from expiring under an active tab. */
  #touch(session: Session): void {
    const now = this.#env.now()
    const last = this.#touched.get(session.id)
    if (last !== undefined && now - last < this.#env.touchInterval) return
    this.#touched.set(session.id, now)
    if (this.#touched.size > 10_000) this.#touched.clear()
    this.#env.sessions.touch(session).catch((err: unknown) => debug('touch failed: %s', (err as Error).message))
  }
}
