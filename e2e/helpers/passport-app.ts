import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import express from 'express'
import session from 'express-session'
import { Passport } from 'passport'
import { Strategy as LocalStrategy } from 'passport-local'
import { Server } from 'socket.io'
// The BUILT server package (`npm run build` first), as an app would install it.
import { createSessionSocketServer } from '../../packages/node/dist/index.js'

const iifeBundle = fileURLToPath(new URL('../../packages/browser/dist/session-socket.iife.js', import.meta.url))

/** What the page's RPC `whoami` and HTTP `GET /me` answer. */
export interface PassportView {
  sessionId: string
  user: string | null
}

interface PassportSession {
  passport?: { user?: string }
}

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/**
 * The page: who the server thinks is signed in (rendered from the request's session), a
 * sign-in form and a sign-out form (plain form posts, as passport apps have them), and the SDK
 * from its `<script>` bundle. The page records every status and `ended` reason on `window`.
 */
function page(user: string | null, websocketOnly: boolean): string {
  return `<!doctype html><title>passport</title>
<p>signed in as <output id="user">${escape(user ?? '')}</output></p>
<form id="signin" method="post" action="/login"><input id="username" name="username" autocomplete="off"><input type="hidden" name="password" value="pw"><button id="signin-submit">Sign in</button></form>
<form id="signout" method="post" action="/logout"><button id="signout-submit">Sign out</button></form>
<script src="/session-socket.iife.js"></script>
<script>
  window.trail = []
  window.ended = []
  window.client = SessionSocket.createSessionSocket(${websocketOnly ? "{ socketOptions: { transports: ['websocket'] } }" : ''})
  window.client.on('status', (state) => window.trail.push(state.status))
  window.client.on('ended', (reason) => window.ended.push(reason))
</script>`
}

export interface PassportApp {
  /** http://127.0.0.1:<port>; `/` the page, `/?ws=1` the page on WebSocket only. */
  url: string
  port: number
  close(): Promise<void>
}

/**
 * A passport-local app as the passport docs write it, with session-socket: express-session
 * (`saveUninitialized: false`), `passport.session()`, `POST /login` through
 * `passport.authenticate('local')` (which regenerates the session on sign-in, passport ≥ 0.6) and
 * `POST /logout` through `req.logout()` (which regenerates it on sign-out). Any name signs in
 * with password `pw`. `identify` names the passport user.
 */
export async function startPassportApp(): Promise<PassportApp> {
  const sessionMiddleware = session({ secret: 'e2e passport', resave: false, saveUninitialized: false, cookie: { httpOnly: true, sameSite: 'lax' } })
  const auth = new Passport()
  auth.use(new LocalStrategy((username, password, done) => done(null, password === 'pw' && username.length > 0 ? { id: username } : false)))
  auth.serializeUser((user, done) => done(null, (user as { id: string }).id))
  auth.deserializeUser((id: string, done) => done(null, { id }))

  const app = express()
  const httpServer = http.createServer(app)
  const io = new Server(httpServer)
  const ss = createSessionSocketServer(io, { session: sessionMiddleware, identify: (s) => (s as PassportSession).passport?.user })
  ss.method('whoami', (_params, ctx): PassportView => ({ sessionId: ctx.sessionId, user: (ctx.session as PassportSession | undefined)?.passport?.user ?? null }))

  app.get('/session-socket.iife.js', (_req, res) => res.sendFile(iifeBundle))
  app.get('/favicon.ico', (_req, res) => res.status(204).end())
  // ss.http() before the session middleware: it runs it, reading the SDK's provisional cookie first.
  app.use(ss.http())
  app.use(sessionMiddleware)
  app.use(auth.session())
  app.get('/', (req, res) => {
    res.set('Cache-Control', 'no-store').type('html').send(page((req.user as { id: string } | undefined)?.id ?? null, req.query.ws === '1'))
  })
  app.get('/me', (req, res) => {
    res.set('Cache-Control', 'no-store').json({ sessionId: req.sessionID, user: (req.user as { id: string } | undefined)?.id ?? null } satisfies PassportView)
  })
  app.post('/login', express.urlencoded({ extended: false }), auth.authenticate('local', { failureRedirect: '/?failed=1' }), (req, res) => {
    res.redirect(303, `/${req.headers.referer?.includes('ws=1') ? '?ws=1' : ''}`)
  })
  app.post('/logout', (req, res, next) => {
    req.logout((err) => (err ? next(err) : res.redirect(303, '/')))
  })

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject)
    httpServer.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (httpServer.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async close() {
      ss.close()
      httpServer.closeAllConnections()
      io.disconnectSockets(true)
      await new Promise<void>((resolve) => io.close(() => resolve()))
    },
  }
}
