import { afterEach, describe, expect, it, vi } from 'vitest'
import express from 'express'
import type { Session } from 'express-session'
import { Passport } from 'passport'
import { Strategy as LocalStrategy } from 'passport-local'
import type { ConnectionState } from '@session-socket/browser'
import { MemoryLinkStore, hashSecret, type SessionSocketServer } from '@session-socket/node'
import { startTestServer, type TestServer, type TestServerOptions } from '@session-socket/test-helpers/test-server'
import { absorb, startCookieJarProxy, type CookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, waitForStatus } from '@session-socket/test-helpers/clients'
import { rawRegister, type RawClient } from './helpers/raw-client.js'

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
  const { client: again, pending } = await registerPatiently(server!.url, { token: attacker.reply.token, tabId: 'attacker' }, { Cookie: attackerCookie })
  const who = await again.socket.emitWithAck('ss:call', { id: 'w', m: 'whoami' })
  again.close()
  return { victimTab, fixed, attackerSession: who.r.sessionId as string, again: again.reply, pending }
}

/**
 * Registers with a raw client as a patient client would: while the server answers
 * SIGN_IN_PENDING (a sign-in's cookie on its way), connects again after `retryAfter`. Says how
 * many times it was told to wait.
 */
async function registerPatiently(url: string, auth: { token: string | null; tabId: string }, headers: Record<string, string> = {}): Promise<{ client: RawClient; pending: number }> {
  for (let pending = 0; ; pending++) {
    try {
      return { client: await rawRegister(url, auth, headers), pending }
    } catch (err) {
      const data = (err as { data?: { code?: string; retryAfter?: number } }).data
      if (data?.code !== 'SIGN_IN_PENDING' || pending > 100) throw err
      await new Promise((resolve) => setTimeout(resolve, data.retryAfter))
    }
  }
}

/** Every status a client goes through from now on. */
function recordStatuses(tab: { on(event: 'status', fn: (state: ConnectionState) => void): () => void }): ConnectionState['status'][] {
  const seen: ConnectionState['status'][] = []
  tab.on('status', (state) => seen.push(state.status))
  return seen
}

describe('session.regenerate() over HTTP (sign-in)', () => {
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
    await waitForStatus(tab, 'rejoining', 3000)
    const state = await waitForStatus(tab, 'ready')
    expect(state).toMatchObject({ restored: false, reason: 'cookie-session' })
    const after = (await tab.call('whoami')) as { sessionId: string; tabId: string }
    expect(after).toMatchObject({ sessionId: login.sessionId, tabId: before.tabId })
    expect(await links.getLink(hashSecret((await browser.tokens.get())!))).toMatchObject({ sessionId: login.sessionId })
  })

  it('should not move a session-fixation attacker into the victim\'s new session', async () => {
    server = await startTestServer({ ss: { rejoinWindow: 400 } })
    const attempt = await fixationAttempt((victim) => fetch(`${victim.url}/login?user=victim`, { method: 'POST' }))
    await waitForStatus(attempt.victimTab)
    const victimNow = (await attempt.victimTab.call('whoami')) as { sessionId: string }
    expect(victimNow.sessionId).not.toBe(attempt.fixed)
    expect(attempt.attackerSession).not.toBe(victimNow.sessionId)
    // Without the new cookie it is asked to wait for the window, then gets a fresh session.
    expect(attempt.pending).toBeGreaterThan(0)
    expect(attempt.again).toMatchObject({ restored: false, reason: 'session-ended', newSession: true })
  })

  it('should keep the tabs, and move them to the new session, when the login response reaches the browser after they reconnected', async () => {
    server = await startTestServer()
    const proxy = await jar()
    const browser = makeBrowser(proxy.url)
    const tab = browser.open()
    await waitForStatus(tab)
    const other = browser.open()
    await waitForStatus(other)
    const statuses = [recordStatuses(tab), recordStatuses(other)]
    // The login as a slow network delivers it: the server answers at once, the browser stores
    // the new cookie only later. The tabs hear ss:rejoin meanwhile and reconnect with the old one.
    let handshakes = 0
    server.io.engine.on('connection', () => handshakes++)
    const login = await fetch(`${server.url}/login?user=alice`, { method: 'POST', headers: { cookie: [...proxy.jar].map(([k, v]) => `${k}=${v}`).join('; ') } })
    const { sessionId } = (await login.json()) as { sessionId: string }
    await Promise.all([waitForStatus(tab, 'rejoining'), waitForStatus(other, 'rejoining')])
    // Each tab reconnected, was told SIGN_IN_PENDING, and connected again: more than one handshake each.
    await vi.waitFor(() => expect(handshakes).toBeGreaterThanOrEqual(4), { timeout: 5000 })
    absorb(proxy.jar, login.headers.getSetCookie())
    await Promise.all([waitForStatus(tab), waitForStatus(other)])
    for (const t of [tab, other]) expect(((await t.call('whoami')) as { sessionId: string }).sessionId).toBe(sessionId)
    expect(statuses).toEqual([['rejoining', 'ready'], ['rejoining', 'ready']])
    expect(tab.state).toMatchObject({ status: 'ready', reason: 'cookie-session' })
  })

  it('should end a tab whose browser never stores the new cookie once the rejoin window has passed', async () => {
    server = await startTestServer({ ss: { rejoinWindow: 300 } })
    const proxy = await jar()
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    await fetch(`${server.url}/login?user=alice`, { method: 'POST', headers: { cookie: [...proxy.jar].map(([k, v]) => `${k}=${v}`).join('; ') } })
    await waitForStatus(tab, 'rejoining')
    expect(await waitForStatus(tab, 'ended', 3000)).toEqual({ status: 'ended', reason: 'expired' })
  })
})

