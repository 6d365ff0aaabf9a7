import { afterEach, describe, expect, it } from 'vitest'
import { MemoryStore, type Session } from 'express-session'
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

/**
 * A victim signs in (`signIn`) while an attacker holds a socket and a token on the victim's
 * (fixed) session; once told to rejoin, the attacker comes back with its token and the old
 * cookie. Says where each landed.
 */
async function fixationAttempt(signIn: (victim: CookieJarProxy, victimTab: ReturnType<ReturnType<typeof makeBrowser>['open']>) => Promise<unknown>) {
  const victim = await jar()
  const victimTab = makeBrowser(victim.url).open()
  await waitForStatus(victimTab)
  const fixed = ((await victimTab.call('whoami')) as { sessionId: string }).sessionId
  const attackerCookie = [...victim.jar].map(([k, v]) => `${k}=${v}`).join('; ')
  const attacker = await rawRegister(server!.url, { token: null, tabId: 'attacker' }, { Cookie: attackerCookie })
  const rejoin = new Promise<void>((resolve) => attacker.socket.once('ss:rejoin', () => resolve()))
  await signIn(victim, victimTab)
  await rejoin
  attacker.close()
  const again = await rawRegister(server!.url, { token: attacker.reply.token, tabId: 'attacker' }, { Cookie: attackerCookie })
  const who = await again.socket.emitWithAck('ss:call', { id: 'w', m: 'whoami' })
  again.close()
  return { victimTab, fixed, attackerSession: who.r.sessionId as string, again: again.reply }
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

  it('should keep tabs and tab ids across session.regenerate() and move them to the new session', async () => {
    const links = new MemoryLinkStore()
    server = await startTestServer({ links })
    const proxy = await jar()
    const browser = makeBrowser(proxy.url)
    const tab = browser.open()
    await waitForStatus(tab)
    const before = (await tab.call('whoami')) as { sessionId: string; tabId: string }
    const login = (await (await fetch(`${proxy.url}/login?user=alice`, { method: 'POST' })).json()) as { sessionId: string }
    expect(login.sessionId).not.toBe(before.sessionId)
    await waitForStatus(tab, 'registering', 3000)
    const state = await waitForStatus(tab, 'ready')
    expect(state).toMatchObject({ restored: false, reason: 'cookie-session' })
    const after = (await tab.call('whoami')) as { sessionId: string; tabId: string }
    expect(after).toMatchObject({ sessionId: login.sessionId, tabId: before.tabId })
    expect(await links.getLink(hashSecret((await browser.tokens.get())!))).toMatchObject({ sessionId: login.sessionId })
  })

  it('should not move a session-fixation attacker into the victim\'s new session', async () => {
    server = await startTestServer()
    const attempt = await fixationAttempt((victim) => fetch(`${victim.url}/login?user=victim`, { method: 'POST' }))
    await waitForStatus(attempt.victimTab, 'registering', 3000)
    await waitForStatus(attempt.victimTab)
    const victimNow = (await attempt.victimTab.call('whoami')) as { sessionId: string }
    expect(victimNow.sessionId).not.toBe(attempt.fixed)
    expect(attempt.attackerSession).not.toBe(victimNow.sessionId)
    expect(attempt.again).toMatchObject({ restored: false, reason: 'session-ended', newSession: true })
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

function regenerate(session: Session): Promise<void> {
  return new Promise((resolve, reject) => session.regenerate((err) => (err ? reject(err) : resolve())))
}

/** A sign-in done over RPC: `session.regenerate()` inside a method handler, as an SPA would. */
async function startWithRpcLogin(links = new MemoryLinkStore()): Promise<TestServer> {
  return startTestServer({
    links,
    setup(ss) {
      ss.method('login', async (params: { user: string }, ctx) => {
        await regenerate(ctx.session!)
        return { regenerated: true, user: params.user }
      })
    },
  })
}

describe('session.regenerate() inside a method handler (sign-in over RPC)', () => {
  it('should keep the calling browser signed in: its tabs move to the new session and its cookie follows', async () => {
    const links = new MemoryLinkStore()
    server = await startWithRpcLogin(links)
    const proxy = await jar()
    const browser = makeBrowser(proxy.url)
    const tab = browser.open()
    await waitForStatus(tab)
    const other = browser.open()
    await waitForStatus(other)
    const before = (await tab.call('whoami')) as { sessionId: string; tabId: string }
    const cookieBefore = (await (await fetch(`${proxy.url}/whoami`)).json()) as { sessionId: string }
    expect(cookieBefore.sessionId).toBe(before.sessionId)

    await expect(tab.call('login', { user: 'alice' })).resolves.toEqual({ regenerated: true, user: 'alice' })
    // Both tabs are told to rejoin and come back in the new session with their own tab ids.
    await waitForStatus(tab, 'registering', 3000)
    await waitForStatus(tab, 'ready')
    await waitForStatus(other, 'ready')
    const after = (await tab.call('whoami')) as { sessionId: string; tabId: string }
    const otherAfter = (await other.call('whoami')) as { sessionId: string; tabId: string }
    expect(after.sessionId).not.toBe(before.sessionId)
    expect(after.tabId).toBe(before.tabId)
    expect(otherAfter.sessionId).toBe(after.sessionId)
    // The old session is gone from the store; the token points at the new one.
    expect(await links.getLink(hashSecret((await browser.tokens.get())!))).toMatchObject({ sessionId: after.sessionId })
    // Plain HTTP sees the new session: the browser's cookie was restored to it.
    await expect.poll(async () => ((await (await fetch(`${proxy.url}/whoami`)).json()) as { sessionId: string }).sessionId, { timeout: 3000 }).toBe(after.sessionId)
  })

  it('should answer the login call once, even though the tab rejoins right after it', async () => {
    server = await startWithRpcLogin()
    const proxy = await jar()
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    const results = await Promise.all([tab.call('login', { user: 'a' }), tab.call('whoami')])
    expect(results[0]).toEqual({ regenerated: true, user: 'a' })
    await waitForStatus(tab, 'ready')
    const count = (await tab.call('counter.increment')) as { count: number }
    expect(count.count).toBe(1)
  })

  it('should not move a session-fixation attacker who shares the old session into the new one', async () => {
    server = await startWithRpcLogin()
    const attempt = await fixationAttempt((_victim, victimTab) => victimTab.call('login', { user: 'victim' }))
    await waitForStatus(attempt.victimTab, 'ready')
    const victimNow = (await attempt.victimTab.call('whoami')) as { sessionId: string }
    expect(victimNow.sessionId).not.toBe(attempt.fixed)
    expect(attempt.attackerSession).not.toBe(victimNow.sessionId)
    expect(attempt.again).toMatchObject({ restored: false, newSession: true })
  })
})
