import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { readFileSync } from 'node:fs'
import { expect, test } from '@playwright/test'
import express from 'express'
import session from 'express-session'
import { Server } from 'socket.io'
import { createSessionSocketServer } from '../packages/node/dist/index.js'

const socketIoClient = readFileSync(fileURLToPath(new URL('../node_modules/socket.io-client/dist/socket.io.min.js', import.meta.url)), 'utf8')

interface App {
  url: string
  /** Session ids of the sockets the server accepted. */
  accepted: string[]
  close(): Promise<void>
}

async function listen(app: express.Express, setup?: (io: Server) => void): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(app)
  setup?.(new Server(server))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

/** The victim: a real app; `guarded` uses session-socket, otherwise the plain express-session recipe. */
async function startVictim(guarded: boolean): Promise<App> {
  const sessionMiddleware = session({ secret: 'victim', resave: false, saveUninitialized: true, cookie: { httpOnly: true, sameSite: 'lax' } })
  const app = express()
  app.use(sessionMiddleware)
  app.get('/', (req, res) => {
    ;(req.session as unknown as { user: string }).user = 'victim'
    res.send('<!doctype html><title>victim</title>signed in')
  })
  const accepted: string[] = []
  const server = await listen(app, (io) => {
    if (guarded) {
      createSessionSocketServer(io, { session: sessionMiddleware })
    } else {
      // socket.io's documented recipe, which trusts any Origin.
      io.engine.use(sessionMiddleware)
    }
    io.on('connection', (socket) => {
      accepted.push((socket.request as unknown as { sessionID: string }).sessionID)
    })
  })
  return { ...server, accepted }
}

/** The attacker's page, on another port of the same host: same site, so the cookie rides along. */
async function startAttacker(): Promise<{ url: string; close(): Promise<void> }> {
  const app = express()
  app.get('/io.js', (_req, res) => res.type('js').send(socketIoClient))
  app.get('/', (_req, res) => res.send('<!doctype html><title>attacker</title><script src="/io.js"></script>'))
  return listen(app)
}

function attack(page: import('@playwright/test').Page, victimUrl: string, transports: string[]) {
  return page.evaluate(
    ({ url, transports }) =>
      new Promise<string>((resolve) => {
        const socket = (window as unknown as { io: (url: string, opts: object) => any }).io(url, {
          transports,
          withCredentials: true,
          reconnection: false,
          auth: { v: 1, token: null, tabId: 'attacker' },
        })
        socket.on('connect', () => {
          socket.close()
          resolve('connected')
        })
        socket.on('connect_error', () => {
          socket.close()
          resolve('refused')
        })
        setTimeout(() => resolve('timeout'), 5000)
      }),
    { url: victimUrl, transports },
  )
}

for (const transports of [['websocket'], ['polling']]) {
  test(`a page on another origin cannot open the victim's socket with its cookie (${transports[0]})`, async ({ page }) => {
    const victim = await startVictim(true)
    const attacker = await startAttacker()
    try {
      await page.goto(victim.url)
      const cookies = await page.context().cookies(victim.url)
      expect(cookies.map((c) => c.name)).toContain('connect.sid')
      await page.goto(attacker.url)
      expect(await attack(page, victim.url, transports)).toBe('refused')
      expect(victim.accepted).toEqual([])
    } finally {
      await attacker.close()
      await victim.close()
    }
  })
}

test('the same attack succeeds against the plain express-session recipe (the test can fail)', async ({ page }) => {
  const victim = await startVictim(false)
  const attacker = await startAttacker()
  try {
    await page.goto(victim.url)
    const victimSession = decodeURIComponent((await page.context().cookies(victim.url)).find((c) => c.name === 'connect.sid')!.value).slice(2).split('.')[0]
    await page.goto(attacker.url)
    expect(await attack(page, victim.url, ['websocket'])).toBe('connected')
    expect(victim.accepted).toEqual([victimSession])
  } finally {
    await attacker.close()
    await victim.close()
  }
})
