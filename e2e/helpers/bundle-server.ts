import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import express from 'express'
import session from 'express-session'
import { Server } from 'socket.io'
// The BUILT server package (`npm run build` first), as an app would install it.
import { createSessionSocketServer } from '../../packages/node/dist/index.js'

const browserDist = fileURLToPath(new URL('../../packages/browser/dist/', import.meta.url))
const socketIoEsm = fileURLToPath(new URL('../../node_modules/socket.io-client/dist/socket.io.esm.min.js', import.meta.url))

/**
 * The page script, the same for both bundles: `api` is the SDK's public API. Query flags set
 * up the page before the client starts, the same way in every engine (WebDriver classic has no
 * init scripts): `transports=websocket` (no long-polling), `no-idb` (IndexedDB throws, as when
 * storage is blocked), `no-locks` (no Web Locks, as on a plain-http page).
 */
const pageScript = (api: string) => `
  const { createSessionSocket, idbTokenStorage, sessionStorageTabId } = ${api}
  const flags = new URLSearchParams(location.search)
  if (flags.has('no-idb')) IDBFactory.prototype.open = () => { throw new DOMException('The operation is insecure.', 'SecurityError') }
  if (flags.has('no-locks')) Object.defineProperty(navigator, 'locks', { value: undefined })
  const socketOptions = flags.get('transports') ? { transports: flags.get('transports').split(',') } : {}
  window.logs = []
  const logger = (level, message) => window.logs.push({ level, message })
  window.tokens = idbTokenStorage({ logger })
  window.client = createSessionSocket({ tokenStorage: window.tokens, tabIdStorage: sessionStorageTabId({ logger }), logger, socketOptions })
`

/** The pages, by name: each loads one BUILT bundle of @session-socket/browser. */
export const PAGES = {
  /** dist/session-socket.iife.js from a classic <script> tag: `window.SessionSocket`. */
  iife: `<!doctype html><title>iife</title>
<script src="/dist/session-socket.iife.js"></script>
<script>${pageScript('window.SessionSocket')}</script>`,
  /** dist/index.js as an ES module, socket.io-client's own ESM build through an import map. */
  esm: `<!doctype html><title>esm</title>
<script type="importmap">{ "imports": { "socket.io-client": "/vendor/socket.io-client.js" } }</script>
<script type="module">import * as SessionSocket from '/dist/index.js'
${pageScript('SessionSocket')}</script>`,
} as const

export interface BundleServer {
  /** http://127.0.0.1:<port>; pages at /iife.html and /esm.html. */
  url: string
  close(): Promise<void>
}

/**
 * A real app serving the built browser bundles: Express 5 + express-session + Socket.IO +
 * createSessionSocketServer, on 127.0.0.1 and a free port. RPC method `whoami` answers
 * `{ sessionId, tabId }`.
 */
export async function startBundleServer(): Promise<BundleServer> {
  const sessionMiddleware = session({
    secret: 'e2e bundles',
    resave: false,
    saveUninitialized: true,
    cookie: { httpOnly: true, sameSite: 'lax' },
  })
  const app = express()
  const httpServer = http.createServer(app)
  const io = new Server(httpServer)
  const ss = createSessionSocketServer(io, { session: sessionMiddleware })
  ss.method('whoami', (_params, ctx) => ({ sessionId: ctx.sessionId, tabId: ctx.tabId }))
  // Static files before the session: they need none. So does the favicon: with
  // saveUninitialized, a cookieless favicon request racing the first handshake would mint a
  // second session, and its cookie would then win over the token at the next register.
  app.use('/dist', express.static(browserDist))
  app.get('/vendor/socket.io-client.js', (_req, res) => res.sendFile(socketIoEsm))
  app.get('/favicon.ico', (_req, res) => res.status(204).end())
  // The pages come after the session, as in an app: the page response sets the cookie.
  app.use(ss.http())
  app.use(sessionMiddleware)
  for (const [name, html] of Object.entries(PAGES)) app.get(`/${name}.html`, (_req, res) => res.type('html').send(html))

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject)
    httpServer.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = httpServer.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      ss.close()
      io.disconnectSockets(true)
      httpServer.closeAllConnections()
      io.engine.close()
      await new Promise<void>((resolve) => httpServer.close(() => resolve()))
    },
  }
}
