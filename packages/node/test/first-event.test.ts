import { afterEach, describe, expect, it } from 'vitest'
import { io as ioClient } from 'socket.io-client'
import { EVENTS, PROTOCOL_VERSION } from '@session-socket/protocol'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'

let server: TestServer | undefined

afterEach(async () => {
  await server?.close()
  server = undefined
})

/** The demo's tab:open broadcast (the session's tab list to every tab of it), and more emits besides. */
function startWithBroadcasts(): Promise<TestServer> {
  return startTestServer({
    setup(ss) {
      ss.on('tab:open', ({ sessionId, tabId }) => {
        ss.toSession(sessionId).emit('opened', tabId)
        ss.toTab(tabId).emit('hello')
        void ss.tabs(sessionId).then((tabs) => ss.toSession(sessionId).emit('tabs', tabs))
      })
    },
  }).then((started) => {
    // An app's own connection listener, added after session-socket's.
    started.io.on('connection', (socket) => socket.emit('welcome'))
    return started
  })
}

/** Connects a bare socket.io-client with register in the CONNECT auth; resolves with the first event it receives. */
function firstEvent(url: string, transport: 'polling' | 'websocket', tabId: string): Promise<string> {
  const socket = ioClient(url, { transports: [transport], forceNew: true, reconnection: false, auth: { v: PROTOCOL_VERSION, token: null, tabId } })
  return new Promise<string>((resolve, reject) => {
    socket.onAny((event: string) => resolve(event))
    socket.once('connect_error', reject)
  }).finally(() => socket.close())
}

/** Connects without auth and registers with the ss:register event; resolves with the events that arrived before its ack. */
async function eventsBeforeRegisterAck(url: string, tabId: string): Promise<string[]> {
  const socket = ioClient(url, { transports: ['websocket'], forceNew: true, reconnection: false })
  const seen: string[] = []
  socket.onAny((event: string) => seen.push(event))
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve())
      socket.once('connect_error', reject)
    })
    // The ack's callback runs as its packet is read: packets behind it in the same read come after.
    return await new Promise<string[]>((resolve) => socket.emit(EVENTS.REGISTER, { v: PROTOCOL_VERSION, token: null, tabId }, () => resolve([...seen])))
  } finally {
    socket.close()
  }
}

describe('the first event of a socket', () => {
  it.each([['websocket'], ['polling']] as const)('should be ss:registered over %s, before the tab:open broadcasts, room emits and connection-listener emits', async (transport) => {
    server = await startWithBroadcasts()
    for (let i = 0; i < 20; i++) {
      expect(await firstEvent(server.url, transport, `tab${i}`)).toBe(EVENTS.REGISTERED)
    }
  })

  it('should be the register ack for a client that registers with the ss:register event', async () => {
    server = await startWithBroadcasts()
    for (let i = 0; i < 10; i++) {
      // The app's connection listener may speak before register (the socket is not ours yet);
      // nothing emitted to the rooms register joined comes before the ack.
      const before = await eventsBeforeRegisterAck(server.url, `late${i}`)
      expect(before.filter((event) => event !== 'welcome')).toEqual([])
    }
  })
})
