import http from 'node:http'
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ROOT_CONTEXT, context, metrics, propagation, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { AggregationTemporality, DataPointType, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type MetricData } from '@opentelemetry/sdk-metrics'
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node'
import express from 'express'
import session, { MemoryStore } from 'express-session'
import { Server } from 'socket.io'
import { io as ioClient } from 'socket.io-client'
import { MemoryLinkStore, SessionSocketError, createSessionSocketServer, type SessionSocketServer } from '@session-socket/node'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { startCookieJarProxy, type CookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, waitForStatus } from '@session-socket/test-helpers/clients'
import { ATTRIBUTES, INSTRUMENTS } from '../src/telemetry.js'
import { rawRegister } from './helpers/raw-client.js'

// One SDK for the whole file, registered before any server is created (as an app must: the
// metrics API has no late binding). Counters are cumulative, so each test reads differences.
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000, exportTimeoutMillis: 10_000 })
const meterProvider = new MeterProvider({ readers: [reader] })
const spanExporter = new InMemorySpanExporter()
const tracerProvider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] })

/** Every token, restore code, cookie, session id and tab id the tests saw: none may be in an attribute. */
const secrets = new Set<string>()

let server: TestServer | undefined
const proxies: CookieJarProxy[] = []
const cleanups: Array<() => Promise<void> | void> = []

beforeAll(() => {
  metrics.setGlobalMeterProvider(meterProvider)
  tracerProvider.register()
})

afterAll(async () => {
  await meterProvider.shutdown()
  await tracerProvider.shutdown()
  metrics.disable()
  trace.disable()
  context.disable()
  propagation.disable()
})

afterEach(async () => {
  closeAllClients()
  for (const cleanup of cleanups.splice(0)) await cleanup()
  for (const proxy of proxies.splice(0)) await proxy.close()
  await server?.close()
  server = undefined
})

async function jar(): Promise<CookieJarProxy> {
  const proxy = await startCookieJarProxy(server!.port)
  proxies.push(proxy)
  return proxy
}

async function collect(): Promise<MetricData[]> {
  metricExporter.reset()
  await reader.forceFlush()
  return metricExporter.getMetrics().at(-1)?.scopeMetrics.flatMap((scope) => scope.metrics) ?? []
}

/** Sum of a counter's points (a histogram's counts) whose attributes include `match`. */
async function count(name: string, match: Record<string, string> = {}): Promise<number> {
  const metric = (await collect()).find((m) => m.descriptor.name === name)
  let total = 0
  for (const point of metric?.dataPoints ?? []) {
    if (!Object.entries(match).every(([key, value]) => point.attributes[key] === value)) continue
    total += metric!.dataPointType === DataPointType.HISTOGRAM ? (point.value as { count: number }).count : (point.value as number)
  }
  return total
}

/** How much `name` (with `match`) grew while `scenario` ran. */
async function growth(name: string, match: Record<string, string>, scenario: () => Promise<unknown>): Promise<number> {
  const before = await count(name, match)
  await scenario()
  return (await count(name, match)) - before
}

function connectError(url: string, auth: object, headers: Record<string, string> = {}): Promise<{ code?: string }> {
  const socket = ioClient(url, { transports: ['websocket'], forceNew: true, reconnection: false, auth, extraHeaders: headers })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no connect_error')), 3000)
    socket.once('connect_error', (err: Error & { data?: { code?: string } }) => {
      clearTimeout(timer)
      socket.close()
      resolve(err.data ?? {})
    })
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.close()
      resolve({})
    })
  })
}

async function register(url: string, auth: { token: string | null; tabId: string }, headers?: Record<string, string>) {
  const client = await rawRegister(url, auth, headers)
  secrets.add(client.reply.token).add(client.reply.tabId)
  if (client.reply.restoreCode) secrets.add(client.reply.restoreCode)
  return client
}

