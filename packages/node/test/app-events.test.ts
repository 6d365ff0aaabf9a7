import { afterEach, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { rawRegister, type RawClient } from './helpers/raw-client.js'

let server: TestServer | undefined
const raws: RawClient[] = []

afterEach(async () => {
  for (const raw of raws.splice(0)) raw.close()
  await server?.close()
  server = undefined
})

describe('reserved event names', () => {
  it("should refuse to emit the browser SDK's own event names (status, ready, ended, gap) and ss: names to tabs, naming the fix", async () => {
    server = await startTestServer({ ss: { identify: (s) => s.userId } })
    const raw = await rawRegister(server.url, { token: null, tabId: 'reserved-tab' })
    raws.push(raw)
    const { ss } = server
    const sessionId = ((await raw.socket.emitWithAck('ss:call', { id: 'c1', m: 'whoami' })) as { r: { sessionId: string } }).r.sessionId
    const got: unknown[] = []
    raw.socket.onAny((event: string, ...args: unknown[]) => got.push([event, ...args]))

    for (const name of ['status', 'ready', 'ended', 'gap', 'ss:ended']) {
      expect(() => ss.toSession(sessionId).emit(name, { foreign: true })).toThrow(`"${name}" is a reserved event name`)
      expect(() => ss.toTab('reserved-tab').emit(name)).toThrow(`ss.toTab(…).emit('${name}')`)
      expect(() => ss.toUser('alice').emit(name)).toThrow(/reserved event name/)
      // Through a chain too, as Socket.IO's own reserved names are.
      expect(() => ss.toSession(sessionId).volatile.emit(name)).toThrow(/reserved event name/)
      expect(() => ss.toSession(sessionId).except('tab:x').compress(false).emit(name)).toThrow(/reserved event name/)
      await expect(ss.toSession(sessionId).timeout(100).emitWithAck(name)).rejects.toThrow(/reserved event name/)
      await expect(ss.toSession(sessionId, { durable: true }).emit(name)).rejects.toThrow(/reserved event name/)
      await expect(ss.toTab('reserved-tab', { durable: true }).emit(name)).rejects.toThrow(/reserved event name/)
    }
    expect(() => ss.toSession(sessionId).emit('status')).toThrow('give the event another name, e.g. "app:status"')

    // Any other name goes out as before, chains included.
    ss.toSession(sessionId).emit('app:status', 1)
    ss.toSession(sessionId).compress(false).emit('news', 2)
    ss.toTab('reserved-tab').except('tab:someone-else').emit('news', 3)
    await expect.poll(() => got).toEqual([['app:status', 1], ['news', 2], ['news', 3]])
  })
})
