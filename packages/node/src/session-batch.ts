import createDebug from 'debug'
import type { Socket } from 'socket.io'
import type { Session, SessionData } from 'express-session'
import { SessionSocketError } from '@session-socket/protocol'
import { isThenable } from './is-thenable.js'
import { sessionFingerprint, type SessionBridge } from './session-bridge.js'
import { noteSessionExpiry } from './session-expiry.js'
import type { SocketData } from './socket-data.js'

const debug = createDebug('session-socket:session-batch')

/** A session as a method handler sees it (`ctx.session`). */
export type LiveSession = Session & Partial<SessionData>

/**
 * Runs one call's handler. `current` is what `ctx.session` reads: the batch's session, or what
 * `regenerate()` / `destroy()` made of it.
 */
export type SessionCallRun = (current: () => LiveSession | undefined) => unknown

/** What became of a session-using call. */
export type SessionCallOutcome =
  /** The handler returned, and the session (if anything changed it) is stored. */
  | { status: 'returned'; value: unknown }
  /** The handler threw; what it wrote to the session was undone. */
  | { status: 'threw'; error: unknown }
  /** The session could not be loaded or is gone: the handler did not run. */
  | { status: 'not-run'; error: SessionSocketError }
  /** The handler returned but the store refused the save; `save` writes the same session again. */
  | { status: 'unsaved'; value: unknown; save: () => Promise<void> }
  /** The handler returned but its session could not be stored, and a resend cannot fix that. */
  | { status: 'failed'; error: SessionSocketError }

/** What the batches need from the server (the RPC dispatcher's environment has all of it). */
export interface SessionBatchesOptions {
  sessions: SessionBridge
  /** Longest a batch holds its session for the calls behind it, per step (load, handler, save) (ms). */
  sessionLockTimeout: number
  /** Least time between two touches of one session by calls (ms). */
  touchInterval: number
  now: () => number
  /** The session turned out to be gone: end its tabs. */
  onSessionGone: (sessionId: string) => void
  /** The session changed and was saved: refresh the socket's per-user rooms. */
  onSessionChanged: (socket: Socket, session: LiveSession) => void
  /** A handler regenerated the session: move the calling browser to `toId` before its reply goes out. */
  onRegenerated: (socket: Socket, fromId: string, toId: string) => Promise<void>
}

type Ran = { status: 'returned'; value: unknown } | { status: 'threw'; error: unknown }

interface Waiting {
  socket: Socket
  run: SessionCallRun
  done: (outcome: SessionCallOutcome) => void
}

/** A call that ran, with what its handler did; answered once the batch's save is done. */
interface RanCall {
  call: Waiting
  ran: Ran
}

type Entry = { call: Waiting } | { task: () => Promise<void>; resolve: () => void; reject: (err: unknown) => void }

const LATE = Symbol('late')

/** The session a call's socket is in now: a sign-in over RPC moves the caller's sockets to the new one. */
function sessionOf(call: Waiting): string {
  return (call.socket.data as SocketData).sessionId
}

function settle(value: PromiseLike<unknown>): Promise<Ran> {
  return Promise.resolve(value).then(
    (returned): Ran => ({ status: 'returned', value: returned }),
    (error: unknown): Ran => ({ status: 'threw', error }),
  )
}

/** The session's cookie fields before a handler, to undo what a failing handler did to them. */
function cookieCopy(session: LiveSession): { cookie: object; fields: object } | undefined {
  const cookie = session.cookie as object | undefined
  return cookie ? { cookie, fields: { ...cookie } } : undefined
}

/** Puts back the session data (as `sessionFingerprint` wrote it) and cookie a handler found. */
function restore(session: LiveSession, fingerprint: string, copy: ReturnType<typeof cookieCopy>): void {
  const target = session as unknown as Record<string, unknown>
  for (const key of Object.keys(target)) if (key !== 'cookie') delete target[key]
  Object.assign(target, JSON.parse(fingerprint))
  if (!copy) return
  target.cookie = copy.cookie
  const cookie = copy.cookie as Record<string, unknown>
  for (const key of Object.keys(cookie)) if (!(key in copy.fields)) delete cookie[key]
  Object.assign(cookie, copy.fields)
}

