import { createRequire } from 'node:module'
import createDebug from 'debug'
import type * as OpenTelemetry from '@opentelemetry/api'
import { SessionSocketError, type CallReply, type EndReason, type RegisterReply } from '@session-socket/protocol'
import type { LinkStore } from './link-store.js'
import { isThenable } from './is-thenable.js'
import type { RateLimits } from './rate-limiter.js'
import type { RegisterSocket } from './register-socket.js'
import type { SessionNamespace, SessionSocket } from './rooms.js'
import type { SessionBridge } from './session-bridge.js'

const debug = createDebug('session-socket:telemetry')

type Api = typeof OpenTelemetry
type Attributes = OpenTelemetry.Attributes

/**
 * Every instrument session-socket records through `@opentelemetry/api`: name, unit (UCUM) and
 * what it counts. packages/node/README.md ("Telemetry") lists them with their attributes.
 *
 * @example
 * const registers = meter.createCounter(INSTRUMENTS.registers.name, INSTRUMENTS.registers)
 */
export const INSTRUMENTS = {
  registers: { name: 'session_socket.server.registers', unit: '{register}', description: 'Registers (a tab joining its session), by outcome, reason and Engine.IO transport.' },
  registerDuration: { name: 'session_socket.server.register.duration', unit: 's', description: 'Time from a register request to the tab being in its session and durable stream.' },
  handshakeRefusals: { name: 'session_socket.server.handshake.refusals', unit: '{handshake}', description: 'Engine.IO handshakes refused before any session was loaded, by reason.' },
  cookieRestores: { name: 'session_socket.server.cookie_restores', unit: '{restore}', description: 'Requests to trade a restore code for the session cookie, by result.' },
  rateLimitRefusals: { name: 'session_socket.server.rate_limit.refusals', unit: '{refusal}', description: 'Requests refused by a rate limit, by rule.' },
  tokenReuses: { name: 'session_socket.server.token_reuses', unit: '{reuse}', description: 'Rotated tokens presented after their grace window (a theft signal); each ends its session.' },
  sessionsEnded: { name: 'session_socket.server.sessions_ended', unit: '{session}', description: 'Sessions whose tabs session-socket ended, by reason and by what ended them.' },
  storeErrors: { name: 'session_socket.server.store.errors', unit: '{error}', description: 'Failed link-store and session-store operations, by store and operation.' },
  durableEvents: { name: 'session_socket.server.durable.events', unit: '{event}', description: 'Durable events kept for a tab, refused (its quota full), or replayed to it on register.' },
  activeTabs: { name: 'session_socket.server.active_tabs', unit: '{tab}', description: 'Registered tabs connected to this process.' },
  callDuration: { name: 'rpc.server.call.duration', unit: 's', description: 'Duration of ss:call handling, by method and outcome code.' },
} as const

/**
 * Every attribute key session-socket sets on a measurement or span. Values are closed sets
 * (outcomes, wire reasons, error codes, rule names, registered method names): never a token,
 * restore code, cookie, session id or tab id.
 *
 * @example
 * counter.add(1, { [ATTRIBUTES.registerOutcome]: 'restored' })
 */
