import { afterEach, describe, expect, it } from 'vitest'
import { memoryTabIdStorage } from '@session-socket/browser'
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

describe('tabs', () => {
  it('should list the live tabs of a session, each with its own id', async () => {
    server = await startTestServer()
    proxy = await startCookieJarProxy(server.port)
    const browser = makeBrowser(proxy.url)
    const a = browser.open()
    await waitForStatus(a)
    const b = browser.open()
    await waitForStatus(b)
    const { sessionId } = (await a.call('whoami')) as { sessionId: string }
    const tabs = await server.ss.tabs(sessionId)
    expect(tabs.map((t) => t.tabId).sort()).toEqual([a.tabId, b.tabId].sort())
    expect(tabs.every((t) => typeof t.since === 'number' && typeof t.socketId === 'string')).toBe(true)
    b.close()
    await expect.poll(async () => (await server!.ss.tabs(sessionId)).map((t) => t.tabId)).toEqual([a.tabId])
  })

  it('should replace the old socket when the same tab registers again', async () => {
    server = await startTestServer()
    proxy = await startCookieJarProxy(server.port)
    const browser = makeBrowser(proxy.url)
    const tabIdStorage = memoryTabIdStorage()
    const before = browser.open({ tabIdStorage })
    await waitForStatus(before)
    const { sessionId } = (await before.call('whoami')) as { sessionId: string }
    // The reloaded page comes back with the same tab id while the old socket still looks alive.
    const after = browser.open({ tabIdStorage })
    await waitForStatus(after)
    expect(after.tabId).toBe(before.tabId)
    await waitForStatus(before, 'closed')
    const tabs = await server.ss.tabs(sessionId)
    expect(tabs).toHaveLength(1)
    expect(tabs[0]!.tabId).toBe(after.tabId)
  })

  it('should give a new tab id when the id is live in another session', async () => {
    server = await startTestServer()
    const first = makeBrowser(server.url).open({ tabIdStorage: memoryTabIdStorage('shared-tab-id') })
    await waitForStatus(first)
    const stranger = makeBrowser(server.url).open({ tabIdStorage: memoryTabIdStorage('shared-tab-id') })
    await waitForStatus(stranger)
    expect(first.tabId).toBe('shared-tab-id')
    expect(stranger.tabId).not.toBe('shared-tab-id')
    expect(first.status).toBe('ready')
  })
})
