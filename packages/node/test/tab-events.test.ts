import { afterEach, describe, expect, it, vi } from 'vitest'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { closeAllClients, makeBrowser, waitForStatus } from '@session-socket/test-helpers/clients'

let server: TestServer | undefined

afterEach(async () => {
  closeAllClients()
  await server?.close()
  server = undefined
})

describe('tab:open and tab:close', () => {
  it('should tell tab:open and tab:close as tabs come and go', async () => {
    const events: string[] = []
    server = await startTestServer({
      setup(ss) {
        ss.on('tab:open', (e) => events.push(`open:${e.tabId}:${e.restored}`))
        ss.on('tab:close', (e) => events.push(`close:${e.tabId}`))
      },
    })
    const tab = makeBrowser(server.url).open()
    await waitForStatus(tab)
    const id = tab.tabId
    tab.close()
    await vi.waitFor(() => expect(events).toHaveLength(2))
    expect(events).toEqual([`open:${id}:false`, `close:${id}`])
  })
})