export const ATTRIBUTES = {
  /** `restored` | `not-restored` | `refused`. */
  registerOutcome: 'session_socket.register.outcome',
  /** `restored`, or the wire reason: `no-token`, `unknown-token`, `expired-token`, `revoked-token`, `cookie-session`, `session-ended`. */
  registerReason: 'session_socket.register.reason',
  /** Engine.IO transport of the socket at register: `websocket`, `polling`, `webtransport`. */
  transport: 'session_socket.transport',
  /** The wire error code of a failed operation, or the error's class name (semantic conventions' `error.type`). */
  errorType: 'error.type',
  /** `origin` | `rate-limit`. */
  refusalReason: 'session_socket.refusal.reason',
  /** `restored` | `refused`. */
  restoreResult: 'session_socket.restore.result',
  /** A key of RateLimits, or `maxInFlight`. */
  rateLimitRule: 'session_socket.rate_limit.rule',
  /** The reason sent to the tabs: `logout`, `expired`, `revoked`. */
  endReason: 'session_socket.session.end_reason',
  /** `destroy` | `expiry` | `disconnect-session` | `end-user` | `token-reuse`. */
  endedBy: 'session_socket.session.ended_by',
  /** `link` | `session`. */
  store: 'session_socket.store',
  /** The store method that failed: `getLink`, `claimCall`, `load`, `save`… */
  storeOperation: 'session_socket.store.operation',
  /** `kept` | `refused` | `replayed`. */
  durableOutcome: 'session_socket.durable.outcome',
  /** Always `session_socket`. */
  rpcSystem: 'rpc.system.name',
  /** A registered method name, or `_OTHER` for names no method has. */
  rpcMethod: 'rpc.method',
  /** `OK` or the wire error code. */
  rpcStatusCode: 'rpc.response.status_code',
} as const

/** What ended a session's tabs (`session_socket.session.ended_by`). */
export type SessionEnder = 'destroy' | 'sign-out' | 'expiry' | 'disconnect-session' | 'end-user' | 'token-reuse'

/** Why a handshake was refused (`session_socket.refusal.reason`). */
export type HandshakeRefusal = 'origin' | 'rate-limit'

/** The semantic conventions' advice for RPC durations (seconds), used for register too. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
/** The semantic conventions' method name for names outside the known set. */
const OTHER_METHOD = '_OTHER'
/** Call outcomes that are the server's fault: the span's status is ERROR. */
const SERVER_FAULTS = new Set(['INTERNAL', 'STORE_UNAVAILABLE'])
const SCOPE_NAME = '@session-socket/node'

interface Telemetry {
  api: Api
  /** False: the meter is the API's no-op one (no SDK registered when the server started). */
  metered: boolean
  tracer: OpenTelemetry.Tracer | undefined
  meter: OpenTelemetry.Meter
  registers: OpenTelemetry.Counter
  registerDuration: OpenTelemetry.Histogram
  handshakeRefusals: OpenTelemetry.Counter
  cookieRestores: OpenTelemetry.Counter
  rateLimitRefusals: OpenTelemetry.Counter
  tokenReuses: OpenTelemetry.Counter
  sessionsEnded: OpenTelemetry.Counter
  storeErrors: OpenTelemetry.Counter
  durableEvents: OpenTelemetry.Counter
  callDuration: OpenTelemetry.Histogram
}

/** undefined: not looked for yet; null: not installed (every helper is then a no-op). */
let api: Api | null | undefined
/** The instruments of the SDK registered when the last server started; undefined: record nothing. */
let active: Telemetry | undefined
/** The namespaces whose tabs `active_tabs` counts (every server of this process). */
const observed = new Set<SessionNamespace>()
/** Attribute sets by key: the sets are few and closed, so each is built once. */
const attributeSets = new Map<string, Attributes>()

function loadApi(): Api | null {
  try {
    // A synchronous require, not `await import()`: top-level await would keep `require()` of this
    // ESM package from working. The API keeps its registry on globalThis, so this copy sees the
    // providers the app registered through its own.
    return createRequire(import.meta.url)('@opentelemetry/api') as Api
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') debug('@opentelemetry/api did not load: %s', (err as Error).message)
    return null
  }
}

function scopeVersion(): string | undefined {
  try {
    return (createRequire(import.meta.url)('../package.json') as { version?: string }).version
  } catch {
    return undefined
  }
}

function attributes(key: string, make: () => Attributes): Attributes {
  let set = attributeSets.get(key)
  if (set === undefined) {
    set = make()
    if (attributeSets.size < 10_000) attributeSets.set(key, set)
  }
  return set
}