function rememberJar(proxy: CookieJarProxy): void {
  for (const value of proxy.jar.values()) secrets.add(value).add(decodeURIComponent(value))
}

const R = INSTRUMENTS.registers.name
const A = ATTRIBUTES

describe('registers', () => {
  it('should count a first visit as not restored (no-token) and its reconnect as restored, and time both', async () => {
    server = await startTestServer()
    const proxy = await jar()
    const browser = makeBrowser(proxy.url)
    const first = { [A.registerOutcome]: 'not-restored', [A.registerReason]: 'no-token', [A.transport]: 'websocket' }
    const restored = { [A.registerOutcome]: 'restored', [A.registerReason]: 'restored', [A.transport]: 'websocket' }
    const [firstBefore, restoredBefore, timedBefore] = [await count(R, first), await count(R, restored), await count(INSTRUMENTS.registerDuration.name, restored)]
    const tab = browser.open()
    await waitForStatus(tab)
    rememberJar(proxy)
    secrets.add((await browser.tokens.get())!)
    expect((await count(R, first)) - firstBefore).toBe(1)
    proxy.cut()
    await waitForStatus(tab, 'offline')
    await waitForStatus(tab, 'ready')
    expect((await count(R, restored)) - restoredBefore).toBe(1)
    expect((await count(INSTRUMENTS.registerDuration.name, restored)) - timedBefore).toBe(1)
  })

  it('should count a reconnect that lost its cookie as restored, and the cookie restore that follows', async () => {
    server = await startTestServer()
    const proxy = await jar()
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    rememberJar(proxy)
    const restores = await growth(INSTRUMENTS.cookieRestores.name, { [A.restoreResult]: 'restored' }, async () => {
      const registers = await growth(R, { [A.registerOutcome]: 'restored' }, async () => {
        proxy.jar.clear()
        proxy.cut()
        await waitForStatus(tab, 'offline')
        await waitForStatus(tab, 'ready')
        // The cookie comes back through POST /restore after ready.
        await expect.poll(() => proxy.jar.size).toBe(1)
      })
      expect(registers).toBe(1)
    })
    expect(restores).toBe(1)
    rememberJar(proxy)
  })

  it('should count a register refused as malformed, with its error code', async () => {
    server = await startTestServer()
    const refused = await growth(R, { [A.registerOutcome]: 'refused', [A.errorType]: 'UNSUPPORTED_VERSION' }, async () => {
      expect((await connectError(server!.url, { v: 99, token: null, tabId: 'old-client' })).code).toBe('UNSUPPORTED_VERSION')
    })
    expect(refused).toBe(1)
  })

  it('should count a register the per-session rate limit refused, by outcome and by rule', async () => {
    server = await startTestServer({ ss: { rateLimits: { registersPerSession: { limit: 1, windowMs: 60_000 } } } })
    const first = await register(server.url, { token: null, tabId: 'limited' })
    first.close()
    const rule = await growth(INSTRUMENTS.rateLimitRefusals.name, { [A.rateLimitRule]: 'registersPerSession' }, async () => {
      const refused = await growth(R, { [A.registerOutcome]: 'refused', [A.errorType]: 'RATE_LIMITED' }, async () => {
        expect((await connectError(server!.url, { v: 1, token: first.reply.token, tabId: 'limited' })).code).toBe('RATE_LIMITED')
      })
      expect(refused).toBe(1)
    })
    expect(rule).toBe(1)
  })

  it('should count bad tokens by reason, and the new-session budget refusal by its rule', async () => {
    server = await startTestServer({ ss: { rateLimits: { newSessionsPerIp: { limit: 1, windowMs: 60_000 } } } })
    const unknown = await growth(R, { [A.registerReason]: 'unknown-token' }, async () => {
      const guess = await register(server!.url, { token: 'g'.repeat(32), tabId: 'guess' })
      guess.close()
    })
    expect(unknown).toBe(1)
    const rule = await growth(INSTRUMENTS.rateLimitRefusals.name, { [A.rateLimitRule]: 'newSessionsPerIp' }, async () => {
      expect((await connectError(server!.url, { v: 1, token: null, tabId: 'next' })).code).toBe('RATE_LIMITED')
    })
    expect(rule).toBe(1)
  })

  it('should count a token reuse (rotation on) and the session it ended', async () => {
    let offset = 0
    server = await startTestServer({ ss: { rotation: { grace: 1_000 }, now: () => Date.now() + offset } })
    const first = await register(server.url, { token: null, tabId: 'owner' })
    first.close()
    const second = await register(server.url, { token: first.reply.token, tabId: 'owner' })
    second.close()
    expect(second.reply.restored).toBe(true)
    // The successor is used: from now on its predecessor is a theft signal.
    const third = await register(server.url, { token: second.reply.token, tabId: 'owner' })
    third.close()
    offset = 5_000
    const ended = await growth(INSTRUMENTS.sessionsEnded.name, { [A.endReason]: 'revoked', [A.endedBy]: 'token-reuse' }, async () => {
      const reuses = await growth(INSTRUMENTS.tokenReuses.name, {}, async () => {
        const thief = await register(server!.url, { token: first.reply.token, tabId: 'thief' })
        thief.close()
        expect(thief.reply.reason).toBe('revoked-token')
      })
      expect(reuses).toBe(1)
    })
    expect(ended).toBe(1)
  })
})

