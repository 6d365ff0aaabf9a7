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

describe('rooms', () => {
  it('should reach the tabs of a session, a tab and a user through the documented room names session:<id>, tab:<id>, user:<id>', async () => {
    server = await startTestServer({ ss: { identify: (s) => s.userId } })
    proxy = await startCookieJarProxy(server.port)
    await fetch(`${proxy.url}/login?user=fay`, { method: 'POST' })
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    const other = makeBrowser(server.url).open()
    await waitForStatus(other)
    const { sessionId } = (await tab.call('whoami')) as { sessionId: string }
    const got: string[] = []
    for (const [name, t] of [['tab', tab], ['other', other]] as const) t.on('room', (room: string) => got.push(`${name}:${room}`))
    const io = server.io
    io.to(`session:${sessionId}`).emit('room', 'session')
    io.to(`tab:${tab.tabId}`).emit('room', 'tab')
    io.to('user:fay').emit('room', 'user')
    // Behind anything the three sends brought the other tab, on its own socket.
    io.to(`tab:${other.tabId}`).emit('room', 'marker')
    await expect.poll(() => got.length).toBe(4)
    expect(got.sort()).toEqual(['other:marker', 'tab:session', 'tab:tab', 'tab:user'])
  })
})
