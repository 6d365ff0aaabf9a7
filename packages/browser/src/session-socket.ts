import { io, type Socket } from 'socket.io-client'
import {
  EVENTS,
  PROTOCOL_VERSION,
  SessionSocketError,
  type AnyEvents,
  type AppEventMap,
  type EndReason,
  type EndedEvent,
  type EventMap,
  type MethodMap,
  type MethodParams,
  type MethodResult,
  type RegisterReply,
} from '@session-socket/protocol'
import { isTerminal, type ConnectionState, type Status } from './connection-state.js'
import { readConnectRefusal } from './connect-refusal.js'
import { requestRestoreCode, restoreAndCheckCookie, restoreCookie, type CookieRestoreResult } from './cookie-restore.js'
import { createDurableEvents, type DurableEvents } from './durable-events.js'
import { createEmitter, type Emitter, type Listener, type SessionSocketEvents } from './emitter.js'
import { createLinkToken, type LinkToken } from './link-token.js'
import { resolveOptions, type CallOptions, type ResolvedOptions, type SessionSocketOptions } from './options.js'
import { createOutbox, type Outbox } from './outbox.js'
import type { PageEvent } from './page-lifecycle.js'
import { HIDDEN_MIN_DELAY, HIDDEN_SLOWDOWN } from './retry-policy.js'
import { mintTabId } from './tab-id.js'

/**
 * One tab's connection to its HTTP session: registers on every (re)connect, queues calls
 * while not ready and sends them once, in order, after register. `M` types `call`, `AppEvents`
 * (the map the server's `createSessionSocketServer<AppEvents>` takes) types `on`.
 */
export class SessionSocket<M extends object = MethodMap, AppEvents extends EventMap & AppEventMap<AppEvents> = AnyEvents> {
  readonly #options: ResolvedOptions
  readonly #outbox: Outbox
  readonly #socket: Socket
  readonly #events: Emitter
  readonly #durable: DurableEvents
  readonly #token: LinkToken
  #state: ConnectionState = { status: 'connecting' }
  #tabId = ''
  readonly #tabIdReady: Promise<void>
  #unsubscribePage: (() => void) | undefined
  /** Disconnected on pagehide; reconnects on pageshow. */
  #suspended = false
  #attempt = 0
  #retryTimer: ReturnType<typeof setTimeout> | undefined
  #wasReady = false
  /** Bumped on every connection, so late work of an earlier connection is dropped. */
  #generation = 0