describe('handshakes and restores', () => {
  it('should count a handshake refused for its Origin', async () => {
    server = await startTestServer()
    const refused = await growth(INSTRUMENTS.handshakeRefusals.name, { [A.refusalReason]: 'origin' }, async () => {
      // Refused without a session; the refusal itself reaches the client at CONNECT (PROTOCOL.md §1).
      const response = await fetch(`${server!.url}/socket.io/?EIO=4&transport=polling`, { headers: { Origin: 'http://evil.example' } })
      expect(response.status).toBe(200)
    })
    expect(refused).toBe(1)
  })

  it('should count handshakes over the per-IP rate as rate-limit refusals', async () => {
    server = await startTestServer({ ss: { rateLimits: { handshakesPerIp: { limit: 1, windowMs: 60_000 } } } })
    const rule = await growth(INSTRUMENTS.rateLimitRefusals.name, { [A.rateLimitRule]: 'handshakesPerIp' }, async () => {
      const refused = await growth(INSTRUMENTS.handshakeRefusals.name, { [A.refusalReason]: 'rate-limit' }, async () => {
        const statuses = []
        for (let i = 0; i < 2; i++) statuses.push((await fetch(`${server!.url}/socket.io/?EIO=4&transport=polling`)).status)
        // The second is refused without a session; the client is told at CONNECT (PROTOCOL.md §1).
        expect(statuses).toEqual([200, 200])
      })
      expect(refused).toBe(1)
    })
    expect(rule).toBe(1)
  })

  it('should count a restore with a wrong code as refused, with its error code', async () => {
    server = await startTestServer()
    const refused = await growth(INSTRUMENTS.cookieRestores.name, { [A.restoreResult]: 'refused', [A.errorType]: 'NOT_FOUND' }, async () => {
      const response = await fetch(`${server!.url}/session-socket/restore`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code: 'w'.repeat(32) }) })
      expect(response.status).toBe(404)
    })
    expect(refused).toBe(1)
  })
})

