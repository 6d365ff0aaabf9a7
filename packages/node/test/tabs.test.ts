import { afterEach, describe, expect, it } from 'vitest'
import { memoryTabIdStorage } from '@session-socket/browser'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { startCookieJarProxy, type CookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, waitForStatus } from '@session-socket/test-helpers/clients'
import { rawRegister, type RawClient } from './helpers/raw-client.js'

let server: TestServer | undefined
let proxy: CookieJarProxy | undefined

afterEach(async () => {
  closeAllClients()
  await proxy?.close()
  await server?.close()
  proxy = server = undefined
})

describe('tabs', () => {
  it('should list the live tabs of a session, each with its own id', async () => {
    server = await startTestServer()
    proxy = await startCookieJarProxy(server.port)
    const browser = makeBrowser(proxy.url)
    const a = browser.open()
    await waitForStatus(a)
    const b = browser.open()
    await waitForStatus(b)
    const { sessionId } = (await a.call('whoami')) as { sessionId: string }
    const tabs = await server.ss.tabs(sessionId)
    expect(tabs.map((t) => t.tabId).sort()).toEqual([a.tabId, b.tabId].sort())
    expect(tabs.every((t) => typeof t.since === 'number' && typeof t.socketId === 'string')).toBe(true)
    b.close()
    await expect.poll(async () => (await server!.ss.tabs(sessionId)).map((t) => t.tabId)).toEqual([a.tabId])
  })

  it('should replace the old socket when the same tab registers again', async () => {
    server = await startTestServer()
    proxy = await startCookieJarProxy(server.port)
    const browser = makeBrowser(proxy.url)
    const tabIdStorage = memoryTabIdStorage()
    const before = browser.open({ tabIdStorage })
    await waitForStatus(before)
    const { sessionId } = (await before.call('whoami')) as { sessionId: string }
    // The reloaded page comes back with the same tab id while the old socket still looks alive.
    const after = browser.open({ tabIdStorage })
    await waitForStatus(after)
    expect(after.tabId).toBe(before.tabId)
    await waitForStatus(before, 'closed')
    const tabs = await server.ss.tabs(sessionId)
    expect(tabs).toHaveLength(1)
    expect(tabs[0]!.tabId).toBe(after.tabId)
  })

  it('should give a new tab id when the id is live in another session', async () => {
    server = await startTestServer()
    const first = makeBrowser(server.url).open({ tabIdStorage: memoryTabIdStorage('shared-tab-id') })
    await waitForStatus(first)
    const stranger = makeBrowser(server.url).open({ tabIdStorage: memoryTabIdStorage('shared-tab-id') })
    await waitForStatus(stranger)
    expect(first.tabId).toBe('shared-tab-id')
    expect(stranger.tabId).not.toBe('shared-tab-id')
    expect(first.status).toBe('ready')
  })

  describe('a tab id is not a capability', () => {
    /** Collects the durable events a raw client gets (it never acknowledges them). */
    function events(client: RawClient): Array<{ seq: number; e: string }> {
      const got: Array<{ seq: number; e: string }> = []
      client.socket.on('ss:event', (payload: { seq: number; e: string }) => got.push(payload))
      return got
    }

    async function victimAway(): Promise<{ sessionId: string; reply: unknown }> {
      const victim = await rawRegister(server!.url, { token: null, tabId: 'victim-tab' })
      const reply = await victim.socket.emitWithAck('ss:call', { id: 'c1', m: 'whoami' })
      const received = events(victim)
      await server!.ss.toTab('victim-tab', { durable: true }).emit('secret', 'for the victim')
      await expect.poll(() => received.length).toBe(1)
      victim.close()
      await expect.poll(async () => (await server!.ss.tabs((reply as { r: { sessionId: string } }).r.sessionId)).length).toBe(0)
      return { sessionId: (reply as { r: { sessionId: string } }).r.sessionId, reply }
    }

    it('should give another session a fresh id for the id of a tab that is away, with none of its replies or events', async () => {
      server = await startTestServer()
      const victim = await victimAway()
      const attacker = await rawRegister(server.url, { token: null, tabId: 'victim-tab', seq: 0 })
      const received = events(attacker)
      try {
        expect(attacker.reply.tabId).not.toBe('victim-tab')
        // A resend of the victim's call id runs anew, in the attacker's own session.
        const reply = (await attacker.socket.emitWithAck('ss:call', { id: 'c1', m: 'whoami' })) as { r: { sessionId: string; tabId: string } }
        expect(reply.r.sessionId).not.toBe(victim.sessionId)
        expect(reply.r.tabId).toBe(attacker.reply.tabId)
        // Nothing of the victim's stream is replayed.
        await attacker.socket.emitWithAck('ss:call', { id: 'c2', m: 'whoami' })
        expect(received).toEqual([])
      } finally {
        attacker.close()
      }
    })

    it('should give the tab its id back, with its stream, when it returns to its own session', async () => {
      server = await startTestServer()
      proxy = await startCookieJarProxy(server.port)
      const tabIdStorage = memoryTabIdStorage()
      const browser = makeBrowser(proxy.url)
      const before = browser.open({ tabIdStorage })
      await waitForStatus(before)
      const id = before.tabId
      proxy.cut()
      await waitForStatus(before, 'offline')
      before.close()
      const again = browser.open({ tabIdStorage })
      await waitForStatus(again)
      expect(again.tabId).toBe(id)
    })
  })
})
