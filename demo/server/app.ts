import { readFile } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import path from 'node:path'
import express, { type NextFunction, type Request, type Response } from 'express'
import session, { type Session, type SessionData } from 'express-session'
import { Server } from 'socket.io'
import { SessionSocketError, createSessionSocketServer, type SessionSocketServer } from '@session-socket/node'
import type { AppState, CounterEvent, TabView } from './api-types.js'
import { ConfigError, type DemoConfig } from './config.js'
import { trackConnections } from './connections.js'
import { MAX_NAME, sameOrigin, validName, wantsHtml } from './request-guards.js'
import { StoreUnavailableError, save } from './store-unavailable-error.js'
import { createKeyedLock } from './keyed-lock.js'
import type { DemoStores } from './stores.js'

declare module 'express-session' {
  interface SessionData {
    /** Set on sign-in: the name, lower-cased, so one name is one user across browsers. */
    userId: string
    name: string
    /** The per-session counter, changed over HTTP and over RPC. */
    count: number
  }
}

export interface DemoServer {
  httpServer: http.Server
  io: Server
  ss: SessionSocketServer
  /** Listens on the configured host and port; resolves with the URL. */
  listen(): Promise<string>
  /** Stops accepting, tells the sockets, waits for open requests. Does not close the stores. */
  close(): Promise<void>
}

/** How long requests in progress may take once shutdown began (ms). */
const SHUTDOWN_GRACE_MS = 1_000
/**
 * How long a connection with no request in progress may stay open once shutdown began (ms): a
 * WebSocket whose client does not close its TCP connection after the server's close frame
 * (python-engineio does not), an idle keep-alive. A client that answers the close frame is gone
 * long before.
 */
const IDLE_GRACE_MS = 100
/** The built <script> bundle of @session-socket/browser, as an app would serve it from node_modules. */
const iifeBundle = () => path.join(path.dirname(createRequire(import.meta.url).resolve('@session-socket/browser/package.json')), 'dist/session-socket.iife.js')

type AnySession = Session & Partial<SessionData>

function stateOf(s: AnySession | undefined, test: boolean): AppState {
  const user = s?.userId && s.name ? { id: s.userId, name: s.name } : null
  return { user, count: s?.count ?? 0, test }
}


/**
 * The demo app: Express 5 + express-session + Socket.IO + session-socket, on the given stores.
 * Nothing listens until `listen()`.
 */
