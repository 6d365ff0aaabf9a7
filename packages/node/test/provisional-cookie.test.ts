import { afterEach, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { absorb, cookieHeader, startCookieJarProxy, type CookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, waitForStatus } from '@session-socket/test-helpers/clients'

let server: TestServer | undefined
let proxy: CookieJarProxy | undefined

afterEach(async () => {
  closeAllClients()
  await proxy?.close()
  await server?.close()
  proxy = server = undefined
})

const names = (response: Response) => response.headers.getSetCookie().map((line) => line.slice(0, line.indexOf('=')))

async function whoami(cookie: string | undefined): Promise<{ sessionId: string; userId: string | null; count: number }> {
  const response = await fetch(`${server!.url}/whoami`, cookie ? { headers: { Cookie: cookie } } : {})
  return (await response.json()) as { sessionId: string; userId: string | null; count: number }
}

describe('the provisional cookie', () => {
  it.each([[true], [false]])('should leave a signed-in cookie in place when a first handshake\'s cookie reaches the browser after it (saveUninitialized: %s)', async (saveUninitialized) => {
    server = await startTestServer({ session: { saveUninitialized } })
    // A fresh browser: the socket's first handshake and a sign-in leave at once, both cookieless.
    const [handshake, login] = await Promise.all([
      fetch(`${server.url}/socket.io/?EIO=4&transport=polling`),
      fetch(`${server.url}/login?user=ada`, { method: 'POST' }),
    ])
    // Last writer wins in a browser: the handshake's answer arrives last.
    const jar = new Map<string, string>()
    absorb(jar, login.headers.getSetCookie())
    absorb(jar, handshake.headers.getSetCookie())
    expect(names(handshake)).toEqual(['connect.sid.ss'])
    expect(await whoami(cookieHeader(jar))).toMatchObject({ userId: 'ada' })
  })

  it('should bring the tabs of the handshake\'s session into a session the browser signed in to without its cookie', async () => {
    server = await startTestServer()
    proxy = await startCookieJarProxy(server.port)
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    // A sign-in that left before the handshake's cookie was stored: it carried no cookie at all.
    const login = await fetch(`${server.url}/login?user=ada`, { method: 'POST' })
    const { sessionId } = (await login.json()) as { sessionId: string }
    absorb(proxy.jar, login.headers.getSetCookie())
    // The next request of the browser carries both cookies: the tab follows the signed-in one.
    const healed = await fetch(`${proxy.url}/whoami`)
    expect(((await healed.json()) as { userId: string }).userId).toBe('ada')
    await waitForStatus(tab, 'rejoining')
    await waitForStatus(tab)
    expect(((await tab.call('whoami')) as { sessionId: string }).sessionId).toBe(sessionId)
    // And the provisional cookie is gone.
    expect(proxy.jar.has('connect.sid.ss')).toBe(false)
  })

  it('should stand in for the session cookie on HTTP, and stay provisional when a request changes the session', async () => {
    server = await startTestServer({ session: { saveUninitialized: false, cookie: { maxAge: 60_000 } } })
    proxy = await startCookieJarProxy(server.port)
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    const { sessionId } = (await tab.call('whoami')) as { sessionId: string }
    const count = await fetch(`${proxy.url}/count`, { method: 'POST' })
    expect(((await count.json()) as { count: number }).count).toBe(1)
    // express-session re-sets the cookie of a changed session with a maxAge: renamed, not the session cookie.
    expect(names(count)).toEqual(['connect.sid.ss'])
    expect(proxy.jar.has('connect.sid')).toBe(false)
    expect(((await tab.call('whoami')) as { count: number }).count).toBe(1)
    expect((await whoami(cookieHeader(proxy.jar))).sessionId).toBe(sessionId)
  })

  it('should give way to the session cookie a sign-in sets, and be deleted with it', async () => {
    server = await startTestServer()
    proxy = await startCookieJarProxy(server.port)
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    const login = await fetch(`${proxy.url}/login?user=ada`, { method: 'POST' })
    expect(names(login).sort()).toEqual(['connect.sid', 'connect.sid.ss'])
    expect(proxy.jar.has('connect.sid')).toBe(true)
    expect(proxy.jar.has('connect.sid.ss')).toBe(false)
    await waitForStatus(tab, 'rejoining')
    await waitForStatus(tab)
  })

  it('should count as no cookie when it names a session that is gone, until the next handshake replaces it', async () => {
    server = await startTestServer({ session: { saveUninitialized: false } })
    proxy = await startCookieJarProxy(server.port)
    const first = makeBrowser(proxy.url).open()
    await waitForStatus(first)
    const { sessionId: gone } = (await first.call('whoami')) as { sessionId: string }
    first.close()
    await fetch(`${proxy.url}/logout`, { method: 'POST' })
    const provisional = proxy.jar.get('connect.sid.ss')
    // Plain HTTP: a fresh session, and the cookie stays (a first handshake's session may not be saved yet).
    expect((await (await fetch(`${proxy.url}/whoami`)).json()) as { sessionId: string }).not.toMatchObject({ sessionId: gone })
    expect(proxy.jar.get('connect.sid.ss')).toBe(provisional)
    // A new tab's handshake gives the browser a new session and its provisional cookie.
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    expect(proxy.jar.get('connect.sid.ss')).not.toBe(provisional)
    const { sessionId } = (await tab.call('whoami')) as { sessionId: string }
    expect(((await (await fetch(`${proxy.url}/whoami`)).json()) as { sessionId: string }).sessionId).toBe(sessionId)
  })

  it('should not be deleted by a request that arrives before the first register saved its session', async () => {
    server = await startTestServer({ session: { saveUninitialized: false } })
    // The first handshake's answer, as the browser stores it, before any register.
    const handshake = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`)
    const line = handshake.headers.getSetCookie()[0]!.split(';')[0]!
    const early = await fetch(`${server.url}/whoami`, { headers: { Cookie: line } })
    expect(early.headers.getSetCookie().filter((c) => c.startsWith('connect.sid.ss='))).toEqual([])
  })

})
