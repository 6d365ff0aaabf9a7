// A small real app for the durable-delivery specs, run as a child process so a test can
// SIGKILL it: Express 5 + express-session (connect-sqlite3) + Socket.IO + the BUILT
// @session-socket/node with a SqliteLinkStore, both in DATA_DIR, so a restart keeps everyone.
// The page loads the BUILT <script> bundle; the socket may go through another address
// (SOCKET_URL, a cuttable proxy) while the page itself is served directly.
import http from 'node:http'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import express from 'express'
import session from 'express-session'
import connectSqlite3 from 'connect-sqlite3'
import Database from 'better-sqlite3'
import { Server } from 'socket.io'
import { createSessionSocketServer } from '../../packages/node/dist/index.js'
import { SqliteLinkStore } from '../../packages/node/dist/stores/sqlite.js'

const dataDir = process.env.DATA_DIR
const port = Number(process.env.PORT ?? 0)
const socketUrl = process.env.SOCKET_URL ?? ''
const iife = readFileSync(fileURLToPath(new URL('../../packages/browser/dist/session-socket.iife.js', import.meta.url)), 'utf8')

const SQLiteStore = connectSqlite3(session)
const sessionMiddleware = session({
  secret: 'durable e2e',
  resave: false,
  saveUninitialized: true,
  store: new SQLiteStore({ dir: dataDir, db: 'sessions.db', concurrentDb: true }),
  cookie: { httpOnly: true, sameSite: 'lax' },
})
const links = new SqliteLinkStore({ path: join(dataDir, 'links.db') })
// What the app did, outside the process: one row per executed order.
const log = new Database(join(dataDir, 'orders.db'))
log.pragma('journal_mode = WAL')
log.exec('CREATE TABLE IF NOT EXISTS orders (n INTEGER)')
const insert = log.prepare('INSERT INTO orders (n) VALUES (?)')

const app = express()
const server = http.createServer(app)
const io = new Server(server, { transports: ['websocket'], pingInterval: 1000, pingTimeout: 1000 })
const origins = [`http://127.0.0.1:${port}`]
if (socketUrl) origins.push(socketUrl)
const ss = createSessionSocketServer(io, { session: sessionMiddleware, store: links, allowedOrigins: origins, rateLimits: false })
ss.method('whoami', (_p, ctx) => ({ sessionId: ctx.sessionId, tabId: ctx.tabId }))
ss.method('order.place', (params) => {
  insert.run(params.n)
  return { placed: params.n }
}, { session: false })

app.use(express.json())
app.get('/favicon.ico', (_req, res) => res.status(204).end())
app.get('/session-socket.iife.js', (_req, res) => res.type('js').send(iife))
app.use(ss.http())
app.use(sessionMiddleware)
app.get('/', (_req, res) => {
  res.type('html').send(`<!doctype html><title>durable</title>
<script src="/session-socket.iife.js"></script>
<script>
  window.received = []
  window.settled = []
  window.gaps = []
  window.client = SessionSocket.createSessionSocket({
    ${socketUrl ? `url: ${JSON.stringify(socketUrl)},` : ''}
    socketOptions: { transports: ['websocket'] },
    backoff: () => 200,
  })
  client.on('news', (n) => window.received.push(n))
  client.on('gap', (g) => window.gaps.push(g))
  window.durable = SessionSocket.createDurableCalls(client)
  durable.onSettled((s) => window.settled.push({ ok: s.ok, result: s.result }))
</script>`)
})
// Test controls: send durable events, read what ran.
app.post('/send', async (req, res) => {
  const { tabId, sessionId, from, to, everyNthToSession } = req.body
  for (let n = from; n <= to; n++) {
    if (everyNthToSession && n % everyNthToSession === 0) await ss.toSession(sessionId, { durable: true }).emit('news', n)
    else await ss.toTab(tabId, { durable: true }).emit('news', n)
  }
  res.json({ ok: true })
})
app.get('/orders', (_req, res) => res.json(log.prepare('SELECT n, COUNT(*) AS times FROM orders GROUP BY n ORDER BY n').all()))

server.listen(port, '127.0.0.1', () => {
  console.log(`durable-app: listening on http://127.0.0.1:${server.address().port}`)
})