interface PassportSession {
  passport?: { user?: string }
}

/**
 * A test server with passport-local as apps use it (passport 0.7): `req.login()` regenerates on
 * sign-in, `req.logout()` regenerates on sign-out. Password `pw` for every name.
 */
function startWithPassport(options: TestServerOptions = {}): Promise<TestServer> {
  return startTestServer({
    ...options,
    ss: { identify: (s) => (s as PassportSession).passport?.user, ...options.ss },
    setup(ss: SessionSocketServer, app: express.Express) {
      const auth = new Passport()
      auth.use(new LocalStrategy((username, password, done) => done(null, password === 'pw' ? { id: username } : false)))
      auth.serializeUser((user, done) => done(null, (user as { id: string }).id))
      auth.deserializeUser((id: string, done) => done(null, { id }))
      app.use(auth.session())
      app.post('/passport/login', express.urlencoded({ extended: false }), auth.authenticate('local'), (req, res) => res.json({ sessionId: req.sessionID }))
      app.post('/passport/logout', (req, res, next) => req.logout((err) => (err ? next(err) : res.json({ sessionId: req.sessionID }))))
      options.setup?.(ss, app)
    },
  })
}

function passportLogin(proxy: CookieJarProxy, username: string): Promise<{ sessionId: string }> {
  return fetch(`${proxy.url}/passport/login`, { method: 'POST', body: new URLSearchParams({ username, password: 'pw' }) }).then((r) => r.json() as Promise<{ sessionId: string }>)
}

