import { afterEach, describe, expect, it } from 'vitest'
import type { Session } from 'express-session'
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
