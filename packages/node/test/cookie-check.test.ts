import { afterEach, describe, expect, it } from 'vitest'
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

describe('GET {path}/cookie', () => {
  it('should name the session the cookie carries with the check id the restore answered, and nothing without a cookie', async () => {
    server = await startTestServer()
    proxy = await startCookieJarProxy(server.port)
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    proxy.jar.clear()
    expect(await (await fetch(`${proxy.url}/session-socket/cookie`)).json()).toEqual({ session: null })
    // Restore by hand: a code over the socket, the POST, then the check.
    const { code } = (await tab.socket.emitWithAck('ss:cookie')) as { code: string }
    const restored = await fetch(`${proxy.url}/session-socket/restore`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code }) })
    expect(restored.status).toBe(204)
    const check = restored.headers.get('Session-Socket-Check')
    expect(check).toMatch(/^[A-Za-z0-9_-]{22}$/)
    const answer = await fetch(`${proxy.url}/session-socket/cookie`)
    expect(answer.headers.get('Cache-Control')).toBe('no-store')
    expect(await answer.json()).toEqual({ session: check })
  })

  it('should refuse a foreign Origin and anything but GET', async () => {
    server = await startTestServer()
    expect((await fetch(`${server.url}/session-socket/cookie`, { headers: { Origin: 'http://evil.example' } })).status).toBe(403)
    expect((await fetch(`${server.url}/session-socket/cookie`, { method: 'POST' })).status).toBe(405)
  })
})

describe('restoreCookie() result', () => {
  it("should say not-stored when the server set the cookie and the browser did not keep it (a client with no cookie jar, as behind a proxy stripping Set-Cookie)", async () => {
    server = await startTestServer()
    // Node's fetch keeps no cookies: every Set-Cookie is lost, as behind a stripping proxy.
    const tab = makeBrowser(server.url).open()
    await waitForStatus(tab)
    expect(await tab.restoreCookie()).toEqual({ kept: false, reason: 'not-stored' })
  })

  it('should say kept when the browser sends the restored cookie back', async () => {
    server = await startTestServer()
    proxy = await startCookieJarProxy(server.port)
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    proxy.jar.clear()
    expect(await tab.restoreCookie()).toEqual({ kept: true })
  })

  it('should say not-ready, without a request, while the tab is not registered', async () => {
    server = await startTestServer()
    const tab = makeBrowser(server.url).open({ autoConnect: false })
    expect(await tab.restoreCookie()).toEqual({ kept: false, reason: 'not-ready' })
  })
})
