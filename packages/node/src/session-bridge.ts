import type { IncomingMessage, ServerResponse } from 'node:http'
import createDebug from 'debug'
import type { Session, SessionData, Store } from 'express-session'
import { SessionSocketError } from '@session-socket/protocol'
import type { UserOf } from './users.js'

const debug = createDebug('session-socket:session-bridge')

/** An express-session middleware, as returned by `session({...})`. */
export type SessionMiddleware = (req: any, res: any, next: (err?: unknown) => void) => void

/** The request-like object a Session is bound to: express-session reads these two fields. */
interface SessionCarrier {
  sessionID: string
  sessionStore: Store
  session?: Session & Partial<SessionData>
}

export interface SessionBridgeEvents {
  /** A session was destroyed over HTTP (logout) or by the app. */
  destroyed: (sessionId: string) => void
  /**
   * `session.regenerate()` replaced `fromId` by `toId` in an HTTP request; `done` resolves once
   * the response that carries the new cookie is sent. Not called for a session object that
   * `load()` made (a method handler's `ctx.session`): the RPC dispatcher handles that one.
   */
  regenerated: (fromId: string, toId: string, done: Promise<void>, users: RegeneratedUsers) => void
}

/**
 * Who the regenerated session belonged to, as `identify` names them (undefined: no user, or no
 * `identify`), so that a regenerate that drops or changes the user (passport's `req.logout()`,
 * a sign-in as someone else) counts as a sign-out.
 */
export interface RegeneratedUsers {
  /** The user of the session when the request loaded it (before the app changed anything). */
  before: string | undefined
  /** The user of the new session, read when called (once the response is sent, the app has filled it). */
  after(): string | undefined
}

function storeError(cause: unknown): SessionSocketError {
  return new SessionSocketError('STORE_UNAVAILABLE', 'session store unavailable', { retryAfter: 1000, cause })
}

/**
 * Everything session-socket does with express-session outside an HTTP request: find the
 * store, load, save and check sessions by id, and hear about destroy and regenerate.
 */
export class SessionBridge {
  readonly middleware: SessionMiddleware
  #store: Store | undefined
  #events: SessionBridgeEvents
  readonly #regenerating = new Set<string>()
  readonly #carriers = new WeakMap<Session, SessionCarrier>()
  /** The carriers `load()` made: a regenerate on one of them happens in a method handler. */
  readonly #loaded = new WeakSet<object>()
  /** The user of each request's session as express-session loaded it (`identify` at load). */
  readonly #userAtLoad = new WeakMap<object, string | undefined>()
  readonly #identify: UserOf | undefined

  constructor(middleware: SessionMiddleware, events: SessionBridgeEvents, store?: Store, identify?: UserOf) {
    this.middleware = middleware
    this.#events = events
    this.#identify = identify
    if (store) this.adopt(store)
    else this.#discover()
  }

  get store(): Store | undefined {
    return this.#store
  }