/** True when a tracer provider is registered; the API's proxy answers undefined until one is. */
function tracing(provider: OpenTelemetry.TracerProvider, version: string | undefined): boolean {
  const proxy = provider as { getDelegateTracer?: (name: string, version?: string) => unknown }
  return typeof proxy.getDelegateTracer !== 'function' || proxy.getDelegateTracer(SCOPE_NAME, version) !== undefined
}

function createInstruments(otel: Api, meter: OpenTelemetry.Meter, metered: boolean, tracer: OpenTelemetry.Tracer | undefined): Telemetry {
  const counter = (spec: { name: string; unit: string; description: string }) => meter.createCounter(spec.name, { unit: spec.unit, description: spec.description })
  const histogram = (spec: { name: string; unit: string; description: string }) =>
    meter.createHistogram(spec.name, { unit: spec.unit, description: spec.description, advice: { explicitBucketBoundaries: DURATION_BUCKETS } })
  const tabs = meter.createObservableUpDownCounter(INSTRUMENTS.activeTabs.name, { unit: INSTRUMENTS.activeTabs.unit, description: INSTRUMENTS.activeTabs.description })
  // Counted when the SDK collects, not on every register and disconnect: no cost between scrapes.
  tabs.addCallback((result) => {
    let count = 0
    for (const nsp of observed) for (const socket of nsp.sockets.values()) if (socket.data.sessionId !== undefined) count++
    result.observe(count)
  })
  const tokenReuses = counter(INSTRUMENTS.tokenReuses)
  // The series exists from the start at 0: Prometheus' increase() cannot see a counter's first
  // value, and the first reuse is the one to alert on.
  tokenReuses.add(0)
  return {
    api: otel,
    metered,
    tracer,
    meter,
    registers: counter(INSTRUMENTS.registers),
    registerDuration: histogram(INSTRUMENTS.registerDuration),
    handshakeRefusals: counter(INSTRUMENTS.handshakeRefusals),
    cookieRestores: counter(INSTRUMENTS.cookieRestores),
    rateLimitRefusals: counter(INSTRUMENTS.rateLimitRefusals),
    tokenReuses,
    sessionsEnded: counter(INSTRUMENTS.sessionsEnded),
    storeErrors: counter(INSTRUMENTS.storeErrors),
    durableEvents: counter(INSTRUMENTS.durableEvents),
    callDuration: histogram(INSTRUMENTS.callDuration),
  }
}

/**
 * Binds the instruments to the OpenTelemetry SDK the app registered, if any; called when a
 * server is created. Metrics have no late binding in the API (a meter taken before the SDK is
 * registered stays a no-op), so the SDK must be started before `createSessionSocketServer`;
 * with no SDK, or no `@opentelemetry/api` installed, every helper here returns at once.
 *
 * @example
 * startTelemetry()
 * recordTokenReuse() // counted if an SDK was registered, nothing otherwise
 */
export function startTelemetry(): void {
  if (api === undefined) api = loadApi()
  if (api === null) return
  const version = scopeVersion()
  const meter = api.metrics.getMeter(SCOPE_NAME, version)
  const metered = meter !== api.createNoopMeter()
  const provider = api.trace.getTracerProvider()
  const tracer = tracing(provider, version) ? provider.getTracer(SCOPE_NAME, version) : undefined
  if (!metered && tracer === undefined) {
    active = undefined
    return
  }
  // The same SDK as for the previous server: keep its instruments (one set per process).
  if (active?.meter === meter && active.tracer === tracer) return
  active = createInstruments(api, meter, metered, tracer)
  debug('telemetry on: metrics %s, traces %s', metered ? 'on' : 'off', tracer ? 'on' : 'off')
}

/**
 * Counts `nsp`'s registered tabs in `session_socket.server.active_tabs` until the returned
 * function is called (the server's `close()`).
 *
 * @example
 * const stop = observeTabs(nsp)
 * stop()
 */
export function observeTabs(nsp: SessionNamespace): () => void {
  observed.add(nsp)
  return () => void observed.delete(nsp)
}