describe('sessions ended', () => {
  it('should count a logout over HTTP as ended by destroy, reason logout', async () => {
    server = await startTestServer()
    const proxy = await jar()
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    rememberJar(proxy)
    const ended = await growth(INSTRUMENTS.sessionsEnded.name, { [A.endReason]: 'logout', [A.endedBy]: 'destroy' }, async () => {
      const gone = waitForStatus(tab, 'ended')
      expect((await fetch(`${proxy.url}/logout`, { method: 'POST' })).status).toBe(204)
      await gone
    })
    expect(ended).toBe(1)
  })

  it('should count ss.endUser and ss.disconnectSession by what ended the session', async () => {
    server = await startTestServer({ ss: { identify: (s) => s.userId } })
    const proxy = await jar()
    await fetch(`${proxy.url}/login?user=ann`, { method: 'POST' })
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    rememberJar(proxy)
    const byUser = await growth(INSTRUMENTS.sessionsEnded.name, { [A.endReason]: 'logout', [A.endedBy]: 'end-user' }, () => server!.ss.endUser('ann'))
    expect(byUser).toBe(1)
    const other = await register(server.url, { token: null, tabId: 'other' })
    const { sessionId } = (await other.socket.emitWithAck('ss:call', { id: 'w1', m: 'whoami' })).r as { sessionId: string }
    secrets.add(sessionId)
    const byApp = await growth(INSTRUMENTS.sessionsEnded.name, { [A.endReason]: 'revoked', [A.endedBy]: 'disconnect-session' }, () => server!.ss.disconnectSession(sessionId))
    other.close()
    expect(byApp).toBe(1)
  })
})