/**
 * Group commit for the session-using calls of one session on this node. The calls that wait
 * behind a running batch form the next one: ONE reload before it, then the handlers one at a
 * time in call order on the same session object (each sees what the ones before it wrote), then
 * ONE save, and only then the replies, so no call is answered before its write is stored. Two
 * batches of a session never overlap, so no update is lost as with a reload and save per call
 * in parallel. (Across nodes calls can still interleave, as concurrent HTTP requests do.)
 *
 * A handler that throws has its writes undone and the others' kept. A handler that regenerates,
 * destroys or reloads the session ends its batch there: the calls after it start a new batch
 * with a fresh load. A step (load, handler, save) that takes longer than `sessionLockTimeout`
 * stops holding the session for the calls behind it: a handler still running then has what it
 * wrote so far saved with the calls before it, and saves its session again when it settles.
 *
 * @example
 * const batches = new SessionBatches({ sessions, sessionLockTimeout: 5_000, touchInterval: 60_000, now: Date.now, onSessionGone, onSessionChanged, onRegenerated })
 * const outcome = await batches.call(socket, (current) => {
 *   current()!.count = (current()!.count ?? 0) + 1
 *   return current()!.count
 * })
 * // { status: 'returned', value: 1 }
 */
export class SessionBatches {
  readonly #options: SessionBatchesOptions
  /** The waiting calls and tasks of each session with a batch running, in arrival order. */
  readonly #queues = new Map<string, Entry[]>()
  /** When calls last touched each session on this node, to keep touches cheap. */
  readonly #touched = new Map<string, number>()

  constructor(options: SessionBatchesOptions) {
    this.#options = options
  }

  /** Runs a call's handler in the next batch of the socket's session. Never rejects. */
  call(socket: Socket, run: SessionCallRun): Promise<SessionCallOutcome> {
    return new Promise((done) => {
      const call = { socket, run, done }
      this.#enqueue(sessionOf(call), { call })
    })
  }

  /** Runs `task` between two batches of the session, alone (e.g. saving a session again). */
  exclusive(sessionId: string, task: () => Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => this.#enqueue(sessionId, { task, resolve, reject }))
  }