  constructor(options: SessionSocketOptions = {}) {
    const resolved = (this.#options = resolveOptions(options, (cb) => {
      this.#setState({ status: 'registering' })
      void this.#registerRequest().then(cb)
    }))
    this.#events = createEmitter(resolved.log)
    this.#token = createLinkToken(resolved.tokenStorage, resolved.locks, resolved.log)
    this.#tabIdReady = Promise.resolve(resolved.tabIdStorage.get()).then(
      (stored) => this.#adoptTabId(stored),
      (err: unknown) => {
        resolved.log('warn', 'tab id storage failed; using a new tab id', err)
        this.#adoptTabId(null)
      },
    )
    this.#socket = options.url === undefined ? io(resolved.socketOptions) : io(options.url, resolved.socketOptions)
    this.#outbox = createOutbox(resolved.maxQueue, this.#socket, () => this.#state.status === 'ready')
    this.#durable = createDurableEvents(this.#socket, this.#events.emitApp, (gap) => this.#events.emit('gap', gap))
    this.#wire()
    if (options.autoConnect !== false) this.connect()
  }

  #adoptTabId(stored: string | null): void {
    // A tab id set since (by a register reply) wins over what storage said.
    if (this.#tabId !== '') return
    this.#tabId = stored ?? mintTabId()
    if (stored === null) this.#options.tabIdStorage.set(this.#tabId)
  }

  /**
   * The register payload, read afresh for every connection. Without a token, the tab takes
   * the browser-wide mint lock and reads again: a tab that opened at the same moment may have
   * just stored one.
   */
  async #registerRequest(): Promise<{ v: number; token: string | null; tabId: string; seq?: number }> {
    await this.#tabIdReady
    const token = await this.#token.read()
    // seq undefined (a fresh page) is left out by JSON on the wire.
    return { v: PROTOCOL_VERSION, token, tabId: this.#tabId, seq: this.#durable.seq }
  }

  #onPage(event: PageEvent): void {
    if (isTerminal(this.#state.status)) return
    if (event === 'pagehide') {
      // Close cleanly: the server frees the tab at once, and an open socket would keep the
      // page out of the back/forward cache.
      this.#suspended = true
      clearTimeout(this.#retryTimer)
      this.#socket.disconnect()
      this.#setState({ status: 'offline', attempt: 0, retryIn: 0 })
      return
    }
    if (event === 'pageshow') this.#suspended = false
    if ((event === 'online' || event === 'visible' || event === 'pageshow') && !this.#socket.connected && !this.#suspended) {
      // The network or the user is back: try now rather than at the end of the backoff.
      this.#attempt = 0
      this.connect()
    }
  }

  /** The current status. */
  get status(): Status {
    return this.#state.status
  }

  /** The current state, with its details. The same object until the state changes. */
  get state(): ConnectionState {
    return this.#state
  }

  /** This tab's id (may change once, if the server finds it taken by another session). */
  get tabId(): string {
    return this.#tabId
  }

  /** Set by `createDurableCalls(s)`: where `call(…, { durable: true })` goes. */
  durableCalls: { call(method: string, params: unknown, options: CallOptions): Promise<any> } | undefined

  /** The underlying socket.io-client socket, for application events and advanced use. */
  get socket(): Socket {
    return this.#socket
  }

  /** Opens the connection (only needed with `autoConnect: false` or after `closed`). */
  connect(): void {
    if (this.#state.status === 'ended') return
    if (this.#state.status === 'closed') this.#state = { status: 'connecting' }
    this.#unsubscribePage ??= this.#options.page?.subscribe((event) => this.#onPage(event))
    if (this.#socket.connected) return
    clearTimeout(this.#retryTimer)
    this.#setState({ status: 'connecting' })
    this.#socket.connect()
  }

  /**
   * Calls a server method. Waits while not ready (bounded queue), sends once registered,
   * and is answered once even if the connection drops after sending.
   *
   * @example
   * const { value } = await s.call('counter.increment', { by: 1 })
   */
  call<K extends keyof M & string>(method: K, params?: MethodParams<M, K>, options: CallOptions = {}): Promise<MethodResult<M, K>> {
    if (typeof method !== 'string' || method.length === 0) throw new TypeError('call(method, params): method must be a non-empty string')
    if (options.id !== undefined && !/^[\w-]{1,64}$/.test(options.id)) throw new TypeError('call(method, params, { id }): id must be 1-64 characters of [A-Za-z0-9_-]')
    if (options.durable) {
      if (!this.durableCalls) throw new TypeError("call(…, { durable: true }) needs createDurableCalls(s) from '@session-socket/browser/durable'")
      return this.durableCalls.call(method, params, { ...options, durable: false })
    }
    if (this.#state.status === 'ended') return Promise.reject(new SessionSocketError('SESSION_ENDED', `the session has ended (${this.#state.reason})`))
    if (this.#state.status === 'closed') return Promise.reject(new SessionSocketError('CLOSED', 'this client is closed'))
    return this.#outbox.add(method, params, options.timeout ?? this.#options.callTimeout, options) as Promise<MethodResult<M, K>>
  }

  /** This tab's id once read from its storage (a duplicated tab's new id included). */
  async whenTabId(): Promise<string> {
    await this.#tabIdReady
    return this.#tabId
  }

  /**
   * Listens to a status change, `ready`, `ended`, `gap`, or an application event the server
   * emits (typed by `AppEvents`). Returns a function that removes the listener.
   *
   * @example
   * const off = s.on('status', (state) => render(state.status))
   */
  on<E extends keyof SessionSocketEvents>(event: E, listener: SessionSocketEvents[E]): () => void
  on<E extends keyof AppEvents & string>(event: E, listener: AppEvents[E]): () => void
  on(event: string, listener: Listener): () => void {
    return this.#events.on(event, listener)
  }

  /** Closes the connection for good; waiting calls fail with CLOSED. */
  close(): void {
    if (this.#state.status === 'closed') return
    this.#stop({ status: 'closed' }, new SessionSocketError('CLOSED', 'the client was closed'))
  }

  /**
   * Sets the session cookie again without reconnecting, for when plain HTTP requests find the
   * session gone while the socket is fine (the cookie expired or was deleted meanwhile), then
   * checks the browser kept it (`GET {path}/cookie`). Resolves `{ kept: true }`, or
   * `{ kept: false, reason }`: `not-stored` means cookies do not stick in this browser (blocked,
   * or a proxy strips Set-Cookie), so the page should act over the socket instead.
   *
   * @example
   * const res = await fetch('/api/cart')
   * if (res.status === 401 && (await s.restoreCookie()).kept) retry()
   */
  async restoreCookie(): Promise<CookieRestoreResult> {
    if (this.#state.status !== 'ready' || !this.#socket.connected) return { kept: false, reason: 'not-ready' }
    const code = await requestRestoreCode(this.#socket, this.#options)
    if (code === undefined) return { kept: false, reason: 'failed' }
    const result = await restoreAndCheckCookie(code, this.#options)
    // The browser's cookie names another session (a sign-in): follow it rather than replace it.
    if (!result.kept && result.reason === 'other-session') this.#rejoin()
    return result
  }

  #setState(state: ConnectionState): void {
    if (isTerminal(this.#state.status)) return
    // Rejoining (a sign-in) shows no steps on the way: it lasts until ready, offline or the end.
    if (this.#state.status === 'rejoining' && (state.status === 'connecting' || state.status === 'registering')) return
    if (state.status === this.#state.status && state.status !== 'offline' && state.status !== 'ready') return
    this.#state = state
    this.#events.emit('status', state)
  }

  #wire(): void {
    const socket = this.#socket
    socket.on('connect', () => {
      this.#generation++
    })
    socket.on(EVENTS.REGISTERED, (reply: RegisterReply) => {
      void this.#onRegistered(reply, this.#generation)
    })
    socket.on(EVENTS.ENDED, (event: EndedEvent) => {
      this.#end(event.reason)
    })
    socket.on(EVENTS.REPLACED, () => {
      const error = new SessionSocketError('CLOSED', 'another connection of this tab replaced this one')
      this.#stop({ status: 'closed', error }, error)
    })
    socket.on(EVENTS.REJOIN, () => this.#rejoin())
    socket.on('connect_error', (err: Error & { data?: unknown }) => {
      this.#token.release()
      const refusal = readConnectRefusal(err, this.#options.namespace)
      if (refusal.action === 'end') return this.#end(refusal.reason)
      if (refusal.action === 'stop') {
        this.#options.log('error', `register refused: ${refusal.error.message}`, refusal.error)
        return this.#stop({ status: 'closed', error: refusal.error }, refusal.error)
      }
      if (!refusal.soon) this.#options.log('warn', `connect failed: ${err.message}`)
      this.#scheduleReconnect(refusal.error, refusal.retryAfter, refusal.soon)
    })
    socket.on('disconnect', (reason) => {
      this.#outbox.markAllUnsent()
      this.#token.release()
      if (isTerminal(this.#state.status) || this.#suspended) return
      // Our own disconnect on the way to the new session: #rejoin connects again at once.
      if (this.#state.status === 'rejoining' && reason === 'io client disconnect') return
      this.#options.log('info', `disconnected: ${reason}`)
      this.#scheduleReconnect(undefined, undefined)
    })
    socket.onAny((event: string, ...args: unknown[]) => {
      // Apart from the client's own events: a server event named `status` never reaches s.on('status').
      if (!event.startsWith('ss:')) this.#events.emitApp(event, ...args)
    })
  }

  async #onRegistered(reply: RegisterReply, generation: number): Promise<void> {
    const stale = () => generation !== this.#generation || isTerminal(this.#state.status)
    await this.#token.store(reply.token)
    if (reply.tabId !== this.#tabId) {
      this.#tabId = reply.tabId
      this.#options.tabIdStorage.set(reply.tabId)
    }
    if (stale()) return
    if (this.#wasReady && reply.newSession) {
      // The session this tab was in is gone (revoked, expired, forgotten): do not carry on
      // silently in a fresh, empty one.
      this.#end(reply.reason === 'revoked-token' ? 'revoked' : 'expired')
      return
    }
    const { outcome } = reply.restoreCode === undefined ? ({ outcome: 'failed' } as const) : await restoreCookie(reply.restoreCode, this.#options)
    if (stale()) return
    if (outcome === 'other') {
      // A sign-in's cookie won over the session this tab registered into: go where it points.
      this.#rejoin()
      return
    }
    const cookieRestored = outcome === 'restored'
    this.#attempt = 0
    this.#wasReady = true
    this.#setState({ status: 'ready', restored: reply.restored, reason: reply.reason })
    this.#events.emit('ready', { restored: reply.restored, reason: reply.reason, cookieRestored })
    this.#outbox.flush()
  }

  /**
   * `ss:rejoin`: the session was regenerated over HTTP (a sign-in). Reconnect now so the
   * handshake carries the new cookie, as `rejoining`, not `offline`: calls wait in the outbox.
   */
  #rejoin(): void {
    if (isTerminal(this.#state.status)) return
    this.#options.log('info', 'session regenerated; rejoining')
    this.#setState({ status: 'rejoining' })
    clearTimeout(this.#retryTimer)
    this.#socket.disconnect()
    this.#outbox.markAllUnsent()
    if (!this.#suspended) this.#socket.connect()
  }

  /**
   * Connects again after the backoff (at least `retryAfter`), as `offline`. `soon`: after exactly
   * `retryAfter`, keeping the current state (a short wait, not an outage: SIGN_IN_PENDING).
   */
  #scheduleReconnect(error: SessionSocketError | undefined, retryAfter: number | undefined, soon?: boolean): void {
    if (isTerminal(this.#state.status)) return
    clearTimeout(this.#retryTimer)
    let retryIn = retryAfter ?? 0
    if (!soon) {
      const attempt = this.#attempt++
      retryIn = Math.max(this.#options.backoff(attempt), retryIn)
      if (this.#options.page?.hidden()) retryIn = Math.max(retryIn * HIDDEN_SLOWDOWN, HIDDEN_MIN_DELAY)
      this.#setState(error ? { status: 'offline', attempt, retryIn, error } : { status: 'offline', attempt, retryIn })
    }
    this.#retryTimer = setTimeout(() => {
      if (isTerminal(this.#state.status) || this.#socket.connected || this.#suspended) return
      this.#setState({ status: 'connecting' })
      this.#socket.connect()
    }, retryIn)
  }

  #end(reason: EndReason): void {
    if (isTerminal(this.#state.status)) return
    // The token is revoked server-side; forget it unless another tab already replaced it.
    this.#token.forget()
    this.#stop({ status: 'ended', reason }, new SessionSocketError('SESSION_ENDED', `the session has ended (${reason})`))
    this.#events.emit('ended', reason)
  }

  #stop(state: ConnectionState, error: SessionSocketError): void {
    clearTimeout(this.#retryTimer)
    this.#durable.stop()
    this.#unsubscribePage?.()
    this.#unsubscribePage = undefined
    this.#token.release()
    this.#setState(state)
    this.#socket.disconnect()
    this.#outbox.rejectAll(error)
  }
}

/**
 * Creates a tab's connection to its HTTP session. `M` types `call`; `AppEvents`, the map of the
 * app's server-to-client events shared with the server, types `on`.
 *
 * @example
 * interface AppEvents { counter: (value: number) => void }
 * const s = createSessionSocket<Methods, AppEvents>({ url: 'https://app.example.com' })
 * s.on('ready', () => console.log('tab', s.tabId, 'is ready'))
 * s.on('counter', (value) => render(value))
 * const { value } = await s.call('counter.increment', { by: 1 })
 */
export function createSessionSocket<M extends object = MethodMap, AppEvents extends EventMap & AppEventMap<AppEvents> = AnyEvents>(
  options: SessionSocketOptions = {},
): SessionSocket<M, AppEvents> {
  return new SessionSocket<M, AppEvents>(options)
}
