import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { expect, test, type Page } from '@playwright/test'
import express from 'express'
import session from 'express-session'
import { Server } from 'socket.io'
import { createSessionSocketServer, type SessionSocketServerOptions } from '../packages/node/dist/index.js'

// A refused handshake as the browser's SDK sees it, on each transport: a foreign Origin ends the
// client `closed` with FORBIDDEN (no endless `offline`), a rate-limited handshake waits the
// server's retryAfter.

const browserDist = fileURLToPath(new URL('../packages/browser/dist/', import.meta.url))

interface Site {
  url: string
  io?: Server
  close(): Promise<void>
}

/** The page: the built <script> bundle, a client for `?url=` over `?transport=`, its status trail on window. */
const PAGE = `<!doctype html><title>refusal</title>
<script src="/dist/session-socket.iife.js"></script>
<script>
  const params = new URLSearchParams(location.search)
  const transport = params.get('transport')
  window.trail = []
  window.client = SessionSocket.createSessionSocket({
    url: params.get('url') || undefined,
    socketOptions: transport ? { transports: [transport] } : {},
  })
  window.client.on('status', (state) => window.trail.push({ status: state.status, code: state.error && state.error.code, retryAfter: state.error && state.error.retryAfter, retryIn: state.retryIn, at: performance.now() }))
</script>`

type TrailEntry = { status: string; code?: string; retryAfter?: number; retryIn?: number; at: number }

type SiteOptions = { sessionSocket: Partial<Omit<SessionSocketServerOptions, 'session'>> }

async function listen(app: express.Express, options: SiteOptions | undefined): Promise<Site> {
  const server = http.createServer(app)
  let io: Server | undefined
  if (options) {
    io = new Server(server)
    const sessionMiddleware = session({ secret: 'refusal', resave: false, saveUninitialized: false })
    createSessionSocketServer(io, { session: sessionMiddleware, ...options.sessionSocket })
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    ...(io ? { io } : {}),
    close: () => {
      io?.close()
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

/** A site serving the page; with `sessionSocket`, also a session-socket server. */
function site(options?: SiteOptions): Promise<Site> {
  const app = express()
  app.use('/dist', express.static(browserDist))
  app.get('/favicon.ico', (_req, res) => res.status(204).end())
  app.get('/', (_req, res) => res.type('html').send(PAGE))
  return listen(app, options)
}

const sites: Site[] = []
test.afterEach(async () => {
  for (const s of sites.splice(0)) await s.close()
})

function trail(page: Page): Promise<TrailEntry[]> {
  return page.evaluate(() => (window as unknown as { trail: TrailEntry[] }).trail)
}

for (const transport of ['websocket', 'polling']) {
  test(`a page on a refused origin ends closed with FORBIDDEN over ${transport}`, async ({ page }) => {
    const server = await site({ sessionSocket: {} })
    const foreign = await site()
    sites.push(server, foreign)
    await page.goto(`${foreign.url}/?transport=${transport}&url=${encodeURIComponent(server.url)}`)
    await expect.poll(() => page.evaluate(() => (window as unknown as { client: { status: string } }).client.status), { timeout: 10_000 }).toBe('closed')
    const states = await trail(page)
    expect(states.at(-1)).toMatchObject({ status: 'closed', code: 'FORBIDDEN' })
    expect(states.map((s) => s.status)).not.toContain('offline')
    expect(server.io!.of('/').sockets.size).toBe(0)
  })
}

test('a rate-limited handshake waits the retryAfter the server gave', async ({ page }) => {
  const server = await site({ sessionSocket: { rateLimits: { handshakesPerIp: { limit: 1, windowMs: 3_000 } } } })
  sites.push(server)
  await page.goto(`${server.url}/?transport=websocket`)
  await expect.poll(() => page.evaluate(() => (window as unknown as { client: { status: string } }).client.status)).toBe('ready')
  // The server drops every socket; the tab's next handshake is over the address's budget.
  server.io!.disconnectSockets(true)
  await expect.poll(async () => (await trail(page)).some((s) => s.status === 'offline' && s.code === 'RATE_LIMITED'), { timeout: 10_000 }).toBe(true)
  await expect.poll(() => page.evaluate(() => (window as unknown as { client: { status: string } }).client.status), { timeout: 10_000 }).toBe('ready')
  const states = await trail(page)
  const limited = states.findIndex((s) => s.status === 'offline' && s.code === 'RATE_LIMITED')
  const entry = states[limited]!
  expect(entry.retryAfter).toBeGreaterThan(1_000)
  expect(entry.retryIn).toBeGreaterThanOrEqual(entry.retryAfter!)
  // The next try came no sooner than the server said.
  const retried = states.slice(limited + 1).find((s) => s.status === 'connecting')!
  expect(retried.at - entry.at).toBeGreaterThanOrEqual(entry.retryAfter! - 50)
})