describe('passport sign-in and sign-out (session.regenerate() both ways)', () => {
  it('should move the tabs to the signed-in session on passport login', async () => {
    server = await startWithPassport()
    const proxy = await jar()
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    const statuses = recordStatuses(tab)
    const { sessionId } = await passportLogin(proxy, 'alice')
    await waitForStatus(tab, 'rejoining')
    await waitForStatus(tab)
    expect(((await tab.call('whoami')) as { sessionId: string }).sessionId).toBe(sessionId)
    expect(statuses).not.toContain('offline')
    expect(statuses).not.toContain('ended')
  })

  it('should end every tab with logout on passport logout and refuse the pre-logout token afterwards, cookieless and once another user signed in', async () => {
    server = await startWithPassport()
    const proxy = await jar()
    const browser = makeBrowser(proxy.url)
    const tab = browser.open()
    await waitForStatus(tab)
    const alice = await passportLogin(proxy, 'alice')
    await waitForStatus(tab, 'rejoining')
    await waitForStatus(tab)
    const other = browser.open()
    await waitForStatus(other)
    expect(((await other.call('whoami')) as { sessionId: string }).sessionId).toBe(alice.sessionId)
    const token = (await browser.tokens.get())!

    const ended = [new Promise((resolve) => tab.on('ended', resolve)), new Promise((resolve) => other.on('ended', resolve))]
    const loggedOut = (await (await fetch(`${proxy.url}/passport/logout`, { method: 'POST' })).json()) as { sessionId: string }
    expect(await Promise.all(ended)).toEqual(['logout', 'logout'])
    expect((await server.links.getLink(hashSecret(token)))?.revokedAt).toBeTypeOf('number')

    // From a cookieless client, the pre-logout token does not reach the post-logout session.
    const cookieless = await rawRegister(server.url, { token, tabId: 'thief' })
    const cookielessWho = await cookieless.socket.emitWithAck('ss:call', { id: 'w', m: 'whoami' })
    cookieless.close()
    expect(cookieless.reply).toMatchObject({ restored: false, reason: 'revoked-token', newSession: true })
    expect(cookielessWho.r.sessionId).not.toBe(loggedOut.sessionId)

    // The browser signs in as someone else: the old token gets no socket of that user.
    const bob = await passportLogin(proxy, 'bob')
    const later = await rawRegister(server.url, { token, tabId: 'thief' })
    const laterWho = await later.socket.emitWithAck('ss:call', { id: 'w', m: 'whoami' })
    later.close()
    expect(later.reply).toMatchObject({ restored: false, reason: 'revoked-token', newSession: true })
    expect(laterWho.r.sessionId).not.toBe(bob.sessionId)
  })

  it('should end the tabs of the old user when another user signs in over their session', async () => {
    server = await startWithPassport()
    const proxy = await jar()
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    await passportLogin(proxy, 'alice')
    await waitForStatus(tab, 'rejoining')
    await waitForStatus(tab)
    const ended = new Promise((resolve) => tab.on('ended', resolve))
    await passportLogin(proxy, 'bob')
    expect(await ended).toBe('logout')
  })

  it('should treat a sign-in again as the same user as a sign-in, not a sign-out', async () => {
    server = await startWithPassport()
    const proxy = await jar()
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    await passportLogin(proxy, 'alice')
    await waitForStatus(tab, 'rejoining')
    await waitForStatus(tab)
    const statuses = recordStatuses(tab)
    const again = await passportLogin(proxy, 'alice')
    await waitForStatus(tab, 'rejoining')
    await waitForStatus(tab)
    expect(((await tab.call('whoami')) as { sessionId: string }).sessionId).toBe(again.sessionId)
    expect(statuses).toEqual(['rejoining', 'ready'])
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
    await waitForStatus(tab, 'rejoining', 3000)
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

  it('should end every tab of the session with logout when a method handler signs out by regenerating, after answering the call', async () => {
    server = await startTestServer({
      ss: { identify: (s) => s.userId },
      setup(ss) {
        ss.method('signOut', async (_params, ctx) => {
          delete ctx.session!.userId
          await regenerate(ctx.session!)
          return { signedOut: true }
        })
      },
    })
    const proxy = await jar()
    const browser = makeBrowser(proxy.url)
    const tab = browser.open()
    await waitForStatus(tab)
    await fetch(`${proxy.url}/login?user=alice`, { method: 'POST' })
    await waitForStatus(tab, 'rejoining')
    await waitForStatus(tab)
    const other = browser.open()
    await waitForStatus(other)
    const token = (await browser.tokens.get())!
    const ended = [new Promise((resolve) => tab.on('ended', resolve)), new Promise((resolve) => other.on('ended', resolve))]
    await expect(tab.call('signOut')).resolves.toEqual({ signedOut: true })
    expect(await Promise.all(ended)).toEqual(['logout', 'logout'])
    const replay = await rawRegister(server.url, { token, tabId: 'replay' })
    replay.close()
    expect(replay.reply).toMatchObject({ reason: 'revoked-token', newSession: true })
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