  /**
   * express-session sets `req.sessionStore` synchronously before it reads the cookie, and
   * creates a new session without touching the store when no cookie came. Running it once on
   * an empty request therefore tells us the store at start-up, before any logout can happen.
   */
  #discover(): void {
    const req = { url: '/', originalUrl: '/', method: 'GET', headers: {} as Record<string, string> } as unknown as IncomingMessage & { sessionStore?: Store }
    const res = { getHeader() {}, setHeader() {}, writeHead() {}, end() {} } as unknown as ServerResponse
    try {
      this.middleware(req, res, () => {})
    } catch (err) {
      debug('store discovery failed: %s', (err as Error).message)
    }
    if (req.sessionStore) this.adopt(req.sessionStore)
  }

  /**
   * Takes the store seen on a request (first one wins). Wraps its `destroy` and `regenerate`
   * on this instance only, so that `req.session.destroy()` (logout) and
   * `req.session.regenerate()` (login) reach session-socket on whichever node they run.
   */
  adopt(store: Store): void {
    if (this.#store) return
    this.#store = store
    const originalDestroy = store.destroy
    const originalRegenerate = store.regenerate
    const originalCreateSession = store.createSession
    const regenerating = this.#regenerating
    const loaded = this.#loaded
    const events = this.#events
    const identify = this.#identify
    const userAtLoad = this.#userAtLoad
    // express-session builds req.session from the stored data here. The user is read now: by the
    // time a logout regenerates, passport has already deleted it from the session (and saved that).
    store.createSession = function createSession(this: Store, req: any, data: SessionData) {
      if (identify && !loaded.has(req) && !userAtLoad.has(req)) userAtLoad.set(req, identify(data))
      return originalCreateSession.call(this, req, data)
    } as Store['createSession']
    store.destroy = function destroy(this: Store, sid: string, callback?: (err?: unknown) => void) {
      return originalDestroy.call(this, sid, (err?: unknown) => {
        if (!err && !regenerating.has(sid)) events.destroyed(sid)
        callback?.(err)
      })
    } as Store['destroy']
    store.regenerate = function regenerate(this: Store, req: any, callback: (err?: unknown) => void) {
      const fromId: string = req.sessionID
      regenerating.add(fromId)
      return originalRegenerate.call(this, req, (err?: unknown) => {
        regenerating.delete(fromId)
        if (!err && !loaded.has(req)) {
          // The new cookie only reaches the browser with this request's response: tabs
          // told to rejoin before that would still send the old cookie.
          const res: ServerResponse | undefined = req.res
          const done = res && !res.writableFinished
            ? new Promise<void>((resolve) => {
                res.once('finish', () => resolve())
                res.once('close', () => resolve())
              })
            : Promise.resolve()
          const before = userAtLoad.get(req)
          events.regenerated(fromId, req.sessionID, done, {
            before,
            after: () => (identify && req.session ? identify(req.session) : undefined),
          })
        }
        callback(err)
      })
    } as Store['regenerate']
    debug('session store adopted')
  }

  #requireStore(): Store {
    if (!this.#store) {
      throw new SessionSocketError('STORE_UNAVAILABLE', 'the express-session store is not known yet; pass it as the sessionStore option', { retryAfter: 1000 })
    }
    return this.#store
  }

  /** The stored data of a session, or null if it does not exist (expired, destroyed). */
  get(sessionId: string): Promise<SessionData | null> {
    const store = this.#requireStore()
    return new Promise((resolve, reject) => {
      try {
        store.get(sessionId, (err, data) => (err ? reject(storeError(err)) : resolve(data ?? null)))
      } catch (err) {
        reject(storeError(err))
      }
    })
  }

  /**
   * A live Session object for `sessionId`, as `req.session` would be in an HTTP handler:
   * `save()`, `reload()`, `destroy()`, `regenerate()` all work. Null if the session is gone.
   */
  async load(sessionId: string): Promise<(Session & Partial<SessionData>) | null> {
    const store = this.#requireStore()
    const data = await this.get(sessionId)
    if (!data) return null
    const carrier: SessionCarrier = { sessionID: sessionId, sessionStore: store }
    const session = store.createSession(carrier as any, data) as Session & Partial<SessionData>
    this.#carriers.set(session, carrier)
    this.#loaded.add(carrier)
    return session
  }

  /**
   * The session object that a `load()`ed session has become: itself, a reloaded or
   * regenerated copy, or undefined once `destroy()` ran (express-session deletes it from its request).
   */
  current(session: Session): (Session & Partial<SessionData>) | undefined {
    const carrier = this.#carriers.get(session)
    return carrier ? carrier.session : session
  }

  /** Saves a session object created by `load` (or `req.session`). */
  save(session: Session): Promise<void> {
    return new Promise((resolve, reject) => {
      try {
        session.save((err) => (err ? reject(storeError(err)) : resolve()))
      } catch (err) {
        reject(storeError(err))
      }
    })
  }

  /**
   * Resets the session's expiry as an HTTP request would (express-session touches on every
   * request): `session.touch()` then the store's `touch`, or `set` if the store has none.
   */
  touch(session: Session): Promise<void> {
    const store = this.#requireStore()
    session.touch()
    return new Promise((resolve, reject) => {
      const done = (err?: unknown) => (err ? reject(storeError(err)) : resolve())
      try {
        if (typeof store.touch === 'function') store.touch(session.id, session as unknown as SessionData, done)
        else store.set(session.id, session as unknown as SessionData, done)
      } catch (err) {
        reject(storeError(err))
      }
    })
  }

  /** Destroys a session in the store (and so, through the wrapper, ends its tabs). */
  destroy(sessionId: string): Promise<void> {
    const store = this.#requireStore()
    return new Promise((resolve, reject) => {
      try {
        store.destroy(sessionId, (err) => (err ? reject(storeError(err)) : resolve()))
      } catch (err) {
        reject(storeError(err))
      }
    })
  }
}

/** A session's data as compared before and after a handler, cookie left out (it changes on touch). */
export function sessionFingerprint(session: Session): string {
  // A copy without the cookie rather than a replacer: a replacer function is called for every
  // key at every depth, and this runs after every session-using handler.
  const { cookie: _cookie, ...data } = session as Session & Record<string, unknown>
  return JSON.stringify(data)
}