function errorType(err: unknown): string {
  if (err instanceof SessionSocketError) return err.code
  return err instanceof Error ? err.name : OTHER_METHOD
}

function transportOf(socket: SessionSocket): string {
  return socket.conn?.transport?.name ?? 'unknown'
}

function registerAttributes(socket: SessionSocket, reply: RegisterReply | undefined, err: unknown): Attributes {
  const transport = transportOf(socket)
  if (reply) {
    const reason = reply.restored ? 'restored' : (reply.reason ?? 'restored')
    return attributes(`register|${reason}|${transport}`, () => ({
      [ATTRIBUTES.registerOutcome]: reply.restored ? 'restored' : 'not-restored',
      [ATTRIBUTES.registerReason]: reason,
      [ATTRIBUTES.transport]: transport,
    }))
  }
  const code = SessionSocketError.from(err).code
  return attributes(`register!${code}|${transport}`, () => ({ [ATTRIBUTES.registerOutcome]: 'refused', [ATTRIBUTES.errorType]: code, [ATTRIBUTES.transport]: transport }))
}

function recordRegister(t: Telemetry, socket: SessionSocket, started: number | undefined, reply: RegisterReply | undefined, err?: unknown): void {
  const set = registerAttributes(socket, reply, err)
  t.registers.add(1, set)
  if (started !== undefined) t.registerDuration.record((performance.now() - started) / 1000, set)
}

/**
 * Counts a register that was refused before `register()` ran (a malformed or unsupported
 * request); `instrumentRegister` counts the others.
 *
 * @example
 * catch (err) { recordRegisterRefused(socket, err); return next(connectError(err)) }
 */
export function recordRegisterRefused(socket: SessionSocket, err: unknown): void {
  if (active?.metered) recordRegister(active, socket, undefined, undefined, err)
}

/**
 * Wraps register so that each one is counted (`registers`) and timed (`register.duration`),
 * from the request to the end of `enter` (the tab in its rooms and stream). Returns `inner`
 * itself when no SDK records metrics.
 *
 * @example
 * const registerSocket = instrumentRegister(createRegisterSocket(deps))
 */
export function instrumentRegister(inner: RegisterSocket): RegisterSocket {
  if (!active?.metered) return inner
  const started = new WeakMap<SessionSocket, number>()
  return {
    register(socket, request) {
      const t = active
      if (!t?.metered) return inner.register(socket, request)
      const start = performance.now()
      return inner.register(socket, request).then(
        (reply) => {
          started.set(socket, start)
          return reply
        },
        (err: unknown) => {
          recordRegister(t, socket, start, undefined, err)
          throw err
        },
      )
    },
    enter(socket, reply) {
      const start = started.get(socket)
      const t = active
      if (start === undefined || !t?.metered) return inner.enter(socket, reply)
      started.delete(socket)
      return inner.enter(socket, reply).then(
        (position) => {
          recordRegister(t, socket, start, reply)
          return position
        },
        (err: unknown) => {
          recordRegister(t, socket, start, undefined, err)
          throw err
        },
      )
    },
  }
}

/**
 * Counts a handshake refused before any session was loaded.
 *
 * @example
 * recordHandshakeRefused('origin')
 */
export function recordHandshakeRefused(reason: HandshakeRefusal): void {
  const t = active
  if (!t?.metered) return
  t.handshakeRefusals.add(1, attributes(`handshake|${reason}`, () => ({ [ATTRIBUTES.refusalReason]: reason })))
  if (reason === 'rate-limit') recordRateLimited('handshakesPerIp')
}

/**
 * Counts a restore request: `undefined` for a restored cookie, else the error it was answered with.
 *
 * @example
 * recordCookieRestore() // 204 sent
 * recordCookieRestore(new SessionSocketError('NOT_FOUND', 'restore code is unknown, used or expired'))
 */
