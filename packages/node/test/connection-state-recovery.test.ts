import http from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { Server } from 'socket.io'
import session from 'express-session'
import { createSessionSocketServer } from '@session-socket/node'
import type { SessionSocket } from '@session-socket/browser'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { closeAllClients, makeBrowser, nextStatus, waitForStatus } from '@session-socket/test-helpers/clients'

let server: TestServer | undefined

afterEach(async () => {
  closeAllClients()
  await server?.close()
  server = undefined
})

/** Socket.IO's recovery, with register run on recovered sockets too. */
const recovery = { io: { connectionStateRecovery: { skipMiddlewares: false, maxDisconnectionDuration: 60_000 } } }

/** A tab that reconnects only when told (`tab.connect()`), so a test can act while it is away. */
function openTab(url: string): SessionSocket {
  return makeBrowser(url).open({ backoff: () => 60_000 })
}

/**
 * Drops the tab's connection from the server side, as a network failure would ("forced close",
 * a disconnection Socket.IO recovers), and resolves once the server has let the socket go.
 */
async function dropConnection(test: TestServer, tab: SessionSocket): Promise<void> {
  const gone = new Promise<void>((resolve) => test.ss.on('tab:close', () => resolve()))
  const offline = nextStatus(tab, (state) => state.status === 'offline')
  for (const socket of test.io.of('/').sockets.values()) socket.conn.close()
  await Promise.all([gone, offline])
}

describe('connectionStateRecovery', () => {
  it('should refuse skipMiddlewares: true, its default, at start-up with the fix in the message', () => {
    for (const connectionStateRecovery of [{}, { skipMiddlewares: true }]) {
      const io = new Server(http.createServer(), { connectionStateRecovery })
      try {
        expect(() => createSessionSocketServer(io, { session: session({ secret: 's', resave: false, saveUninitialized: false }) })).toThrow(
          /connectionStateRecovery skips middlewares by default.*Set connectionStateRecovery: \{ skipMiddlewares: false \}/,
        )
      } finally {
        io.close()
      }
    }
  })

  it('should register a recovered socket again (skipMiddlewares: false, pid and offset in the CONNECT auth): ready, same session and tab, missed events and app rooms recovered', async () => {
    server = await startTestServer(recovery)
    const test = server
    test.io.of('/').on('connection', (socket) => {
      if (!socket.recovered) void socket.join('lobby')
    })
    const tab = openTab(test.url)
    await waitForStatus(tab)
    const before = (await tab.call('whoami')) as { sessionId: string; tabId: string }
    const news: unknown[] = []
    tab.on('news', (n: unknown) => news.push(n))
    // A broadcast carries the offset socket.io-client sends back to recover from.
    test.ss.toSession(before.sessionId).emit('news', 1)
    await expect.poll(() => news).toEqual([1])

    await dropConnection(test, tab)
    test.io.to('lobby').emit('news', 2)
    tab.connect()
    await waitForStatus(tab)

    expect(tab.socket.recovered).toBe(true)
    await expect.poll(() => news).toEqual([1, 2])
    expect(await tab.call('whoami')).toMatchObject(before)
    const [socket] = test.io.of('/').sockets.values()
    expect([...socket!.rooms].sort()).toEqual([socket!.id, 'lobby', `session:${before.sessionId}`, `tab:${before.tabId}`].sort())
    expect(await test.ss.tabs(before.sessionId)).toHaveLength(1)
  })

  it('should not let a recovered socket keep a session that ended while it was away: the tab ends, and the socket leaves the old rooms', async () => {
    server = await startTestServer(recovery)
    const test = server
    const tab = openTab(test.url)
    await waitForStatus(tab)
    const { sessionId } = (await tab.call('whoami')) as { sessionId: string }
    test.ss.toSession(sessionId).emit('news', 1)
    await new Promise((resolve) => tab.on('news', resolve))

    await dropConnection(test, tab)
    await new Promise<void>((resolve, reject) => test.sessionStore.destroy(sessionId, (err) => (err ? reject(err) : resolve())))
    tab.connect()

    await expect(waitForStatus(tab, 'ended')).resolves.toEqual({ status: 'ended', reason: 'logout' })
    expect(tab.socket.recovered).toBe(true)
    expect(await test.ss.tabs(sessionId)).toEqual([])
    expect(test.io.of('/').adapter.rooms.get(`session:${sessionId}`)).toBeUndefined()
  })
})
