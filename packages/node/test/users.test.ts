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

describe('user rooms', () => {
  it('should move every tab of a session to the new user room when one tab\'s call changes the user', async () => {
    server = await startTestServer({
      ss: { identify: (s) => s.userId },
      setup(ss) {
        ss.method('become', (params: { user: string }, ctx) => {
          ctx.session!.userId = params.user
          return null
        })
      },
    })
    proxy = await startCookieJarProxy(server.port)
    await fetch(`${proxy.url}/login?user=dana`, { method: 'POST' })
    const browser = makeBrowser(proxy.url)
    const caller = browser.open()
    await waitForStatus(caller)
    const other = browser.open()
    await waitForStatus(other)
    await caller.call('become', { user: 'erin' })
    const got: string[] = []
    for (const [name, tab] of [['caller', caller], ['other', other]] as const) tab.on('hello', (to: string) => got.push(`${name}:${to}`))
    server.ss.toUser('erin').emit('hello', 'erin')
    server.ss.toUser('dana').emit('hello', 'dana')
    await vi.waitFor(() => expect(got).toHaveLength(2))
    // A call answered on each socket after the emits: anything emitted to it before has arrived.
    await Promise.all([caller, other].map((tab) => tab.call('whoami')))
    expect(got.sort()).toEqual(['caller:erin', 'other:erin'])
  })
})
