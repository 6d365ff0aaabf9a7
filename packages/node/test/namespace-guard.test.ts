import { afterEach, describe, expect, it } from 'vitest'
import { io as ioClient, type Socket } from 'socket.io-client'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { closeAllClients, makeBrowser, waitForStatus } from '@session-socket/test-helpers/clients'

let server: TestServer | undefined
const sockets: Socket[] = []

afterEach(async () => {
  closeAllClients()
  for (const socket of sockets.splice(0)) socket.close()
  await server?.close()
  server = undefined
})

/** The app's own socket.io-client socket, with its own auth, as an app would open one. */
function appSocket(url: string, auth: Record<string, unknown> = {}): Socket {
  const socket = ioClient(url, { transports: ['websocket'], forceNew: true, reconnection: false, auth })
  sockets.push(socket)
  return socket
}

function connected(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('connect_error', reject)
  })
}

describe('guardOtherNamespaces', () => {
  it("should close a session-socket client on a namespace it is not served on with NOT_FOUND naming the served one, instead of leaving it 'registering'", async () => {
    server = await startTestServer({ ss: { namespace: '/chat' } })
    const tab = makeBrowser(server.url).open()
    const state = await waitForStatus(tab, 'closed')
    expect(state).toMatchObject({ status: 'closed', error: { code: 'NOT_FOUND' } })
    expect(state.status === 'closed' && state.error?.message).toMatch(/not served on namespace '\/' but on '\/chat'/)
  })

  it('should also guard namespaces the app creates after createSessionSocketServer', async () => {
    server = await startTestServer({ setup: () => server?.io.of('/late') })
    server.io.of('/late').on('connection', (socket) => socket.emit('hello', 'app'))
    const tab = makeBrowser(`${server.url}/late`).open()
    await expect(waitForStatus(tab, 'closed')).resolves.toMatchObject({ error: { code: 'NOT_FOUND' } })
  })

  it("should let the app's own sockets through on its namespaces, whatever their auth", async () => {
    server = await startTestServer()
    server.io.of('/admin').use((socket, next) => (socket.handshake.auth.key === 'k' ? next() : next(new Error('no key'))))
    const own = appSocket(`${server.url}/admin`, { key: 'k' })
    await connected(own)
    expect(own.connected).toBe(true)
  })
})

describe("a namespace the server does not have", () => {
  it("should close the client with NOT_FOUND instead of retrying for ever", async () => {
    server = await startTestServer()
    const tab = makeBrowser(`${server.url}/nowhere`).open()
    const state = await waitForStatus(tab, 'closed')
    expect(state).toMatchObject({ status: 'closed', error: { code: 'NOT_FOUND' } })
    expect(state.status === 'closed' && state.error?.message).toMatch(/no namespace \/nowhere/)
  })
})
