import { afterEach, describe, expect, it } from 'vitest'
import { io as ioClient } from 'socket.io-client'
import { EVENTS, PROTOCOL_VERSION } from '@session-socket/protocol'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { startCookieJarProxy, type CookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, nextStatus, waitForStatus } from '@session-socket/test-helpers/clients'
import { MemoryStore } from 'express-session'
import signature from 'cookie-signature'
import { MemoryLinkStore, hashSecret } from '@session-socket/node'

let server: TestServer | undefined
let proxy: CookieJarProxy | undefined

afterEach(async () => {
  closeAllClients()
  await proxy?.close()
  await server?.close()
  proxy = server = undefined
})

async function whoami(url: string, jar: CookieJarProxy) {
  const response = await fetch(`${jar.url}/whoami`)
  return (await response.json()) as { sessionId: string; count: number }
}

describe('register', () => {
  it('should give a first-time visitor a session, a token and a cookie from the handshake alone', async () => {
    server = await startTestServer()
    proxy = await startCookieJarProxy(server.port)
    const browser = makeBrowser(proxy.url)
    const tab = browser.open()
    await waitForStatus(tab)
    // The SDK's provisional cookie, never the session cookie itself (it could replace a sign-in's).
    expect(proxy.jar.has('connect.sid.ss')).toBe(true)
    expect(proxy.jar.has('connect.sid')).toBe(false)
    expect(await browser.tokens.get()).toMatch(/^[A-Za-z0-9_-]{32}$/)
    const viaSocket = await tab.call('whoami')
    const viaHttp = await whoami(server.url, proxy)
    expect(viaHttp.sessionId).toBe((viaSocket as { sessionId: string }).sessionId)
  })

  it('should restore the same session through the token when the cookie is lost', async () => {
    server = await startTestServer()
    proxy = await startCookieJarProxy(server.port)
    const browser = makeBrowser(proxy.url)
    const tab = browser.open()
    await waitForStatus(tab)
    const before = (await tab.call('whoami')) as { sessionId: string }
    proxy.jar.clear()
    proxy.cut()
    await waitForStatus(tab, 'offline')
    const state = await waitForStatus(tab, 'ready')
    expect(state).toMatchObject({ restored: true, reason: null })
    const after = (await tab.call('whoami')) as { sessionId: string }
    expect(after.sessionId).toBe(before.sessionId)
    // The cookie came back through POST /restore: plain HTTP sees the same session again.
    expect((await whoami(server.url, proxy)).sessionId).toBe(before.sessionId)
  })

  it('should answer UNREGISTERED to a raw client that calls without registering', async () => {
    server = await startTestServer()
    const raw = ioClient(server.url, { transports: ['websocket'], forceNew: true })
    try {
      await new Promise<void>((resolve) => raw.on('connect', () => resolve()))
      const reply = await raw.emitWithAck(EVENTS.CALL, { id: 'a1', m: 'whoami' })
      expect(reply).toEqual({ ok: false, e: { code: 'UNREGISTERED', message: expect.stringContaining('register first') } })
      const registered = await raw.emitWithAck(EVENTS.REGISTER, { v: PROTOCOL_VERSION, token: null, tabId: 'raw-tab' })
      expect(registered).toMatchObject({ restored: false, reason: 'no-token', tabId: 'raw-tab' })
      const after = await raw.emitWithAck(EVENTS.CALL, { id: 'a2', m: 'whoami' })
      expect(after).toMatchObject({ ok: true, r: { tabId: 'raw-tab' } })
    } finally {
      raw.close()
    }
  })

  it('should keep every tab in its session across a server restart with the same stores', async () => {
    const sessionStore = new MemoryStore()
    const links = new MemoryLinkStore()
    server = await startTestServer({ sessionStore, links })
    const port = server.port
    proxy = await startCookieJarProxy(port)
    const browser = makeBrowser(proxy.url)
    // One after the other: Node has no Web Locks to serialise two tabs' first register.
    const tabs = [browser.open()]
    await waitForStatus(tabs[0]!)
    tabs.push(browser.open())
    await waitForStatus(tabs[1]!)
    const before = await Promise.all(tabs.map((tab) => tab.call('whoami') as Promise<{ sessionId: string; tabId: string }>))
    await server.close()
    await Promise.all(tabs.map((tab) => waitForStatus(tab, 'offline')))
    server = await startTestServer({ sessionStore, links, port })
    await Promise.all(tabs.map((tab) => waitForStatus(tab, 'ready')))
    const after = await Promise.all(tabs.map((tab) => tab.call('whoami') as Promise<{ sessionId: string; tabId: string }>))
    expect(after).toEqual(before)
    expect(new Set(after.map((a) => a.tabId)).size).toBe(2)
    expect(tabs.map((tab) => tab.state)).toEqual([
      { status: 'ready', restored: true, reason: null },
      { status: 'ready', restored: true, reason: null },
    ])
  })

  it('should accept a cookie signed with the previous secret after a rotation to [new, old]', async () => {
    const sessionStore = new MemoryStore()
    const links = new MemoryLinkStore()
    server = await startTestServer({ sessionStore, links, secret: 'old secret' })
    const port = server.port
    proxy = await startCookieJarProxy(port)
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    const before = (await tab.call('whoami')) as { sessionId: string }
    const cookie = proxy.jar.get('connect.sid')
    await server.close()
    await waitForStatus(tab, 'offline')
    server = await startTestServer({ sessionStore, links, port, secret: ['new secret', 'old secret'] })
    await waitForStatus(tab, 'ready')
    expect(((await tab.call('whoami')) as { sessionId: string }).sessionId).toBe(before.sessionId)
    // The handshake accepted the old cookie as it was: nothing had to be restored or re-signed.
    expect(proxy.jar.get('connect.sid')).toBe(cookie)
    expect((await whoami(server.url, proxy)).sessionId).toBe(before.sessionId)
  })

  it('should restore the session and re-sign the cookie when the secret changed entirely', async () => {
    const sessionStore = new MemoryStore()
    const links = new MemoryLinkStore()
    server = await startTestServer({ sessionStore, links, secret: 'old secret' })
    const port = server.port
    proxy = await startCookieJarProxy(port)
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    const before = (await tab.call('whoami')) as { sessionId: string }
    await server.close()
    await waitForStatus(tab, 'offline')
    server = await startTestServer({ sessionStore, links, port, secret: 'brand new secret' })
    const state = await waitForStatus(tab, 'ready')
    expect(state).toMatchObject({ restored: true })
    expect(((await tab.call('whoami')) as { sessionId: string }).sessionId).toBe(before.sessionId)
    // The jar now holds a (provisional) cookie signed with the new secret, naming the same session.
    const value = decodeURIComponent(proxy.jar.get('connect.sid.ss')!).slice(2)
    expect(signature.unsign(value, 'brand new secret')).toBe(before.sessionId)
    expect((await whoami(server.url, proxy)).sessionId).toBe(before.sessionId)
  })

  it('should let a valid cookie of another live session win over the token', async () => {
    server = await startTestServer()
    proxy = await startCookieJarProxy(server.port)
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    const before = (await tab.call('whoami')) as { sessionId: string }
    // The user starts over over HTTP in a new session and puts something in it.
    proxy.jar.clear()
    await fetch(`${proxy.url}/count`, { method: 'POST' })
    const fresh = await whoami(server.url, proxy)
    expect(fresh.sessionId).not.toBe(before.sessionId)
    proxy.cut()
    await waitForStatus(tab, 'offline')
    const state = await waitForStatus(tab, 'ready')
    expect(state).toMatchObject({ restored: false, reason: 'cookie-session' })
    expect(((await tab.call('whoami')) as { sessionId: string }).sessionId).toBe(fresh.sessionId)
  })

  it('should not let an empty session made by a parallel cookieless request win over the token', async () => {
    server = await startTestServer()
    proxy = await startCookieJarProxy(server.port)
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    await tab.call('counter.increment')
    const before = (await tab.call('whoami')) as { sessionId: string }
    // A favicon request raced the first cookie: it got (and set) a second, empty session.
    proxy.jar.clear()
    const empty = await whoami(server.url, proxy)
    expect(empty.sessionId).not.toBe(before.sessionId)
    proxy.cut()
    await waitForStatus(tab, 'offline')
    expect(await waitForStatus(tab, 'ready')).toMatchObject({ restored: true, reason: null })
    expect(((await tab.call('whoami')) as { sessionId: string; count: number })).toMatchObject({ sessionId: before.sessionId, count: 1 })
    // The cookie was restored to the token's session, so HTTP agrees again.
    expect(await whoami(server.url, proxy)).toMatchObject({ sessionId: before.sessionId, count: 1 })
  })

  it.each([
    ['unknown-token', async () => 'x'.repeat(32)],
    ['revoked-token', async (links: MemoryLinkStore, sessionId: string) => {
      await links.putLink(hashSecret('r'.repeat(32)), { sessionId, createdAt: Date.now(), lastSeenAt: Date.now(), expiresAt: Date.now() + 60_000, revokedAt: Date.now() })
      return 'r'.repeat(32)
    }],
    ['expired-token', async (links: MemoryLinkStore, sessionId: string) => {
      await links.putLink(hashSecret('e'.repeat(32)), { sessionId, createdAt: 0, lastSeenAt: 0, expiresAt: 1 })
      return 'e'.repeat(32)
    }],
  ] as const)('should mint a fresh token and say %s when the token cannot be used', async (reason, makeToken) => {
    const links = new MemoryLinkStore()
    server = await startTestServer({ links })
    proxy = await startCookieJarProxy(server.port)
    const { sessionId } = await whoami(server.url, proxy)
    const browser = makeBrowser(proxy.url)
    const token = await makeToken(links, sessionId)
    await browser.tokens.set(token)
    const tab = browser.open()
    const state = await waitForStatus(tab)
    expect(state).toMatchObject({ restored: false, reason })
    const stored = await browser.tokens.get()
    expect(stored).not.toBe(token)
    expect(await links.getLink(hashSecret(stored!))).toMatchObject({ sessionId })
  })

  it('should read the token from storage again at every register', async () => {
    server = await startTestServer()
    const proxyA = await startCookieJarProxy(server.port)
    proxy = await startCookieJarProxy(server.port)
    try {
      // Browser A has a session; browser B's storage is then given A's token, as another tab would write it.
      const a = makeBrowser(proxyA.url)
      const tabA = a.open()
      await waitForStatus(tabA)
      const sessionA = ((await tabA.call('whoami')) as { sessionId: string }).sessionId
      const b = makeBrowser(proxy.url)
      const tabB = b.open()
      await waitForStatus(tabB)
      await b.tokens.set((await a.tokens.get())!)
      proxy.jar.clear()
      proxy.cut()
      await waitForStatus(tabB, 'offline')
      await waitForStatus(tabB, 'ready')
      expect(((await tabB.call('whoami')) as { sessionId: string }).sessionId).toBe(sessionA)
    } finally {
      await proxyA.close()
    }
  })

  it('should name the user on the session\'s links when its tab signs in over HTTP, and write nothing more on reconnects', async () => {
    class CountingStore extends MemoryLinkStore {
      userWrites = 0
      override setSessionUser(sessionId: string, userId: string | null): Promise<number> {
        this.userWrites++
        return super.setSessionUser(sessionId, userId)
      }
    }
    const links = new CountingStore()
    server = await startTestServer({ links, ss: { identify: (session) => session.userId } })
    proxy = await startCookieJarProxy(server.port)
    const browser = makeBrowser(proxy.url)
    const tab = browser.open()
    await waitForStatus(tab)
    const token = (await browser.tokens.get())!
    expect(await links.getLink(hashSecret(token))).not.toHaveProperty('userId')

    // Sign-in over HTTP: regenerate() makes a new session; the tab rejoins with the new cookie
    // and its token moves there (reason cookie-session), now naming the user.
    const rejoining = nextStatus(tab, (state) => state.status === 'rejoining')
    const { sessionId } = (await (await fetch(`${proxy.url}/login?user=erin`, { method: 'POST' })).json()) as { sessionId: string }
    await rejoining
    await waitForStatus(tab, 'ready')
    expect(await links.getLink(hashSecret(token))).toMatchObject({ sessionId, userId: 'erin' })
    expect(await links.userSessions('erin', Date.now())).toEqual([sessionId])
    const writes = links.userWrites
    expect(writes).toBe(1)

    for (let i = 0; i < 3; i++) {
      proxy.cut()
      await waitForStatus(tab, 'offline')
      await waitForStatus(tab, 'ready')
    }
    expect(links.userWrites).toBe(writes)
  })
})