export function createDemoServer(config: DemoConfig, stores: DemoStores): DemoServer {
  const { sessionStore, linkStore } = stores
  const sessionMiddleware = session({
    name: config.sessionCookieName,
    // An array: the first secret signs, every one verifies, so a rotated secret keeps old cookies valid.
    secret: config.secrets,
    store: sessionStore,
    resave: false,
    // No session (and no cookie) until something is stored: the socket handshake or a sign-in.
    saveUninitialized: false,
    // 'auto': Secure over HTTPS, also behind a TLS-terminating proxy TRUST_PROXY trusts.
    cookie: { httpOnly: true, sameSite: 'lax', secure: 'auto', maxAge: config.sessionMaxAge },
  })

  const app = express()
  app.disable('x-powered-by')
  app.set('trust proxy', config.trustProxy)
  const httpServer = http.createServer(app)
  const connections = trackConnections(httpServer)
  const io = new Server(httpServer, {
    serveClient: false,
    ...(stores.adapter ? { adapter: stores.adapter } : {}),
    ...(config.pingInterval !== undefined ? { pingInterval: config.pingInterval } : {}),
    ...(config.pingTimeout !== undefined ? { pingTimeout: config.pingTimeout } : {}),
  })
  const ss = createSessionSocketServer(io, {
    session: sessionMiddleware,
    sessionStore,
    store: linkStore,
    identify: (s) => s.userId,
    sessionCheckInterval: config.sessionCheckInterval,
    touchInterval: config.touchInterval,
    rotation: config.tokenRotation,
    trustProxy: config.trustProxy,
  })
  /** Counter writes of one session run one at a time on this node, HTTP and RPC alike. */
  const counterLock = createKeyedLock()
  let closing = false

  const storedSession = (sessionId: string) =>
    new Promise<SessionData | null>((resolve, reject) =>
      sessionStore.get(sessionId, (err, data) => (err ? reject(new StoreUnavailableError(err)) : resolve(data ?? null))),
    )

  /**
   * Adds one to the counter of `s`, from the stored value read under the lock: `s` may have been
   * loaded before another increment of the same session finished.
   */
  async function increment(s: AnySession, sessionId: string): Promise<number> {
    return counterLock(sessionId, async () => {
      const stored = await storedSession(sessionId)
      s.count = (stored?.count ?? s.count ?? 0) + 1
      // Activity: reset the expiry as an HTTP request does. The RPC dispatcher saves a changed
      // session without touching it, so without this a call that writes would not extend it.
      s.touch()
      await save(s)
      return s.count
    })
  }

  async function pushTabs(sessionId: string): Promise<void> {
    if (closing) return
    const tabs = await tabsOf(sessionId)
    ss.toSession(sessionId).emit('tabs', tabs)
  }

  async function tabsOf(sessionId: string): Promise<TabView[]> {
    const tabs = await ss.tabs(sessionId)
    return tabs.map(({ tabId, since }) => ({ tabId, since })).sort((a, b) => a.since - b.since || a.tabId.localeCompare(b.tabId))
  }

  const logPushFailure = (err: unknown) => console.error(`demo: pushing the tab list failed: ${(err as Error).message}`)
  ss.on('tab:open', ({ sessionId }) => void pushTabs(sessionId).catch(logPushFailure))
  ss.on('tab:close', ({ sessionId }) => void pushTabs(sessionId).catch(logPushFailure))

  ss.method('app.state', (_params, ctx) => stateOf(ctx.session, config.test))
  ss.method('tabs.list', (_params, ctx) => tabsOf(ctx.sessionId), { session: false })
  ss.method('counter.increment', async (_params, ctx) => {
    const count = await increment(ctx.session!, ctx.sessionId).catch((err: unknown) => {
      // A typed, retryable answer rather than INTERNAL.
      if (err instanceof StoreUnavailableError) throw new SessionSocketError('STORE_UNAVAILABLE', 'session store unavailable', { retryAfter: 1000 })
      throw err
    })
    ss.toSession(ctx.sessionId).emit('counter', { count, via: 'rpc', tabId: ctx.tabId } satisfies CounterEvent)
    return { count }
  })
  ss.method('user.signOutEverywhere', async (_params, ctx) => {
    const userId = ctx.session?.userId
    if (!userId) return { ended: false }
    // Said first, so every tab can tell this apart from a plain sign-out before it ends.
    ss.toUser(userId).emit('signout:everywhere', { tabId: ctx.tabId })
    await ss.endUser(userId, 'logout')
    return { ended: true }
  })
  ss.method('user.signIn', async (params: { name?: unknown } | undefined, ctx) => {
    const name = validName(params?.name)
    if (name === undefined) throw new SessionSocketError('BAD_REQUEST', `Give a name of 1 to ${MAX_NAME} characters.`)
    // As POST /login does, for a browser whose cookies never stick (a proxy strips Set-Cookie):
    // a new session id (session fixation), then the user in it. ctx.session is the new one.
    await new Promise<void>((resolve, reject) => ctx.session!.regenerate((err) => (err ? reject(err) : resolve())))
    ctx.session!.userId = name.toLowerCase()
    ctx.session!.name = name
    return stateOf(ctx.session, config.test)
  })
  ss.method('user.signOut', async (_params, ctx) => {
    // destroy() revokes the session's links and ends every tab of it, this one included.
    await new Promise<void>((resolve, reject) => ctx.session!.destroy((err) => (err ? reject(err) : resolve())))
    return { ended: true }
  })
  if (config.test) {
    ss.method('test.whoami', (_params, ctx) => ({ sessionId: ctx.sessionId, tabId: ctx.tabId }), { session: false })
  }

  // While shutting down, no connection is kept alive for another request.
  app.use((_req, res, next) => {
    if (closing) res.set('Connection', 'close')
    next()
  })
  const pages = new Map<string, Promise<string>>()
  /**
   * Serves an HTML page of the front end, read once, with what it must know before it opens
   * its socket: in WebSocket-only mode a `session-socket-transports` meta tag, so that no
   * long-polling request lands on a node that does not hold its Engine.IO session
   * (docs/scaling.md).
   */
  const servePage =
    (file: string) =>
    (_req: Request, res: Response, next: NextFunction): void => {
      let html = pages.get(file)
      if (!html) {
        html = readFile(path.join(config.publicDir, file), 'utf8').then((text) =>
          config.websocketOnly ? text.replace('</head>', '  <meta name="session-socket-transports" content="websocket" />\n  </head>') : text,
        )
        pages.set(file, html)
        html.catch(() => pages.delete(file))
      }
      html.then((text) => res.set('Cache-Control', 'no-cache').type('html').send(text), next)
    }

  // Static files need no session: they come before it.
  app.get('/session-socket.iife.js', (_req, res) => res.sendFile(iifeBundle()))
  app.get('/session-socket.iife.js.map', (_req, res) => res.sendFile(`${iifeBundle()}.map`))
  app.use('/assets', express.static(path.join(config.publicDir, 'assets'), { immutable: true, maxAge: '1y', fallthrough: false }))
  app.get('/index.html', servePage('index.html'))
  app.get('/plain.html', servePage('plain.html'))
  app.use(express.static(config.publicDir, { index: false }))

  // Before the session middleware: ss.http() runs it itself, after letting the SDK's provisional
  // cookie stand in for a missing session cookie (and serves the restore route).
  // A session store that fails (Redis away) answers 503 STORE_UNAVAILABLE, which a client may
  // retry, not 500: express-session passes the store's own error on (the TypeError is ss.http()'s
  // own mount-order check, a bug to see as it is).
  const sessionHttp = ss.http()
  app.use((req: Request, res: Response, next: NextFunction) =>
    sessionHttp(req, res, (err?: unknown) => next(err === undefined || err instanceof TypeError ? err : new StoreUnavailableError(err))),
  )
  app.use(sessionMiddleware)

  app.get('/', servePage('index.html'))

  app.get('/api/me', (req, res) => {
    res.set('Cache-Control', 'no-store')
    res.json(stateOf(req.session, config.test))
  })

  app.post('/api/counter', sameOrigin, async (req, res) => {
    // No session behind the cookie (lost, expired, never set): say so rather than count in a
    // fresh session the socket knows nothing about. The page then reconnects its socket, which
    // restores the cookie, and tries again.
    if (!(await storedSession(req.sessionID))) {
      res.status(401).json({ error: { code: 'NO_SESSION', message: 'no session cookie: reconnect the socket to restore it' } })
      return
    }
    const count = await increment(req.session, req.sessionID)
    ss.toSession(req.sessionID).emit('counter', { count, via: 'http' } satisfies CounterEvent)
    res.json({ count })
  })

  app.post('/login', sameOrigin, express.urlencoded({ extended: false, limit: '2kb' }), (req, res, next) => {
    const name = validName(req.body?.name)
    if (name === undefined) {
      res.status(400).type('text').send(`Give a name of 1 to ${MAX_NAME} characters.`)
      return
    }
    // A new session id on sign-in (session fixation); session-socket tells this browser's
    // other tabs to rejoin, and they come back into the new session with the new cookie.
    req.session.regenerate((err) => {
      if (err) return next(new StoreUnavailableError(err))
      req.session.userId = name.toLowerCase()
      req.session.name = name
      req.session.save((saveErr) => (saveErr ? next(new StoreUnavailableError(saveErr)) : res.redirect(303, '/')))
    })
  })

  app.post('/logout', sameOrigin, (req, res, next) => {
    // destroy() revokes the session's links and ends every tab of it, on every node.
    req.session.destroy((err) => {
      if (err) return next(new StoreUnavailableError(err))
      res.clearCookie(config.sessionCookieName, { httpOnly: true, sameSite: 'lax' })
      if (wantsHtml(req)) res.redirect(303, '/')
      else res.status(204).end()
    })
  })

  if (config.test) {
    // The server's view of the request's cookie, for e2e specs ("same session before and after").
    app.get('/__test/session', async (req, res) => {
      const stored = await storedSession(req.sessionID)
      res.set('Cache-Control', 'no-store')
      res.json({ sessionId: stored ? req.sessionID : null, count: stored?.count ?? 0, userId: stored?.userId ?? null })
    })
  }

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof StoreUnavailableError) {
      console.error(`demo: ${req.method} ${req.path}: session store unavailable: ${(err.cause as Error)?.message ?? err.cause}`)
      if (!res.headersSent) res.status(503).set('Retry-After', '1').json({ error: { code: 'STORE_UNAVAILABLE', message: 'session store unavailable, try again' } })
      return
    }
    console.error(`demo: ${req.method} ${req.path} failed: ${(err as Error)?.stack ?? String(err)}`)
    if (!res.headersSent) res.status(500).json({ error: { code: 'INTERNAL', message: 'internal error' } })
  })

  return {
    httpServer,
    io,
    ss,
    listen() {
      return new Promise((resolve, reject) => {
        const onError = (err: NodeJS.ErrnoException) => {
          if (err.code === 'EADDRINUSE') reject(new ConfigError(`port ${config.port} on ${config.host} is already in use; stop what uses it or set PORT to a free port`))
          else if (err.code === 'EACCES') reject(new ConfigError(`no permission to listen on ${config.host}:${config.port}; set PORT to a port above 1023`))
          else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') reject(new ConfigError(`cannot listen on host ${config.host}; set HOST to a local address such as 127.0.0.1`))
          else reject(err)
        }
        httpServer.once('error', onError)
        httpServer.listen(config.port, config.host, () => {
          httpServer.off('error', onError)
          const { address, port } = httpServer.address() as AddressInfo
          resolve(`http://${address.includes(':') ? `[${address}]` : address}:${port}`)
        })
      })
    },
    async close() {
      closing = true
      ss.close()
      // An app event, best effort: the page can then say "reconnected after a server restart".
      // Sockets are closed, not ended: the clients keep their tokens and reconnect when the
      // server is back.
      io.emit('server:shutdown')
      // Connections without a request in progress (WebSockets whose client ignores the close,
      // idle keep-alives) get a moment; requests in progress get longer; then every connection
      // goes. closeAllConnections() alone would leave upgraded ones: the HTTP server no longer
      // tracks a connection once it is a WebSocket.
      const idle = setTimeout(() => connections.destroyIdle(), IDLE_GRACE_MS)
      const grace = setTimeout(() => connections.destroyAll(), SHUTDOWN_GRACE_MS)
      await new Promise<void>((resolve) => {
        // io.close() disconnects every socket, closes Engine.IO and then the HTTP server, which
        // waits for its connections to end.
        io.close(() => resolve())
        httpServer.closeIdleConnections()
      })
      clearTimeout(idle)
      clearTimeout(grace)
    },
  }
}
