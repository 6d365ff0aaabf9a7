import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import express from 'express'
import session from 'express-session'
import { Server, type ServerOptions } from 'socket.io'
// The BUILT server package (`npm run build` first), as an app would install it.
import { createSessionSocketServer, type SessionSocketServer, type SessionSocketServerOptions } from '../../packages/node/dist/index.js'

const browserDist = fileURLToPath(new URL('../../packages/browser/dist/', import.meta.url))
const socketIoEsm = fileURLToPath(new URL('../../node_modules/socket.io-client/dist/socket.io.esm.min.js', import.meta.url))

/**
 * The page: the built ES module of @session-socket/browser and the app's own socket.io-client,
 * one module through an import map, as a bundler would resolve them. `window.SessionSocket`
 * is the SDK, `window.io` the app's own `io()`; specs create clients with page.evaluate.
 */
const PAGE = `<!doctype html><title>ecosystem</title>
<script type="importmap">{ "imports": { "socket.io-client": "/vendor/socket.io-client.js" } }</script>
<script type="module">
  import * as SessionSocket from '/dist/index.js'
  import { io } from 'socket.io-client'
  window.SessionSocket = SessionSocket
  window.io = io
  window.loaded = true
</script>`

export interface EcosystemApp {
  /** http://127.0.0.1:<port>; the page at /. */
  readonly url: string
  readonly port: number
  readonly io: Server
  readonly ss: SessionSocketServer
  close(): Promise<void>
}

/**
 * A real app for the Socket.IO-feature specs: Express 5 + express-session + Socket.IO (with
 * `io` options, e.g. connectionStateRecovery) + createSessionSocketServer (with `ss` options,
 * e.g. namespace), on 127.0.0.1 and a free port. RPC method `whoami` answers `{ sessionId, tabId }`.
 */
export async function startEcosystemApp(options: { io?: Partial<ServerOptions>; ss?: Partial<Omit<SessionSocketServerOptions, 'session'>> } = {}): Promise<EcosystemApp> {
  const sessionMiddleware = session({ secret: 'e2e ecosystem', resave: false, saveUninitialized: false, cookie: { httpOnly: true, sameSite: 'lax' } })
  const app = express()
  const httpServer = http.createServer(app)
  const io = new Server(httpServer, options.io)
  const ss = createSessionSocketServer(io, { session: sessionMiddleware, rateLimits: false, ...options.ss })
  ss.method('whoami', (_params, ctx) => ({ sessionId: ctx.sessionId, tabId: ctx.tabId }), { session: false })
  app.use('/dist', express.static(browserDist))
  app.get('/vendor/socket.io-client.js', (_req, res) => res.sendFile(socketIoEsm))
  app.get('/favicon.ico', (_req, res) => res.status(204).end())
  // ss.http() runs the session middleware itself, after reading the SDK's provisional cookie.
  app.use(ss.http())
  app.get('/', (_req, res) => res.type('html').send(PAGE))
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject)
    httpServer.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = httpServer.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    io,
    ss,
    async close() {
      ss.close()
      io.disconnectSockets(true)
      httpServer.closeAllConnections()
      io.engine.close()
      await new Promise<void>((resolve) => httpServer.close(() => resolve()))
    },
  }
}