  #enqueue(sessionId: string, ...entries: Entry[]): void {
    const queue = this.#queues.get(sessionId)
    if (queue) {
      queue.push(...entries)
      return
    }
    const fresh = entries
    this.#queues.set(sessionId, fresh)
    void this.#drain(sessionId, fresh)
  }

  async #drain(sessionId: string, queue: Entry[]): Promise<void> {
    while (queue.length > 0) {
      const head = queue[0]!
      if ('task' in head) {
        queue.shift()
        // Held at most sessionLockTimeout too: a store that never answers must not stall the session.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.#options.sessionLockTimeout)
          void head.task().then(head.resolve, head.reject).finally(() => {
            clearTimeout(timer)
            resolve()
          })
        })
        continue
      }
      let size = 1
      while (size < queue.length && 'call' in queue[size]!) size++
      const calls = queue.splice(0, size).map((entry) => (entry as { call: Waiting }).call)
      const rest = await new Promise<Waiting[]>((resolve) => {
        let released = false
        const release = (left: Waiting[]) => {
          if (released) return
          released = true
          resolve(left)
        }
        this.#runBatch(sessionId, calls, release).catch((err: unknown) => {
          // A bug here must not stall the session: answer what is left and go on.
          debug('batch failed: %O', err)
          for (const call of calls) call.done({ status: 'failed', error: SessionSocketError.from(err) })
          release([])
        })
      })
      queue.unshift(...rest.map((call) => ({ call })))
      this.#follow(sessionId, queue)
    }
    this.#queues.delete(sessionId)
  }

  /**
   * Moves the waiting calls whose sockets a sign-in just moved to another session into that
   * session's queue, in order: they run on the session their browser is in now, as they did when
   * each call read the socket's session id when its turn came. Right after the batch that moved
   * them, before any call of the new session can have arrived.
   */
  #follow(sessionId: string, queue: Entry[]): void {
    let moved: Map<string, Entry[]> | undefined
    for (let i = 0; i < queue.length; i++) {
      const entry = queue[i]!
      if (!('call' in entry) || sessionOf(entry.call) === sessionId) continue
      queue.splice(i--, 1)
      moved ??= new Map()
      const to = moved.get(sessionOf(entry.call))
      if (to) to.push(entry)
      else moved.set(sessionOf(entry.call), [entry])
    }
    // All at once: the moved calls form one batch there.
    if (moved) for (const [to, entries] of moved) this.#enqueue(to, ...entries)
  }

  /**
   * One load, the handlers in order, one save. `release` hands the session to the next batch
   * with the calls this one did not run; it is called once, after this batch's save (or when a
   * step took longer than sessionLockTimeout).
   */
  async #runBatch(sessionId: string, calls: Waiting[], release: (rest: Waiting[]) => void): Promise<void> {
    const { sessions } = this.#options
    let loaded: LiveSession | null
    try {
      loaded = await this.#holding(sessions.load(sessionId), () => release([]))
    } catch (err) {
      release([])
      for (const call of calls) call.done({ status: 'not-run', error: SessionSocketError.from(err) })
      return
    }
    if (!loaded) {
      release([])
      this.#options.onSessionGone(sessionId)
      for (const call of calls) call.done({ status: 'not-run', error: new SessionSocketError('SESSION_ENDED', 'the session has ended') })
      return
    }
    const session = loaded
    for (const call of calls) noteSessionExpiry(call.socket, session)
    const current = () => sessions.current(session)
    const atLoad = sessionFingerprint(session)
    this.#flushBeforeReload(session, atLoad)
    const done: RanCall[] = []
    let before = atLoad
    for (let i = 0; i < calls.length; i++) {
      const call = calls[i]!
      const cookie = cookieCopy(session)
      let ran: Ran | typeof LATE
      let settling: Promise<Ran> | undefined
      try {
        const value = call.run(current)
        if (isThenable(value)) {
          settling = settle(value)
          ran = await this.#within(settling)
        } else {
          ran = { status: 'returned', value }
        }
      } catch (error) {
        ran = { status: 'threw', error }
      }
      const rest = () => release(calls.slice(i + 1))
      if (ran === LATE) {
        // The calls before it are saved with the batch's object, unless the handler replaced it.
        if (current() === session) await this.#holding(this.#save(sessionId, session, atLoad, done), rest)
        else this.#answer(done)
        rest()
        const mark = current() ? sessionFingerprint(current()!) : ''
        const late = await settling!
        if (late.status === 'threw') this.#answer([{ call, ran: late }])
        else await this.#save(sessionId, session, mark, [{ call, ran: late }])
        return
      }
      const replaced = current() !== session
      if (ran.status === 'threw' && !replaced) restore(session, before, cookie)
      done.push({ call, ran })
      if (replaced) {
        // regenerate(), destroy() or reload(): the calls after this one load the session anew.
        // A handler that threw after replacing it saves nothing, as before batching.
        if (ran.status === 'threw') this.#answer(done)
        else await this.#holding(this.#save(sessionId, session, atLoad, done), rest)
        rest()
        return
      }
      if (ran.status === 'returned') before = sessionFingerprint(session)
    }
    await this.#holding(this.#save(sessionId, session, atLoad, done, before), () => release([]))
    release([])
  }

  /**
   * Saves what the session became if it changed since `since` (the fingerprint at load), or
   * touches it, then answers the calls: none is answered ok before its write is stored.
   * `now`: the session's fingerprint as it is, when known.
   */
  async #save(sessionId: string, session: LiveSession, since: string, done: RanCall[], now?: string): Promise<void> {
    const { sessions } = this.#options
    const after = sessions.current(session)
    if (!after) return this.#answer(done)
    if (after === session && (now ?? sessionFingerprint(after)) === since) {
      this.#touch(after)
      return this.#answer(done)
    }
    const sockets = new Set(done.map(({ call }) => call.socket))
    try {
      // As express-session does at the end of a request: a changed session is also a used one.
      after.touch()
      await sessions.save(after)
      this.#noteTouched(after.id, this.#options.now())
      if (after.id !== sessionId) await this.#options.onRegenerated(done.at(-1)!.call.socket, sessionId, after.id)
      for (const socket of sockets) this.#options.onSessionChanged(socket, after)
    } catch (err) {
      const error = SessionSocketError.from(err)
      const save = error.code === 'STORE_UNAVAILABLE' && after.id === sessionId ? this.#saveAgain(sessionId, after, sockets) : undefined
      for (const { call, ran } of done) {
        if (ran.status === 'threw') call.done(ran)
        else call.done(save ? { status: 'unsaved', value: ran.value, save } : { status: 'failed', error })
      }
      return
    }
    this.#answer(done)
  }

  #answer(done: RanCall[]): void {
    for (const { call, ran } of done) call.done(ran)
  }

  /** The save a resend waits for, once for all the batch's calls, in the session's turn. */
  #saveAgain(sessionId: string, session: LiveSession, sockets: Set<Socket>): () => Promise<void> {
    let saving: Promise<void> | undefined
    return () =>
      (saving ??= this.exclusive(sessionId, async () => {
        await this.#options.sessions.save(session)
        for (const socket of sockets) this.#options.onSessionChanged(socket, session)
      }).catch((err: unknown) => {
        saving = undefined
        throw err
      }))
  }

  /**
   * A handler's `ctx.session.reload()` reads the store, which has not got the writes of the
   * calls before it in the batch yet: those are saved first.
   */
  #flushBeforeReload(session: LiveSession, atLoad: string): void {
    const reload = session.reload
    const sessions = this.#options.sessions
    Object.defineProperty(session, 'reload', {
      configurable: true,
      writable: true,
      value(callback: (err?: unknown) => void) {
        if (sessionFingerprint(session) === atLoad) return reload.call(session, callback)
        sessions.save(session).then(() => reload.call(session, callback), callback)
        return session
      },
    })
  }

  /** Waits for `promise`; `late` runs if it takes longer than sessionLockTimeout. */
  async #holding<T>(promise: Promise<T>, late: () => void): Promise<T> {
    const timer = setTimeout(late, this.#options.sessionLockTimeout)
    try {
      return await promise
    } finally {
      clearTimeout(timer)
    }
  }

  /** The handler's outcome, or LATE once it has run for sessionLockTimeout. */
  async #within(settling: Promise<Ran>): Promise<Ran | typeof LATE> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const late = new Promise<typeof LATE>((resolve) => (timer = setTimeout(resolve, this.#options.sessionLockTimeout, LATE)))
    try {
      return await Promise.race([settling, late])
    } finally {
      clearTimeout(timer)
    }
  }

  /** A call is activity, as an HTTP request is: keep the session from expiring under an active tab. */
  #touch(session: Session): void {
    const now = this.#options.now()
    const last = this.#touched.get(session.id)
    if (last !== undefined && now - last < this.#options.touchInterval) return
    this.#noteTouched(session.id, now)
    this.#options.sessions.touch(session).catch((err: unknown) => debug('touch failed: %s', (err as Error).message))
  }

  /** Bounded: a save notes its session too, and a server whose calls always save must not grow it for good. */
  #noteTouched(sessionId: string, now: number): void {
    if (this.#touched.size >= 10_000 && !this.#touched.has(sessionId)) this.#touched.clear()
    this.#touched.set(sessionId, now)
  }
}
