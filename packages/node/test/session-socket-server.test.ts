import http from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { Server } from 'socket.io'
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client'
import session from 'express-session'
import { createSessionSocketServer } from '@session-socket/node'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { startCookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, waitForStatus } from '@session-socket/test-helpers/clients'

describe('createSessionSocketServer', () => {
  it('should throw at once, naming the fix, when misused', () => {
    const io = new Server(http.createServer())
    try {
      expect(() => createSessionSocketServer({} as Server, { session: session({ secret: 's' }) })).toThrow(/io must be a Socket.IO Server/)
      expect(() => createSessionSocketServer(io, {} as never)).toThrow(/session must be your express-session middleware/)
      expect(() => createSessionSocketServer(io, { session: session({ secret: 's' }), path: 'restore/' })).toThrow(/path must start with "\/"/)
    } finally {
      io.close()
    }
  })
})

describe('createSessionSocketServer(io, { namespace })', () => {
  let server: TestServer | undefined
  const sockets: ClientSocket[] = []
  afterEach(async () => {
    closeAllClients()
    for (const socket of sockets.splice(0)) socket.close()
    await server?.close()
    server = undefined
  })

  it("should serve tabs on namespace '/chat' (url: origin + '/chat'): register, calls, room emits and cookie restore", async () => {
    server = await startTestServer({ ss: { namespace: '/chat' } })
    const proxy = await startCookieJarProxy(server.port)
    try {
      const tab = makeBrowser(`${proxy.url}/chat`).open()
      await waitForStatus(tab)
      const { sessionId } = (await tab.call('whoami')) as { sessionId: string }
      const news = new Promise((resolve) => tab.on('news', resolve))
      server.ss.toSession(sessionId).emit('news', 'to the session')
      await expect(news).resolves.toBe('to the session')
      expect(await server.ss.tabs(sessionId)).toHaveLength(1)
      // The restore route is on the server's origin, not under the namespace.
      proxy.jar.clear()
      expect(await tab.restoreCookie()).toEqual({ kept: true })
      expect(((await (await fetch(`${proxy.url}/whoami`)).json()) as { sessionId: string }).sessionId).toBe(sessionId)
    } finally {
      await proxy.close()
    }
  })

  it("should leave the app's own io() sockets working beside the client on the same server: it does not share its Manager", async () => {
    server = await startTestServer({ ss: { namespace: '/chat' } })
    server.io.of('/').on('connection', (socket) => socket.emit('hello', 'main'))
    server.io.of('/other').on('connection', (socket) => socket.emit('hello', 'other'))
    const tab = makeBrowser(`${server.url}/chat`).open()
    await waitForStatus(tab)
    // socket.io-client caches one Manager per server: had the client put its own there
    // (autoConnect and reconnection off), these would reuse it and never connect.
    for (const [path, expected] of [['/', 'main'], ['/other', 'other']] as const) {
      const own = ioClient(`${server.url}${path}`, { transports: ['websocket'] })
      sockets.push(own)
      await expect(new Promise((resolve) => own.once('hello', resolve))).resolves.toBe(expected)
    }
    expect(tab.socket.io).not.toBe(sockets[0]!.io)
    expect(tab.status).toBe('ready')
  })

  it('should throw at once, naming the fix, for a namespace that is not a name', () => {
    const io = new Server(http.createServer())
    try {
      expect(() => createSessionSocketServer(io, { session: session({ secret: 's' }), namespace: 'chat' })).toThrow(/namespace must be a Socket.IO namespace name starting with "\/", e.g. '\/chat'/)
      expect(() => createSessionSocketServer(io, { session: session({ secret: 's' }), namespace: /^\/org-\d+$/ as never })).toThrow(/one namespace, not a pattern/)
    } finally {
      io.close()
    }
  })
})
