import { afterEach, describe, expect, it } from 'vitest'
import type { Session, SessionData } from 'express-session'
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

type RequestWithSession = { session?: Session & Partial<SessionData>; sessionID?: string }

/** A server whose app reads socket.request.session in its own socket handler, as the plain recipe does. */
function startWithRequestSessionHandler(): Promise<TestServer> {
  return startTestServer().then((started) => {
    started.io.on('connection', (socket) => {
      socket.on('app:session', (ack: (reply: unknown) => void) => {
        const req = socket.request as unknown as RequestWithSession
        ack({ id: req.session?.id ?? null, sessionID: req.sessionID ?? null, count: req.session?.count ?? null })
      })
    })
    return started
  })
}

describe('socket.request.session', () => {
  it('should name the linked session after a cookie loss and a reconnect restored by the token, not the fresh one the handshake made', async () => {
    server = await startWithRequestSessionHandler()
    proxy = await startCookieJarProxy(server.port)
    const browser = makeBrowser(proxy.url)
    const first = browser.open()
    await waitForStatus(first)
    await first.call('counter.increment', { by: 2 })
    const { sessionId } = (await first.call('whoami')) as { sessionId: string }
    first.close()
    // Same browser (same token), no cookie: the handshake makes a new session, the token restores the old one.
    const again = makeBrowser(server.url, {}).open({ tokenStorage: browser.tokens })
    const state = await waitForStatus(again)
    expect(state).toMatchObject({ restored: true })
    expect(await again.socket.emitWithAck('app:session')).toEqual({ id: sessionId, sessionID: sessionId, count: 2 })
  })

  it('should be the handshake session when the cookie names the session', async () => {
    server = await startWithRequestSessionHandler()
    proxy = await startCookieJarProxy(server.port)
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    const { sessionId } = (await tab.call('whoami')) as { sessionId: string }
    expect(await tab.socket.emitWithAck('app:session')).toMatchObject({ id: sessionId, sessionID: sessionId })
  })
})
