import type { WireError } from './errors.js'

/** Version of the wire protocol described in PROTOCOL.md. */
export const PROTOCOL_VERSION = 1

/** Event names used on the wire, one place for client and server. */
export const EVENTS = {
  /** server → client, first event on every connection: the register reply. */
  REGISTERED: 'ss:registered',
  /** client → server: register as an event, for clients that cannot send CONNECT auth. */
  REGISTER: 'ss:register',
  /** client → server: an RPC call, answered through the Socket.IO ack. */
  CALL: 'ss:call',
  /** server → client: the session is over; the client must not reconnect into it. */
  ENDED: 'ss:ended',
  /** server → client: this socket was replaced by a newer one of the same tab. */
  REPLACED: 'ss:replaced',
  /**
   * server → client: the session was regenerated over HTTP (sign-in); reconnect now so the
   * handshake carries the new cookie. Sent once the response that sets that cookie is out.
   */
  REJOIN: 'ss:rejoin',
  /** server → client: a durable event `{ seq, e, a }`, to apply once, in seq order. */
  EVENT: 'ss:event',
  /** client → server: durable events up to `{ seq }` are applied (no ack callback). */
  ACK: 'ss:ack',
  /**
   * client → server: a fresh restore code for this socket's session (ack `{ code }`), to set
   * the session cookie again without reconnecting (the cookie was lost while connected).
   */
  COOKIE: 'ss:cookie',
} as const

/**
 * The events the browser SDK emits itself (`s.on('status', …)`). They are not application event
 * names: the server refuses to emit them to tabs, and the client keeps application events from
 * the wire apart from its own, so a server event of one of these names never reaches them.
 */
export const CLIENT_EVENTS = ['status', 'ready', 'ended', 'gap'] as const

/** One of {@link CLIENT_EVENTS}. */
export type ClientEventName = (typeof CLIENT_EVENTS)[number]

/**
 * Why `name` cannot be an application event sent to tabs, or undefined when it can: names
 * starting with `ss:` are the protocol's, and {@link CLIENT_EVENTS} the browser SDK's own.
 *
 * @example
 * reservedEventName('status') // "it is one of the browser SDK's own events (status, ready, ended, gap)"
 * reservedEventName('news')   // undefined
 */
export function reservedEventName(name: string): string | undefined {
  if (name.startsWith('ss:')) return 'names starting with "ss:" are the protocol\'s'
  if ((CLIENT_EVENTS as readonly string[]).includes(name)) return `it is one of the browser SDK's own events (${CLIENT_EVENTS.join(', ')})`
  return undefined
}

/** Why a session ended for a tab. */
export type EndReason = 'logout' | 'expired' | 'revoked'

/**
 * Why register did not restore the session the token pointed at.
 * `null` when `restored` is true.
 */
export type RegisterReason =
  | 'no-token'
  | 'unknown-token'
  | 'expired-token'
  | 'revoked-token'
  | 'session-ended'
  | 'cookie-session'

/** Register request: sent as the Socket.IO CONNECT `auth`, or as the `ss:register` event. */
export interface RegisterRequest {
  v: number
  token: string | null
  tabId: string
  /** The last durable event this tab applied; absent for a fresh page (no replay). */
  seq?: number
}

/** Register reply (the `ss:registered` event, or the ack of `ss:register`). */
export interface RegisterReply {
  v: number
  /** The link token the client must store (may be new). */
  token: string
  /** The tab id the client must use from now on (the server may assign a new one). */
  tabId: string
  /** True when the token re-attached its existing session. */
  restored: boolean
  /** Why not restored (or why the link changed), `null` when plain restored. */
  reason: RegisterReason | null
  /**
   * True when the socket was linked to a session this very handshake created: whatever
   * session the tab had before is gone. A client that was ready before treats this as ended.
   */
  newSession: boolean
  /** One-time code for `POST {path}/restore` when the browser's cookie does not name this session. */
  restoreCode?: string
  /**
   * The durable event sequence number the tab is at: events with higher numbers follow
   * (replayed ones first). For a fresh page, the tab's current last number.
   */
  seq: number
  /** True when durable events between the tab's `seq` and this one are gone (expired, or the server forgot them): refetch state. */
  gap?: boolean
}