export function recordCookieRestore(error?: SessionSocketError): void {
  const t = active
  if (!t?.metered) return
  const set = error
    ? attributes(`restore!${error.code}`, () => ({ [ATTRIBUTES.restoreResult]: 'refused', [ATTRIBUTES.errorType]: error.code }))
    : attributes('restore', () => ({ [ATTRIBUTES.restoreResult]: 'restored' }))
  t.cookieRestores.add(1, set)
}

/**
 * Counts a request a rate limit refused.
 *
 * @example
 * if (tooMany > 0) recordRateLimited('registersPerSession')
 */
export function recordRateLimited(rule: keyof RateLimits | 'maxInFlight'): void {
  const t = active
  if (!t?.metered) return
  t.rateLimitRefusals.add(1, attributes(`rate|${rule}`, () => ({ [ATTRIBUTES.rateLimitRule]: rule })))
}

/**
 * Counts a rotated token presented after its grace window.
 *
 * @example
 * if (registration.reuseIn !== undefined) recordTokenReuse()
 */
export function recordTokenReuse(): void {
  if (active?.metered) active.tokenReuses.add(1)
}

/**
 * Counts a session whose tabs were ended.
 *
 * @example
 * recordSessionEnded('logout', 'destroy')
 */
export function recordSessionEnded(reason: EndReason, by: SessionEnder): void {
  const t = active
  if (!t?.metered) return
  t.sessionsEnded.add(1, attributes(`ended|${reason}|${by}`, () => ({ [ATTRIBUTES.endReason]: reason, [ATTRIBUTES.endedBy]: by })))
}

/**
 * Counts durable events kept, refused or replayed.
 *
 * @example
 * recordDurableEvents('replayed', events.length)
 */
export function recordDurableEvents(outcome: 'kept' | 'refused' | 'replayed', count = 1): void {
  const t = active
  if (!t?.metered || count === 0) return
  t.durableEvents.add(count, attributes(`durable|${outcome}`, () => ({ [ATTRIBUTES.durableOutcome]: outcome })))
}

/** A store error, as opposed to a store's normal answer (QUOTA_EXCEEDED, a typed refusal). */
function isStoreFailure(err: unknown): boolean {
  return !(err instanceof SessionSocketError) || err.code === 'STORE_UNAVAILABLE'
}

function recordStoreError(store: 'link' | 'session', operation: string, err: unknown): void {
  const t = active
  if (!t?.metered || !isStoreFailure(err)) return
  const type = errorType(err)
  t.storeErrors.add(1, attributes(`store|${store}|${operation}|${type}`, () => ({ [ATTRIBUTES.store]: store, [ATTRIBUTES.storeOperation]: operation, [ATTRIBUTES.errorType]: type })))
}

/**
 * A view of `target` whose methods (those in `operations`, or all) count their failures, thrown
 * or rejected, in `store.errors`. Every method runs on `target` itself, so private fields work,
 * and keeps its synchronous answers.
 */
function countFailures<T extends object>(target: T, store: 'link' | 'session', operations: ReadonlySet<string> | undefined): T {
  const wrappers = new Map<PropertyKey, { method: (...args: unknown[]) => unknown; wrapper: (...args: unknown[]) => unknown }>()
  return new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object)
      if (typeof value !== 'function') return value
      const method = value as (...args: unknown[]) => unknown
      const known = wrappers.get(property)
      if (known?.method === method) return known.wrapper
      const operation = typeof property === 'string' && (!operations || operations.has(property)) ? property : undefined
      const wrapper = (...args: unknown[]): unknown => {
        if (operation === undefined) return method.apply(object, args)
        let result: unknown
        try {
          result = method.apply(object, args)
        } catch (err) {
          recordStoreError(store, operation, err)
          throw err
        }
        // Observed on a branch of its own: the caller still gets (and handles) the original.
        if (isThenable(result)) {
          result.then(undefined, (err: unknown) => recordStoreError(store, operation, err))
        }
        return result
      }
      wrappers.set(property, { method, wrapper })
      return wrapper
    },
  })
}