describe('calls', () => {
  const setup = (ss: SessionSocketServer) => {
    ss.method('explode', () => {
      throw new Error('handler bug')
    })
    ss.method('refuse', () => {
      throw new SessionSocketError('FORBIDDEN', 'not yours')
    })
    ss.method('traced', () => trace.getTracer('app').startActiveSpan('app.work', (span) => span.end()), { session: false })
  }

  function callDuration(method: string, code: string) {
    return count(INSTRUMENTS.callDuration.name, { [A.rpcMethod]: method, [A.rpcStatusCode]: code })
  }

  it('should record the duration of each call by method and outcome code, unknown names as _OTHER', async () => {
    server = await startTestServer({ setup })
    const tab = makeBrowser(server.url).open()
    await waitForStatus(tab)
    const before = await Promise.all([callDuration('whoami', 'OK'), callDuration('explode', 'INTERNAL'), callDuration('refuse', 'FORBIDDEN'), callDuration('_OTHER', 'NOT_FOUND')])
    const { sessionId, tabId } = (await tab.call('whoami')) as { sessionId: string; tabId: string }
    secrets.add(sessionId).add(tabId)
    await expect(tab.call('explode')).rejects.toMatchObject({ code: 'INTERNAL' })
    await expect(tab.call('refuse')).rejects.toMatchObject({ code: 'FORBIDDEN' })
    await expect(tab.call('no.such.method.with-a-made-up-name')).rejects.toMatchObject({ code: 'NOT_FOUND' })
    const after = await Promise.all([callDuration('whoami', 'OK'), callDuration('explode', 'INTERNAL'), callDuration('refuse', 'FORBIDDEN'), callDuration('_OTHER', 'NOT_FOUND')])
    expect(after.map((n, i) => n - before[i]!)).toEqual([1, 1, 1, 1])
    const failed = (await collect()).find((m) => m.descriptor.name === INSTRUMENTS.callDuration.name)!.dataPoints.find((p) => p.attributes[A.rpcMethod] === 'explode')!
    expect(failed.attributes).toEqual({ [A.rpcSystem]: 'session_socket', [A.rpcMethod]: 'explode', [A.rpcStatusCode]: 'INTERNAL', [A.errorType]: 'INTERNAL' })
  })

  it('should make a SERVER span per call, ERROR only for server faults, with the handler’s spans as its children', async () => {
    server = await startTestServer({ setup })
    const tab = makeBrowser(server.url).open()
    await waitForStatus(tab)
    spanExporter.reset()
    await tab.call('traced')
    await expect(tab.call('explode')).rejects.toMatchObject({ code: 'INTERNAL' })
    await expect(tab.call('refuse')).rejects.toMatchObject({ code: 'FORBIDDEN' })
    const spans = spanExporter.getFinishedSpans()
    const byName = (name: string) => spans.find((s) => s.name === name)!
    const traced = byName('traced')
    expect(traced.kind).toBe(SpanKind.SERVER)
    expect(traced.attributes).toEqual({ [A.rpcSystem]: 'session_socket', [A.rpcMethod]: 'traced', [A.rpcStatusCode]: 'OK' })
    expect(byName('app.work').parentSpanContext?.spanId).toBe(traced.spanContext().spanId)
    expect(byName('explode').status.code).toBe(SpanStatusCode.ERROR)
    expect(byName('refuse').status.code).toBe(SpanStatusCode.UNSET)
    expect(byName('refuse').attributes[A.errorType]).toBe('FORBIDDEN')
  })

  it("should start a call's span in the context the app makes active around Socket.IO packets: the page's trace from the handshake", async () => {
    const app = express()
    const httpServer = http.createServer(app)
    const io = new Server(httpServer)
    // Registered before session-socket, so it runs first for every packet of the socket.
    io.on('connection', (socket) => {
      const parent = propagation.extract(ROOT_CONTEXT, socket.handshake.headers)
      socket.use((_packet, next) => context.with(parent, next))
    })
    const sessionMiddleware = session({ secret: 's', resave: false, saveUninitialized: true })
    const ss = createSessionSocketServer(io, { session: sessionMiddleware, sessionCheckInterval: 0, sweepInterval: 0 })
    ss.method('ping', () => 'pong', { session: false })
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve))
    cleanups.push(async () => {
      ss.close()
      io.close()
      httpServer.closeAllConnections()
    })
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
    const pageSpanId = '00f067aa0ba902b7'
    const url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`
    const client = await register(url, { token: null, tabId: 'traced-page' }, { traceparent: `00-${traceId}-${pageSpanId}-01` })
    cleanups.push(() => client.close())
    spanExporter.reset()
    expect(await client.socket.emitWithAck('ss:call', { id: 'p1', m: 'ping' })).toEqual({ ok: true, r: 'pong' })
    const call = spanExporter.getFinishedSpans().find((s) => s.name === 'ping')!
    expect(call.spanContext().traceId).toBe(traceId)
    expect(call.parentSpanContext?.spanId).toBe(pageSpanId)
  })
})

describe('stores, durable events and tabs', () => {
  it('should count link-store and session-store failures by store and operation', async () => {
    class DownLinks extends MemoryLinkStore {
      override getLink(): Promise<never> {
        return Promise.reject(new SessionSocketError('STORE_UNAVAILABLE', 'link store unavailable', { retryAfter: 1000 }))
      }
    }
    let sessionsDown = false
    const sessionStore = new MemoryStore()
    const get = sessionStore.get.bind(sessionStore)
    sessionStore.get = (sid, callback) => (sessionsDown ? callback(new Error('session store down')) : get(sid, callback))
    server = await startTestServer({ links: new DownLinks(), sessionStore })
    const tab = await register(server.url, { token: null, tabId: 'stores-down' })
    cleanups.push(() => tab.close())
    const links = await growth(INSTRUMENTS.storeErrors.name, { [A.store]: 'link', [A.storeOperation]: 'getLink', [A.errorType]: 'STORE_UNAVAILABLE' }, async () => {
      const refused = await growth(R, { [A.registerOutcome]: 'refused', [A.errorType]: 'STORE_UNAVAILABLE' }, async () => {
        expect((await connectError(server!.url, { v: 1, token: 'k'.repeat(32), tabId: 'down' })).code).toBe('STORE_UNAVAILABLE')
      })
      expect(refused).toBe(1)
    })
    expect(links).toBe(1)
    sessionsDown = true
    const sessions = await growth(INSTRUMENTS.storeErrors.name, { [A.store]: 'session', [A.storeOperation]: 'load', [A.errorType]: 'STORE_UNAVAILABLE' }, async () => {
      expect(await tab.socket.emitWithAck('ss:call', { id: 'c1', m: 'whoami' })).toMatchObject({ ok: false, e: { code: 'STORE_UNAVAILABLE' } })
    })
    expect(sessions).toBe(1)
  })

  it('should count durable events kept for an absent tab and replayed when it comes back', async () => {
    server = await startTestServer()
    const away = await register(server.url, { token: null, tabId: 'away' })
    const seq = away.reply.seq
    away.close()
    const kept = await growth(INSTRUMENTS.durableEvents.name, { [A.durableOutcome]: 'kept' }, () => server!.ss.toTab('away', { durable: true }).emit('news', 1))
    expect(kept).toBe(1)
    const replayed = await growth(INSTRUMENTS.durableEvents.name, { [A.durableOutcome]: 'replayed' }, async () => {
      const back = await rawRegister(server!.url, { token: away.reply.token, tabId: 'away', seq } as never)
      back.close()
    })
    expect(replayed).toBe(1)
  })

  it("should report this process's registered tabs as they open and close", async () => {
    server = await startTestServer()
    const tabs = async () => count(INSTRUMENTS.activeTabs.name)
    const a = await register(server.url, { token: null, tabId: 'tab-a' })
    const b = await register(server.url, { token: null, tabId: 'tab-b' })
    expect(await tabs()).toBe(2)
    a.close()
    await expect.poll(tabs).toBe(1)
    b.close()
    await expect.poll(tabs).toBe(0)
  })
})

describe('attributes', () => {
  it('should put no token, restore code, cookie, session id or tab id in any attribute of any data point or span', async () => {
    // A session full of secrets: a cookie, a token, a restore code (the cookie was lost), calls.
    server = await startTestServer()
    const proxy = await jar()
    const browser = makeBrowser(proxy.url)
    const tab = browser.open()
    await waitForStatus(tab)
    rememberJar(proxy)
    const cookie = [...proxy.jar].map(([name, value]) => `${name}=${value}`).join('; ')
    const { sessionId, tabId } = (await tab.call('whoami')) as { sessionId: string; tabId: string }
    const lost = await register(server.url, { token: (await browser.tokens.get())!, tabId: 'second-tab' })
    lost.close()
    expect(lost.reply.restoreCode).toBeTypeOf('string')
    const withCookie = await register(server.url, { token: null, tabId: 'cookie-tab' }, { Cookie: cookie })
    withCookie.close()
    secrets.add(sessionId).add(tabId).add(cookie)
    await fetch(`${proxy.url}/logout`, { method: 'POST' })

    const known = new Set<string>(Object.values(ATTRIBUTES))
    const spans: ReadableSpan[] = spanExporter.getFinishedSpans()
    const attributeSets = [...(await collect()).flatMap((m) => m.dataPoints.map((p) => p.attributes)), ...spans.map((s) => s.attributes)]
    expect(attributeSets.length).toBeGreaterThan(10)
    const leaks: string[] = []
    for (const attributes of attributeSets) {
      for (const [key, value] of Object.entries(attributes)) {
        if (!known.has(key)) leaks.push(`unknown key ${key}`)
        const text = String(value)
        for (const secret of secrets) if (secret.length >= 6 && text.includes(secret)) leaks.push(`${key}=${text}`)
        // Every value is a short name from a closed set, never an id.
        if (!/^[A-Za-z_][\w.-]{0,40}$/.test(text)) leaks.push(`${key}=${text}`)
      }
    }
    expect(leaks).toEqual([])
  })

  it('should list every instrument and attribute key in the package README', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    const missing = [...Object.values(INSTRUMENTS).map((i) => i.name), ...Object.values(ATTRIBUTES)].filter((name) => !readme.includes(`\`${name}\``))
    expect(missing).toEqual([])
  })
})