/** A durable event on the wire. */
export interface DurableEventPayload {
  seq: number
  /** Event name. */
  e: string
  /** Arguments. */
  a: unknown[]
}

/**
 * Durable event numbers come in blocks of a million per stream: a stream's number divided by
 * this, rounded down, tells which stream it belongs to.
 */
export const STREAM_BLOCK = 1_000_000

/**
 * Where a new durable stream's numbering starts: whole seconds since the epoch × 1,000,000
 * (a {@link STREAM_BLOCK}). A tab holding a number of an older (forgotten) stream sees the new
 * stream's numbers in another block and knows events may have been lost, instead of taking
 * them for duplicates.
 *
 * @example
 * const first = streamBase(Date.now()) + 1 // the first event of a new stream
 */
export function streamBase(now: number): number {
  return Math.floor(now / 1000) * STREAM_BLOCK
}

/** An RPC call on the wire. */
export interface CallRequest {
  /** Call id, unique per tab: the server answers a resent id from memory. */
  id: string
  /** Method name. */
  m: string
  /** Params (any JSON value). */
  p?: unknown
}

/** An RPC answer on the wire. */
export type CallReply = { ok: true; r: unknown } | { ok: false; e: WireError }

/** Payload of `ss:ended`. */
export interface EndedEvent {
  reason: EndReason
}

/**
 * An event map: event names to listener signatures, as an interface or a type alias (the
 * shape of Socket.IO's `EventsMap`).
 *
 * @example
 * interface AppEvents { counter: (value: number) => void }
 */
export interface EventMap {
  [event: string]: any
}

/** The app event map when none is given: any event name, any arguments (Socket.IO's `DefaultEventsMap`). */
export interface AnyEvents {
  [event: string]: (...args: any[]) => void
}

/**
 * An app event map with the SDK's names refused: an `ss:` name (the wire's own) or a client
 * event name (the server's app events reach the same `on` as the client's own) turns its entry
 * into this message, so the map no longer satisfies the constraint `E extends AppEventMap<E>`.
 *
 * @example
 * function typed<E extends EventMap & AppEventMap<E>>(events: E) {}
 */
export type AppEventMap<E> = {
  [K in keyof E]: K extends `ss:${string}`
    ? 'event names starting with ss: are reserved by session-socket'
    : K extends ClientEventName
      ? 'status, ready, ended and gap are the session-socket client\'s own events'
      : E[K]
}

/** Events the server sends to the client (besides application events). */
export interface ServerToClientEvents {
  [EVENTS.REGISTERED]: (reply: RegisterReply) => void
  [EVENTS.ENDED]: (event: EndedEvent) => void
  [EVENTS.REPLACED]: () => void
  [EVENTS.REJOIN]: () => void
  [EVENTS.EVENT]: (event: DurableEventPayload) => void
}

/** Events the client sends to the server. */
export interface ClientToServerEvents {
  [EVENTS.REGISTER]: (request: RegisterRequest, ack: (reply: RegisterReply | { error: WireError }) => void) => void
  [EVENTS.CALL]: (request: CallRequest, ack: (reply: CallReply) => void) => void
  [EVENTS.ACK]: (ack: { seq: number }) => void
  [EVENTS.COOKIE]: (ack: (reply: { code: string } | { error: WireError }) => void) => void
}

/**
 * The methods of a server, for typing `call`: an interface or a type alias mapping each
 * method name to `(params) => result`. The default accepts any name.
 *
 * @example
 * interface Methods { 'counter.increment': (p: { by: number }) => { value: number } }
 * const s = createSessionSocket<Methods>()
 */
export type MethodMap = Record<string, (params?: any) => any>

/** The params type of method `K` of a method map. */
export type MethodParams<M, K extends keyof M> = M[K] extends (params: infer P) => unknown ? P : unknown

/** The (awaited) result type of method `K` of a method map. */
export type MethodResult<M, K extends keyof M> = M[K] extends (...args: any[]) => infer R ? Awaited<R> : unknown

/** The `connect_error` data the server attaches when register fails in the CONNECT step. */
export interface ConnectErrorData {
  code: WireError['code']
  retryAfter?: number
}
