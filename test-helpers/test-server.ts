import http from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import session, { MemoryStore, type SessionOptions, type Store } from 'express-session'
import { Server, type ServerOptions } from 'socket.io'
import { createSessionSocketServer, MemoryLinkStore, type LinkStore, type SessionSocketServer, type SessionSocketServerOptions } from '@session-socket/node'

declare module 'express-session' {
  interface SessionData {
    count?: number
    userId?: string
  }
}

export interface TestServer {
  url: string
  port: number
  io: Server
  ss: SessionSocketServer
  app: express.Express
  sessionStore: Store
  links: LinkStore
  /** Stops the server as a crash would: every connection dropped, nothing said to clients. */
  close(): Promise<void>
}

export interface TestServerOptions {
  port?: number
  secret?: string | string[]
  sessionStore?: Store
  links?: LinkStore
  session?: Partial<SessionOptions>
  io?: Partial<ServerOptions>
  ss?: Partial<Omit<SessionSocketServerOptions, 'session'>>
  /** Called before listen, to add methods and routes. */
  setup?: (ss: SessionSocketServer, app: express.Express) => void
}

/**
 * A real app as users write it: Express 5 + express-session + Socket.IO + session-socket, on
 * 127.0.0.1 (port 0 unless given). HTTP routes for tests: GET /whoami, POST /count, POST /login, POST /logout.
 */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const sessionStore = options.sessionStore ?? new MemoryStore()
  const links = options.links ?? new MemoryLinkStore()
  const sessionMiddleware = session({
    secret: options.secret ?? 'test secret',
    resave: false,
    saveUninitialized: true,
    store: sessionStore,
    cookie: { httpOnly: true, sameSite: 'lax' },
    ...options.session,
  })
  const app = express()
  const httpServer = http.createServer(app)
  const io = new Server(httpServer, { ...options.io })
  const ss = createSessionSocketServer(io, { session: sessionMiddleware, store: links, sessionCheckInterval: 0, sweepInterval: 0, ...options.ss })
  // ss.http() first: it runs the session middleware itself, after reading the provisional cookie.
  app.use(ss.http())
  app.use(sessionMiddleware)
  app.get('/whoami', (req, res) => {
    res.json({ sessionId: req.sessionID, count: req.session.count ?? 0, userId: req.session.userId ?? null })
  })
  app.post('/count', (req, res) => {
    req.session.count = (req.session.count ?? 0) + 1
    res.json({ count: req.session.count })
  })
  app.post('/login', (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err)
      req.session.userId = String(req.query.user ?? 'alice')
      res.json({ sessionId: req.sessionID })
    })
  })
  app.post('/logout', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.status(204).end()))
  })
  ss.method('whoami', (_params, ctx) => ({ sessionId: ctx.sessionId, tabId: ctx.tabId, count: ctx.session?.count ?? 0 }))
  ss.method('counter.increment', (params: { by?: number } | undefined, ctx) => {
    ctx.session!.count = (ctx.session!.count ?? 0) + (params?.by ?? 1)
    return { count: ctx.session!.count }
  })
  options.setup?.(ss, app)

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject)
    httpServer.listen(options.port ?? 0, '127.0.0.1', () => resolve())
  })
  const port = (httpServer.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    io,
    ss,
    app,
    sessionStore,
    links,
    async close() {
      ss.close()
      httpServer.closeAllConnections()
      io.disconnectSockets(true)
      io.engine.close()
      await new Promise<void>((resolve) => httpServer.close(() => resolve()))
    },
  }
}
