import { afterEach, describe, expect, it } from 'vitest'
import { io as ioClient } from 'socket.io-client'
import { EVENTS, PROTOCOL_VERSION } from '@session-socket/protocol'
import { startTestServer, type TestServer } from './helpers/test-server.js'
import { startCookieJarProxy, type CookieJarProxy } from './helpers/cookie-jar-proxy.js'
import { closeAllClients, makeBrowser, waitForStatus } from './helpers/clients.js'

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
    expect(proxy.jar.has('connect.sid')).toBe(true)
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
})
