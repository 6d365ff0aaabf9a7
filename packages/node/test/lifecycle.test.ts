import { afterEach, describe, expect, it } from 'vitest'
import { MemoryStore } from 'express-session'
import { MemoryLinkStore, hashSecret } from '@session-socket/node'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { startCookieJarProxy, type CookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, waitForStatus } from '@session-socket/test-helpers/clients'
import { rawRegister } from './helpers/raw-client.js'

let server: TestServer | undefined
const proxies: CookieJarProxy[] = []

afterEach(async () => {
  closeAllClients()
  for (const proxy of proxies.splice(0)) await proxy.close()
  await server?.close()
  server = undefined
})

async function jar(): Promise<CookieJarProxy> {
  const proxy = await startCookieJarProxy(server!.port)
  proxies.push(proxy)
  return proxy
}

function endedReason(tab: { on(event: 'ended', fn: (reason: string) => void): () => void }): Promise<string> {
  return new Promise((resolve) => tab.on('ended', resolve))
}

describe('session lifecycle', () => {
  it('should end every tab with reason logout when the session is destroyed over HTTP, and refuse the token', async () => {
    const links = new MemoryLinkStore()
    server = await startTestServer({ links })
    const proxy = await jar()
    const browser = makeBrowser(proxy.url)
    const first = browser.open()
    await waitForStatus(first)
    const second = browser.open()
    await waitForStatus(second)
    const token = (await browser.tokens.get())!
    const ended = [endedReason(first), endedReason(second)]
    const response = await fetch(`${proxy.url}/logout`, { method: 'POST' })
    expect(response.status).toBe(204)
    expect(await Promise.all(ended)).toEqual(['logout', 'logout'])
    expect(first.state).toEqual({ status: 'ended', reason: 'logout' })
    expect((await links.getLink(hashSecret(token)))?.revokedAt).toBeTypeOf('number')
    // The browser forgot the revoked token; a client that kept it is not let back in.
    expect(await browser.tokens.get()).toBeNull()
    const replay = await rawRegister(server.url, { token, tabId: 'replay' })
    expect(replay.reply).toMatchObject({ restored: false, reason: 'revoked-token', newSession: true })
    replay.close()
  })

  it('should not reconnect an ended tab', async () => {
    server = await startTestServer()
    const proxy = await jar()
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    await fetch(`${proxy.url}/logout`, { method: 'POST' })
    await waitForStatus(tab, 'ended')
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(tab.status).toBe('ended')
    expect(server.io.of('/').sockets.size).toBe(0)
    await expect(tab.call('whoami')).rejects.toMatchObject({ code: 'SESSION_ENDED' })
  })

  it('should end a tab that was offline during logout when it comes back', async () => {
    server = await startTestServer()
    const proxy = await jar()
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    const cookie = [...proxy.jar].map(([k, v]) => `${k}=${v}`).join('; ')
    proxy.cut()
    proxy.jar.clear()
    await waitForStatus(tab, 'offline')
    await fetch(`${server.url}/logout`, { method: 'POST', headers: { Cookie: cookie } })
    expect(await endedReason(tab)).toBe('revoked')
  })

  it('should end tabs with disconnectSession and keep the HTTP session', async () => {
    server = await startTestServer()
    const proxy = await jar()
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    const { sessionId } = (await tab.call('whoami')) as { sessionId: string }
    const ended = new Promise((resolve) => tab.on('ended', resolve))
    await server.ss.disconnectSession(sessionId)
    expect(await ended).toBe('revoked')
    expect(((await (await fetch(`${proxy.url}/whoami`)).json()) as { sessionId: string }).sessionId).toBe(sessionId)
  })

  it('should end open tabs with reason expired when the session expires in the store', async () => {
    server = await startTestServer({ session: { cookie: { maxAge: 400 } }, ss: { sessionCheckInterval: 100 } })
    const proxy = await jar()
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    expect(await endedReason(tab)).toBe('expired')
    expect(tab.state).toEqual({ status: 'ended', reason: 'expired' })
  })

  it('should keep a session alive while its tab makes calls, as HTTP requests would', async () => {
    server = await startTestServer({ session: { cookie: { maxAge: 600 } }, ss: { sessionCheckInterval: 100, touchInterval: 100 } })
    const proxy = await jar()
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    for (let i = 0; i < 8; i++) {
      await tab.call('whoami')
      await new Promise((resolve) => setTimeout(resolve, 150))
    }
    expect(tab.status).toBe('ready')
  })

  it('should end the session of a user everywhere with endUser', async () => {
    const sessionStore = new MemoryStore()
    server = await startTestServer({ sessionStore, ss: { identify: (session) => session.userId } })
    const laptop = await jar()
    const phone = await jar()
    const tabs = []
    for (const proxy of [laptop, phone]) {
      await fetch(`${proxy.url}/login?user=bob`, { method: 'POST' })
      const tab = makeBrowser(proxy.url).open()
      await waitForStatus(tab)
      tabs.push(tab)
    }
    const stranger = makeBrowser((await jar()).url).open()
    await waitForStatus(stranger)
    const ended = tabs.map(endedReason)
    await server.ss.endUser('bob')
    expect(await Promise.all(ended)).toEqual(['logout', 'logout'])
    const who = (await (await fetch(`${laptop.url}/whoami`)).json()) as { userId: string | null }
    expect(who.userId).toBeNull()
    expect(stranger.status).toBe('ready')
  })

  it('should sign out everywhere a browser of the user that has no tab open, and leave another user\'s session alone', async () => {
    const sessionStore = new MemoryStore()
    const links = new MemoryLinkStore()
    server = await startTestServer({ sessionStore, links, ss: { identify: (session) => session.userId } })
    const storedSession = (sid: string) => new Promise((resolve) => sessionStore.get(sid, (_err, data) => resolve(data ?? null)))
    const signIn = async (user: string) => {
      const proxy = await jar()
      await fetch(`${proxy.url}/login?user=${user}`, { method: 'POST' })
      const browser = makeBrowser(proxy.url)
      const tab = browser.open()
      await waitForStatus(tab)
      const { sessionId } = (await tab.call('whoami')) as { sessionId: string }
      const cookie = [...proxy.jar].map(([k, v]) => `${k}=${v}`).join('; ')
      return { proxy, tab, sessionId, cookie, token: (await browser.tokens.get())! }
    }
    const a = await signIn('bob')
    const b = await signIn('bob')
    const stranger = await signIn('alice')
    // B's browser and the stranger's are closed: no tab of theirs is connected anywhere.
    b.tab.close()
    stranger.tab.close()
    await expect.poll(() => server!.io.of('/').sockets.size).toBe(1)

    const ended = endedReason(a.tab)
    await server.ss.endUser('bob')
    expect(await ended).toBe('logout')
    for (const { sessionId, token } of [a, b]) {
      expect(await storedSession(sessionId)).toBeNull()
      expect((await links.getLink(hashSecret(token)))?.revokedAt).toBeTypeOf('number')
    }
    // B comes back with its token and its cookie: refused, it lands in a fresh, anonymous session.
    const back = await rawRegister(server.url, { token: b.token, tabId: b.tab.tabId }, { Cookie: b.cookie })
    expect(back.reply).toMatchObject({ restored: false, reason: 'revoked-token', newSession: true })
    back.close()
    expect(((await (await fetch(`${b.proxy.url}/whoami`)).json()) as { userId: string | null }).userId).toBeNull()

    expect(await storedSession(stranger.sessionId)).toMatchObject({ userId: 'alice' })
    expect((await links.getLink(hashSecret(stranger.token)))?.revokedAt).toBeUndefined()
    const strangerBack = await rawRegister(server.url, { token: stranger.token, tabId: stranger.tab.tabId }, { Cookie: stranger.cookie })
    expect(strangerBack.reply).toMatchObject({ restored: true, reason: null })
    strangerBack.close()
  })

  it('should not end a session the user has left since its tab was last seen, and correct what the store says of it', async () => {
    const sessionStore = new MemoryStore()
    const links = new MemoryLinkStore()
    server = await startTestServer({
      sessionStore,
      links,
      ss: { identify: (session) => session.userId },
      // Changes the user over HTTP without regenerate(): session-socket hears nothing of it.
      setup: (_ss, app) =>
        app.post('/switch', (req, res) => {
          req.session.userId = String(req.query.user)
          res.status(204).end()
        }),
    })
    const proxy = await jar()
    await fetch(`${proxy.url}/login?user=bob`, { method: 'POST' })
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    const { sessionId } = (await tab.call('whoami')) as { sessionId: string }
    tab.close()
    await expect.poll(() => server!.io.of('/').sockets.size).toBe(0)
    expect(await links.userSessions('bob', Date.now())).toEqual([sessionId])
    expect((await fetch(`${proxy.url}/switch?user=carol`, { method: 'POST' })).status).toBe(204)

    await server.ss.endUser('bob')
    expect(((await (await fetch(`${proxy.url}/whoami`)).json()) as { userId: string | null }).userId).toBe('carol')
    expect(await links.userSessions('bob', Date.now())).toEqual([])
    expect(await links.userSessions('carol', Date.now())).toEqual([sessionId])
  })

  it('should record the user a call signs in, so that endUser reaches the session once its tab is gone', async () => {
    const sessionStore = new MemoryStore()
    server = await startTestServer({
      sessionStore,
      ss: { identify: (session) => session.userId },
      setup: (ss) =>
        ss.method('signIn', (params: { user: string }, { session }) => {
          session!.userId = params.user
          return null
        }),
    })
    const proxy = await jar()
    const browser = makeBrowser(proxy.url)
    const tab = browser.open()
    await waitForStatus(tab)
    const { sessionId } = (await tab.call('whoami')) as { sessionId: string }
    await tab.call('signIn', { user: 'dave' })
    await expect.poll(() => server!.links.userSessions('dave', Date.now())).toEqual([sessionId])
    tab.close()
    await expect.poll(() => server!.io.of('/').sockets.size).toBe(0)

    await server.ss.endUser('dave')
    expect(await new Promise((resolve) => sessionStore.get(sessionId, (_err, data) => resolve(data ?? null)))).toBeNull()
    const back = await rawRegister(server.url, { token: (await browser.tokens.get())!, tabId: tab.tabId })
    expect(back.reply).toMatchObject({ restored: false, reason: 'revoked-token' })
    back.close()
  })
})

describe('session expiry with changing calls', () => {
  it('should keep a session alive while its tab makes calls that change it', async () => {
    server = await startTestServer({ session: { cookie: { maxAge: 600 } }, ss: { sessionCheckInterval: 100, touchInterval: 100 } })
    const proxy = await jar()
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    for (let i = 0; i < 8; i++) {
      await tab.call('counter.increment')
      await new Promise((resolve) => setTimeout(resolve, 150))
    }
    expect(tab.status).toBe('ready')
    expect(await tab.call('counter.increment')).toEqual({ count: 9 })
  })
})
