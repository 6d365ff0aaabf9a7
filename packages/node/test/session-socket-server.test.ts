import http from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { Server } from 'socket.io'
import session from 'express-session'
import { createSessionSocketServer } from '@session-socket/node'
import { memoryTabIdStorage } from '@session-socket/browser'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { startCookieJarProxy, type CookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, waitForStatus } from '@session-socket/test-helpers/clients'

let server: TestServer | undefined
let proxy: CookieJarProxy | undefined

afterEach(async () => {
  closeAllClients()
  await proxy?.close()
  await server?.close()
  proxy = server = undefined
})

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
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect((await server.ss.tabs(sessionId)).map((t) => t.tabId)).toEqual([a.tabId])
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

  it('should deliver toSession to every tab of the session and toTab to one tab only', async () => {
    server = await startTestServer()
    proxy = await startCookieJarProxy(server.port)
    const browser = makeBrowser(proxy.url)
    const a = browser.open()
    await waitForStatus(a)
    const b = browser.open()
    await waitForStatus(b)
    const other = makeBrowser(server.url).open()
    await waitForStatus(other)
    const { sessionId } = (await a.call('whoami')) as { sessionId: string }
    const got: string[] = []
    for (const [name, tab] of [['a', a], ['b', b], ['other', other]] as const) tab.on('news', (text: string) => got.push(`${name}:${text}`))
    server.ss.toSession(sessionId).emit('news', 'all')
    server.ss.toTab(b.tabId).emit('news', 'only-b')
    const deadline = Date.now() + 2000
    while (got.length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(got.sort()).toEqual(['a:all', 'b:all', 'b:only-b'])
  })

  it('should deliver toUser to every tab of every session of that user', async () => {
    server = await startTestServer({ ss: { identify: (s) => s.userId } })
    const laptop = await startCookieJarProxy(server.port)
    proxy = await startCookieJarProxy(server.port)
    try {
      const tabs = []
      for (const p of [laptop, proxy]) {
        await fetch(`${p.url}/login?user=carol`, { method: 'POST' })
        const tab = makeBrowser(p.url).open()
        await waitForStatus(tab)
        tabs.push(tab)
      }
      const got = tabs.map((tab) => new Promise((resolve) => tab.on('hello', resolve)))
      server.ss.toUser('carol').emit('hello', 'carol')
      expect(await Promise.all(got)).toEqual(['carol', 'carol'])
    } finally {
      await laptop.close()
    }
  })

  it('should move every tab of a session to the new user room when one tab\'s call changes the user', async () => {
    server = await startTestServer({
      ss: { identify: (s) => s.userId },
      setup(ss) {
        ss.method('become', (params: { user: string }, ctx) => {
          ctx.session!.userId = params.user
          return null
        })
      },
    })
    proxy = await startCookieJarProxy(server.port)
    await fetch(`${proxy.url}/login?user=dana`, { method: 'POST' })
    const browser = makeBrowser(proxy.url)
    const caller = browser.open()
    await waitForStatus(caller)
    const other = browser.open()
    await waitForStatus(other)
    await caller.call('become', { user: 'erin' })
    const got: string[] = []
    for (const [name, tab] of [['caller', caller], ['other', other]] as const) tab.on('hello', (to: string) => got.push(`${name}:${to}`))
    server.ss.toUser('erin').emit('hello', 'erin')
    server.ss.toUser('dana').emit('hello', 'dana')
    const deadline = Date.now() + 2000
    while (got.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(got.sort()).toEqual(['caller:erin', 'other:erin'])
  })

  it('should end tabs with disconnectSession and keep the HTTP session', async () => {
    server = await startTestServer()
    proxy = await startCookieJarProxy(server.port)
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    const { sessionId } = (await tab.call('whoami')) as { sessionId: string }
    const ended = new Promise((resolve) => tab.on('ended', resolve))
    await server.ss.disconnectSession(sessionId)
    expect(await ended).toBe('revoked')
    expect(((await (await fetch(`${proxy.url}/whoami`)).json()) as { sessionId: string }).sessionId).toBe(sessionId)
  })

  it('should tell tab:open and tab:close as tabs come and go', async () => {
    const events: string[] = []
    server = await startTestServer({
      setup(ss) {
        ss.on('tab:open', (e) => events.push(`open:${e.tabId}:${e.restored}`))
        ss.on('tab:close', (e) => events.push(`close:${e.tabId}`))
      },
    })
    const tab = makeBrowser(server.url).open()
    await waitForStatus(tab)
    const id = tab.tabId
    tab.close()
    const deadline = Date.now() + 2000
    while (events.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    expect(events).toEqual([`open:${id}:false`, `close:${id}`])
  })
})
