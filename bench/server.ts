/**
 * A benchmark server in its own process: Express 5 + express-session + Socket.IO on 127.0.0.1,
 * either with session-socket (`side: 'ss'`) or plain Socket.IO with the express-session recipe
 * (`side: 'plain'`: `io.engine.use(sessionMiddleware)`). Configured by the BENCH_SERVER env
 * (JSON, see ServerConfig); tells the harness `listening`, answers `heap`, `cpu`, `count`.
 */
import http from 'node:http'
import path from 'node:path'
import type { AddressInfo } from 'node:net'
import express from 'express'
import session, { type Store } from 'express-session'
import { Server } from 'socket.io'
import { importDist } from './lib/dist.js'
import { serveRequests } from './lib/processes.js'
import { setUpTelemetry } from './lib/telemetry-mode.js'
import { expireTabSession, soakSample } from './lib/soak-server.js'
import type * as NodePkg from '../packages/node/dist/index.js'
import type * as SqliteStores from '../packages/node/dist/stores/sqlite.js'
import type * as RedisStores from '../packages/node/dist/stores/redis.js'

export type StoreKind = 'memory' | 'sqlite' | 'redis' | 'redis-cluster'

export interface ServerConfig {
  side: 'ss' | 'plain'
  store: StoreKind
  port: number
  /** Folder of the SQLite files. */
  dataDir?: string
  redisUrl?: string
  /** Some nodes of the Redis Cluster (`redis-cluster` store). */
  redisRootNodes?: Array<{ url: string }>
  /** express-session's saveUninitialized. @default true */
  saveUninitialized?: boolean
  /** Extra createSessionSocketServer options (callLease, maxInFlight, …). */
  ss?: Record<string, unknown>
  /** listen() backlog (accept queue). @default Node's 511 */
  backlog?: number
  /** Set up, then listen only on `{ cmd: 'listen' }` (a warm restart). */
  standby?: boolean
  /**
   * Chaos: `log.append` runs one SQLite transaction in links.db (see benchLog): a row per
   * execution in bench_log, and the method's effect, a row in bench_ledger.
   */
  log?: boolean
}

const config = JSON.parse(process.env.BENCH_SERVER ?? '{}') as ServerConfig

type Database = import('better-sqlite3').Database

/**
 * The chaos method's body, one SQLite transaction per execution:
 * - bench_log gets a row per execution (call id, process, time): how often the handler ran;
 * - the effect, a row in bench_ledger, stands for one an app cannot repeat (a payment, a stock
 *   decrement). With a call key (the SDK's ctx.callKey, the same on every resend) it is made
 *   idempotent as an app would: `INSERT … ON CONFLICT (call_key) DO NOTHING` into bench_effect,
 *   and the ledger row only if that inserted. Without one (plain Socket.IO has no key) every
 *   execution applies it.
 * The harness reads both tables from outside the server after the run.
 */
function benchLog(db: Database): (callId: string, callKey: string | undefined) => void {
  db.pragma('journal_mode = WAL')
  db.exec(`CREATE TABLE IF NOT EXISTS bench_log (call_id TEXT NOT NULL, pid INTEGER NOT NULL, at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS bench_effect (call_key TEXT PRIMARY KEY, call_id TEXT NOT NULL, pid INTEGER NOT NULL, at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS bench_ledger (call_id TEXT NOT NULL, pid INTEGER NOT NULL, at INTEGER NOT NULL)`)
  const logRun = db.prepare('INSERT INTO bench_log (call_id, pid, at) VALUES (?, ?, ?)')
  const claimEffect = db.prepare('INSERT INTO bench_effect (call_key, call_id, pid, at) VALUES (?, ?, ?, ?) ON CONFLICT (call_key) DO NOTHING')
  const applyEffect = db.prepare('INSERT INTO bench_ledger (call_id, pid, at) VALUES (?, ?, ?)')
  const run = db.transaction((callId: string, callKey: string | undefined) => {
    const at = Date.now()
    logRun.run(callId, process.pid, at)
    if (callKey === undefined || claimEffect.run(callKey, callId, process.pid, at).changes === 1) applyEffect.run(callId, process.pid, at)
  })
  return (callId, callKey) => void run(callId, callKey)
}
const cpuAtStart = process.cpuUsage()
/** connect-sqlite3's database (the SQLite store), for the soak's `expire`. */
let sessionsDb: import('sqlite3').Database | undefined
const closers: Array<() => Promise<void> | void> = []

