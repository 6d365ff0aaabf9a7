import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import express from 'express'
import session from 'express-session'
import { Server } from 'socket.io'
import { createSessionSocketServer, type SessionSocketServer } from '@session-socket/node'
import { closeAllClients, makeBrowser, waitForStatus } from '@session-socket/test-helpers/clients'

let close: (() => Promise<void>) | undefined

afterEach(async () => {
  closeAllClients()
  await close?.()
  close = undefined
})

/** An app whose own io.use() runs before session-socket's, as `setup` arranges. */
async function startApp(setup: (io: Server) => void): Promise<{ url: string; io: Server; ss: SessionSocketServer }> {
  const sessionMiddleware = session({ secret: 'socket.data', resave: false, saveUninitialized: false })
  const app = express()
  const httpServer = http.createServer(app)
  const io = new Server(httpServer)
  setup(io)
  const ss = createSessionSocketServer(io, { session: sessionMiddleware, identify: () => 'ada', sessionCheckInterval: 0, sweepInterval: 0 })
  app.use(sessionMiddleware)
  app.use(ss.http())
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve))
  close = async () => {
    ss.close()
    io.disconnectSockets(true)
    httpServer.closeAllConnections()
    io.engine.close()
    await new Promise<void>((resolve) => httpServer.close(() => resolve()))
  }
  return { url: `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`, io, ss }
}

describe('socket.data', () => {
  it("should keep what the app's io.use() put in socket.data before session-socket registered: merged, never replaced", async () => {
    const seen: Record<string, unknown>[] = []
    const app = await startApp((io) => {
      io.use((socket, next) => {
        socket.data.plan = 'pro'
        // A key of session-socket's own (see SocketData): register sets it.
        socket.data.userId = 'from the app'
        next()
      })
      io.on('connection', (socket) => seen.push({ ...socket.data }))
    })
    const tab = makeBrowser(app.url).open()
    await waitForStatus(tab)
    await expect.poll(() => seen.length).toBe(1)
    expect(seen[0]).toMatchObject({ plan: 'pro', tabId: tab.tabId, userId: 'ada' })
    expect(seen[0]!.sessionId).toEqual(expect.any(String))
    const [remote] = await app.io.fetchSockets()
    expect(remote!.data).toMatchObject({ plan: 'pro', tabId: tab.tabId })
  })
})