/**
 * The link store, with its failures counted (`store.errors`, `session_socket.store: link`);
 * the store itself when no SDK records metrics.
 *
 * @example
 * const links = instrumentLinkStore(options.store)
 */
export function instrumentLinkStore(store: LinkStore): LinkStore {
  return active?.metered ? countFailures(store, 'link', undefined) : store
}

const SESSION_OPERATIONS: ReadonlySet<string> = new Set(['get', 'load', 'save', 'touch', 'destroy'])

/**
 * The session bridge, with the session store's failures counted (`store.errors`,
 * `session_socket.store: session`); the bridge itself when no SDK records metrics.
 *
 * @example
 * const sessions = instrumentSessionBridge(new SessionBridge(middleware, hooks))
 */
export function instrumentSessionBridge(bridge: SessionBridge): SessionBridge {
  return active?.metered ? countFailures(bridge, 'session', SESSION_OPERATIONS) : bridge
}

function callAttributes(method: string, code: string): Attributes {
  return attributes(`call|${method}|${code}`, () =>
    code === 'OK'
      ? { [ATTRIBUTES.rpcSystem]: 'session_socket', [ATTRIBUTES.rpcMethod]: method, [ATTRIBUTES.rpcStatusCode]: code }
      : { [ATTRIBUTES.rpcSystem]: 'session_socket', [ATTRIBUTES.rpcMethod]: method, [ATTRIBUTES.rpcStatusCode]: code, [ATTRIBUTES.errorType]: code },
  )
}

function endCall(t: Telemetry, method: string, started: number, reply: CallReply, span: OpenTelemetry.Span | undefined): CallReply {
  const code = reply.ok ? 'OK' : reply.e.code
  const set = callAttributes(method, code)
  if (t.metered) t.callDuration.record((performance.now() - started) / 1000, set)
  if (span) {
    span.setAttributes(set)
    if (SERVER_FAULTS.has(code)) span.setStatus({ code: t.api.SpanStatusCode.ERROR, message: code })
    span.end()
  }
  return reply
}

/**
 * Runs one `ss:call` in a SERVER span named after its method, made in the context active when
 * the packet is handled (so the handler's own spans are its children), and records its
 * duration by method and outcome code. `raw` is the call as it arrived: a name no method has is
 * recorded as `_OTHER`. With no SDK it only calls `run`.
 *
 * @example
 * dispatch(socket, raw, inFlight) {
 *   return traceCall(raw, this.#methods, () => this.#dispatch(socket, raw, inFlight))
 * }
 */
export function traceCall(raw: unknown, methods: ReadonlyMap<string, unknown>, run: () => CallReply | Promise<CallReply>): CallReply | Promise<CallReply> {
  const t = active
  // With no SDK an answer given at once stays a plain value: no promise, no microtask.
  if (t === undefined) return run()
  const name = (raw as { m?: unknown } | null)?.m
  const method = typeof name === 'string' && methods.has(name) ? name : OTHER_METHOD
  const started = performance.now()
  if (t.tracer === undefined) return Promise.resolve(run()).then((reply) => endCall(t, method, started, reply, undefined))
  const { context, trace, SpanKind } = t.api
  const span = t.tracer.startSpan(method, {
    kind: SpanKind.SERVER,
    attributes: attributes(`span|${method}`, () => ({ [ATTRIBUTES.rpcSystem]: 'session_socket', [ATTRIBUTES.rpcMethod]: method })),
  })
  let reply: Promise<CallReply>
  try {
    reply = Promise.resolve(context.with(trace.setSpan(context.active(), span), run))
  } catch (err) {
    endCall(t, method, started, { ok: false, e: SessionSocketError.from(err).toWire() }, span)
    throw err
  }
  return reply.then(
    (reply) => endCall(t, method, started, reply, span),
    (err: unknown) => {
      endCall(t, method, started, { ok: false, e: SessionSocketError.from(err).toWire() }, span)
      throw err
    },
  )
}