interface RedisLike {
  on(event: 'error', fn: (err: Error) => void): unknown
  connect(): Promise<unknown>
  quit?(): Promise<unknown>
  close?(): Promise<unknown>
}

async function openRedis(): Promise<RedisLike> {
  const { createClient, createCluster } = await import('redis')
  // Fail fast while Redis is away (docs/scaling.md), and reconnect by itself.
  const socket = { connectTimeout: 2000, reconnectStrategy: (n: number) => Math.min(100 * 2 ** n, 2000) }
  const client = (
    config.store === 'redis-cluster'
      ? createCluster({ rootNodes: config.redisRootNodes!, defaults: { disableOfflineQueue: true, socket }, topologyRefreshOnReconnectionAttemptStrategy: 1000 })
      : createClient({ url: config.redisUrl!, disableOfflineQueue: true, socket })
  ) as unknown as RedisLike
  client.on('error', () => {})
  await client.connect()
  closers.push(async () => {
    await (client.close ?? client.quit)?.call(client)
  })
  return client
}

async function sessionStore(redis: RedisLike | undefined): Promise<Store | undefined> {
  if (config.store === 'memory') return undefined
  if (config.store === 'redis' || config.store === 'redis-cluster') {
    const { RedisStore } = await import('connect-redis')
    return new RedisStore({ client: redis as never })
  }
  const [{ default: sqlite3 }, { default: connectSqlite3 }] = await Promise.all([import('sqlite3'), import('connect-sqlite3')])
  const file = path.join(config.dataDir!, 'sessions.db')
  const db = await new Promise<InstanceType<typeof sqlite3.Database>>((resolve, reject) => {
    const opened = new sqlite3.Database(file, (err) => (err ? reject(err) : resolve(opened)))
  })
  closers.push(() => new Promise<void>((resolve) => db.close(() => resolve())))
  sessionsDb = db
  const SQLiteStore = connectSqlite3(session)
  return new SQLiteStore({ db, table: 'sessions', concurrentDb: true }) as Store
}

/** Measures the window in which a SIGKILL makes a call run twice: effect logged, reply not yet recorded. */
const window = { open: 0, openMs: 0, callMs: 0, lastChange: 0, effects: 0 }
let listenedAt = 0
const openByTab = new Map<string, number>()
function windowChange(delta: number): void {
  const now = performance.now()
  if (window.open > 0) {
    window.openMs += now - window.lastChange
    window.callMs += (now - window.lastChange) * window.open
  }
  window.open += delta
  window.lastChange = now
}

