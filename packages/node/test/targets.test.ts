import { afterEach, describe, expect, it, vi } from 'vitest'
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

describe('toSession, toTab, toUser', () => {
  it('should deliver toSession to every tab of the session and toTab to one tab only', async () => {
    server = await startTestServer()
    proxy = await startCookieJarProxy(server.port)
    const browser = makeBrowser(proxy.url)
    const a = browser.open()
    await waitForStatus(a)
    const b = browser.open()
    await waitForStatus(b)
    const other = makeBrowser(server.url).open()
    await waitForStatus(other)
    const { sessionId } = (await a.call('whoami')) as { sessionId: string }
    const got: string[] = []
    for (const [name, tab] of [['a', a], ['b', b], ['other', other]] as const) tab.on('news', (text: string) => got.push(`${name}:${text}`))
    server.ss.toSession(sessionId).emit('news', 'all')
    server.ss.toTab(b.tabId).emit('news', 'only-b')
    await vi.waitFor(() => expect(got).toHaveLength(3))
    // A call answered on each socket after the emits: anything emitted to it before has arrived.
    await Promise.all([a, b, other].map((tab) => tab.call('whoami')))
    expect(got.sort()).toEqual(['a:all', 'b:all', 'b:only-b'])
  })

  it('should deliver toUser to every tab of every session of that user', async () => {
    server = await startTestServer({ ss: { identify: (s) => s.userId } })
    const laptop = await startCookieJarProxy(server.port)
    proxy = await startCookieJarProxy(server.port)
    try {
      const tabs = []
      for (const p of [laptop, proxy]) {
        await fetch(`${p.url}/login?user=carol`, { method: 'POST' })
        const tab = makeBrowser(p.url).open()
        await waitForStatus(tab)
        tabs.push(tab)
      }
      const got = tabs.map((tab) => new Promise((resolve) => tab.on('hello', resolve)))
      server.ss.toUser('carol').emit('hello', 'carol')
      expect(await Promise.all(got)).toEqual(['carol', 'carol'])
    } finally {
      await laptop.close()
    }
  })
})