async function main(): Promise<void> {
  const redis = config.store === 'redis' || config.store === 'redis-cluster' ? await openRedis() : undefined
  const store = await sessionStore(redis)
  const sessionMiddleware = session({
    secret: 'bench secret',
    resave: false,
    saveUninitialized: config.saveUninitialized ?? true,
    cookie: { httpOnly: true, sameSite: 'lax' },
    ...(store ? { store } : {}),
  })
  const app = express()
  const httpServer = http.createServer(app)
  const io = new Server(httpServer, { transports: ['websocket'] })

  if (config.side === 'plain') {
    // The official recipe: express-session on every Engine.IO request. A session the WebSocket
    // handshake created is saved by hand (the recipe's "2nd use case" does the same): WebSocket
    // handshakes never reach express-session's save-on-end, and the cookie must name a stored
    // session for the next connect to find it. Only new sessions are saved, as the SDK does.
    io.engine.use((req: any, res: any, next: (err?: unknown) => void) => {
      sessionMiddleware(req, res, (err?: unknown) => {
        if (err || !req.session) return next(err)
        const named = typeof req.headers.cookie === 'string' && req.headers.cookie.includes(`s%3A${req.sessionID}.`)
        if (named) return next()
        req.session.save((saveErr: unknown) => next(saveErr))
      })
    })
    let insertLog: ((callId: string, callKey: undefined) => void) | undefined
    if (config.log) {
      const { default: Database } = await import('better-sqlite3')
      const db = new Database(path.join(config.dataDir!, 'links.db'), { timeout: 2000 })
      insertLog = benchLog(db)
      closers.push(() => void db.close())
    }
    io.on('connection', (socket) => {
      const req = socket.request as any
      if (insertLog) {
        const log = insertLog
        socket.on('log.append', (params: { id: string }, ack: unknown) => {
          if (typeof ack !== 'function') return
          req.session.reload((err: unknown) => {
            if (err) return ack({ error: 'reload failed' })
            // No call key: socket.io-client's retries of the same packet apply the effect again.
            log(params.id, undefined)
            ack({ id: params.id })
          })
        })
      }
      // The recipe's logout handling: one room per session.
      void socket.join(req.session.id)
      socket.on('echo', (params: unknown, ack: unknown) => {
        if (typeof ack === 'function') ack(params)
      })
      // The recipe's "modifying the session": reload before use (save only if changed; echo does not change it).
      socket.on('echo.session', (params: unknown, ack: unknown) => {
        if (typeof ack !== 'function') return
        req.session.reload((err: unknown) => (err ? ack({ error: 'reload failed' }) : ack(params)))
      })
      // The recipe's "modifying the session" with a change: reload, write, save. reload() replaces
      // socket.request.session, so the handler reads it again after each step, as the recipe does.
      socket.on('counter.increment', (params: object, ack: unknown) => {
        if (typeof ack !== 'function') return
        req.session.reload((err: unknown) => {
          if (err) return ack({ error: 'reload failed' })
          req.session.count = (req.session.count ?? 0) + 1
          const count = req.session.count
          req.session.save((saveErr: unknown) => ack(saveErr ? { error: 'save failed' } : { ...params, count }))
        })
      })
      socket.on('counter.read', (_params: unknown, ack: unknown) => {
        if (typeof ack !== 'function') return
        req.session.reload((err: unknown) => ack(err ? { error: 'reload failed' } : { count: req.session.count ?? 0 }))
      })
    })
  } else {
    await setUpTelemetry()
    const { createSessionSocketServer, MemoryLinkStore } = await importDist<typeof NodePkg>('node')
    let links: NodePkg.LinkStore
    let insertLog: ((callId: string, callKey: string) => void) | undefined
    if (config.store === 'memory') {
      links = new MemoryLinkStore()
    } else if (config.store === 'redis' || config.store === 'redis-cluster') {
      const { RedisLinkStore } = await importDist<typeof RedisStores>('node', 'stores/redis.js')
      links = new RedisLinkStore({ client: redis as never })
    } else {
      const { SqliteLinkStore } = await importDist<typeof SqliteStores>('node', 'stores/sqlite.js')
      const { default: Database } = await import('better-sqlite3')
      const db = new Database(path.join(config.dataDir!, 'links.db'), { timeout: 2000 })
      closers.push(() => void db.close())
      // In the same file as the call results.
      if (config.log) insertLog = benchLog(db)
      const store = new SqliteLinkStore({ database: db, sweepIntervalMs: 0 })
      if (config.log) {
        const finish = store.finishCall.bind(store)
        store.finishCall = async (...args) => {
          try {
            return await finish(...args)
          } finally {
            // Keys are `${tabId}:${callId}`; tab ids never contain ':'.
            const tab = args[0].slice(0, args[0].indexOf(':'))
            const open = openByTab.get(tab) ?? 0
            if (open > 0) {
              openByTab.set(tab, open - 1)
              windowChange(-1)
            }
          }
        }
      }
      links = store
    }
    const ss = createSessionSocketServer(io, {
      session: sessionMiddleware,
      store: links,
      rateLimits: false,
      ...(store ? { sessionStore: store } : {}),
      ...config.ss,
    })
    app.use(ss.http())
    ss.method('echo', (params) => params, { session: false })
    ss.method('echo.session', (params) => params)
    ss.method('counter.increment', (params: object, ctx) => {
      const session = ctx.session as { count?: number }
      session.count = (session.count ?? 0) + 1
      return { ...params, count: session.count }
    })
    ss.method('counter.read', (_params, ctx) => ({ count: (ctx.session as { count?: number }).count ?? 0 }))
    if (insertLog) {
      const log = insertLog
      ss.method('log.append', (params: { id: string }, ctx) => {
        log(params.id, ctx.callKey)
        window.effects++
        openByTab.set(ctx.tabId, (openByTab.get(ctx.tabId) ?? 0) + 1)
        windowChange(+1)
        return { id: params.id }
      })
    }
  }
  app.use(sessionMiddleware)

  const listen = async () => {
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject)
      httpServer.listen({ port: config.port, host: '127.0.0.1', ...(config.backlog ? { backlog: config.backlog } : {}) }, () => resolve())
    })
    closers.unshift(
      () =>
        new Promise<void>((resolve) => {
          io.close()
          httpServer.closeAllConnections()
          httpServer.close(() => resolve())
        }),
    )
    const port = (httpServer.address() as AddressInfo).port
    listenedAt = performance.now()
    return { type: 'listening', port, at: Date.now(), cpu: process.cpuUsage(cpuAtStart) }
  }
  // A standby server is set up (modules loaded, stores open) and listens when told: a restart
  // without the process start, for storms that time the reconnects alone.
  if (config.standby) process.send?.({ type: 'prepared', at: Date.now(), cpu: process.cpuUsage(cpuAtStart) })
  else process.send?.(await listen())

  if (config.log) {
    // A SIGKILL loses whatever was not sent: report the window often.
    setInterval(() => {
      windowChange(0)
      process.send?.({ type: 'window', ...window, life: listenedAt ? performance.now() - listenedAt : 0 })
    }, 200).unref()
  }

  serveRequests(
    async (msg) => {
      switch (msg.cmd) {
        case 'heap': {
          const gc = (globalThis as { gc?: () => void }).gc
          if (!gc) throw new Error('start the server with --expose-gc')
          for (let i = 0; i < 3; i++) {
            gc()
            await new Promise((resolve) => setImmediate(resolve))
          }
          return { memory: process.memoryUsage(), sockets: io.engine.clientsCount }
        }
        case 'cpu':
          return { cpu: process.cpuUsage(cpuAtStart), sockets: io.engine.clientsCount }
        case 'count':
          return { sockets: io.engine.clientsCount }
        case 'listen':
          return listen()
        // The soak figure (bench/figures/soak.ts).
        case 'sample':
          return { ...(await soakSample(io)) }
        case 'expire':
          if (!sessionsDb) throw new Error('expire needs the sqlite store')
          return expireTabSession(io, sessionsDb, 'sessions', String(msg.tabId))
        case 'snapshot': {
          // Heap snapshot for looking into the memory figure (bench/heap-diff.ts).
          const gc = (globalThis as { gc?: () => void }).gc
          gc?.()
          const { writeHeapSnapshot } = await import('node:v8')
          return { file: writeHeapSnapshot(String(msg.file)) }
        }
        default:
          throw new Error(`unknown command ${String(msg.cmd)}`)
      }
    },
    async () => {
      if (process.env.BENCH_FAST_EXIT) return
      for (const close of closers) await close()
    },
  )
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
