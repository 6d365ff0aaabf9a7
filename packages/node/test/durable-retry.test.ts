import { afterEach, describe, expect, it } from 'vitest'
import { SessionSocketError } from '@session-socket/protocol'
import { MemoryLinkStore, type EventQuota, type NewDurableEvent } from '@session-socket/node'
import type { SessionSocket } from '@session-socket/browser'
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

/** A memory store that fails one append for one tab, as a store failing in the middle of a send would. */
class FailingOnce extends MemoryLinkStore {
  failFor: string | undefined
  override async appendEvent(tabId: string, event: NewDurableEvent, expiresAt: number, quota: EventQuota, now: number): Promise<number> {
    if (tabId === this.failFor) {
      this.failFor = undefined
      throw new SessionSocketError('STORE_UNAVAILABLE', 'link store unavailable', { retryAfter: 1000 })
    }
    return super.appendEvent(tabId, event, expiresAt, quota, now)
  }
}

/** Three tabs of one browser (one session), each collecting the `invoice` events it applies. */
async function threeTabs(links: FailingOnce) {
  server = await startTestServer({ links })
  proxy = await startCookieJarProxy(server.port)
  const browser = makeBrowser(proxy.url)
  const tabs: SessionSocket[] = []
  for (let i = 0; i < 3; i++) {
    const tab = browser.open()
    await waitForStatus(tab)
    tabs.push(tab)
  }
  const got = tabs.map(() => [] as unknown[])
  tabs.forEach((tab, i) => tab.on('invoice', (invoice: unknown) => got[i]!.push(invoice)))
  const { sessionId } = (await tabs[0]!.call('whoami')) as { sessionId: string }
  // Whatever was emitted before a call's answer has reached the tab by then.
  const settled = () => Promise.all(tabs.map((tab) => tab.call('whoami')))
  return { tabs, got, sessionId, settled }
}

describe('a durable send that fails part way', () => {
  it('should reach each tab once when retried with the same key, the tabs that had it keeping their number', async () => {
    const links = new FailingOnce()
    const { tabs, got, sessionId, settled } = await threeTabs(links)
    const send = () => server!.ss.toSession(sessionId, { durable: true, key: 'invoice-7' }).emit('invoice', { id: 7 })

    // The store fails at the second tab: the first has the event, the others not yet.
    links.failFor = tabs[1]!.tabId
    await expect(send()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' })
    const first = await links.readEvents(tabs[0]!.tabId, 0, Date.now())

    const retried = await send()
    expect(Object.keys(retried.seqs).sort()).toEqual(tabs.map((tab) => tab.tabId).sort())
    expect(retried.seqs[tabs[0]!.tabId]).toBe(first.lastSeq)
    await settled()
    expect(got).toEqual([[{ id: 7 }], [{ id: 7 }], [{ id: 7 }]])

    // Later tries of the same key add nothing, even once every tab acknowledged it.
    await server!.ss.toSession(sessionId, { durable: true, key: 'invoice-7' }).emit('invoice', { id: 7 })
    await settled()
    expect(got).toEqual([[{ id: 7 }], [{ id: 7 }], [{ id: 7 }]])
    expect((await links.readEvents(tabs[0]!.tabId, 0, Date.now())).lastSeq).toBe(first.lastSeq)
  })

  it('should deliver a retry without a key as a new event: the tabs that had it get it twice', async () => {
    const links = new FailingOnce()
    const { tabs, got, sessionId, settled } = await threeTabs(links)
    links.failFor = tabs[1]!.tabId
    await expect(server!.ss.toSession(sessionId, { durable: true }).emit('invoice', { id: 8 })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' })
    await server!.ss.toSession(sessionId, { durable: true }).emit('invoice', { id: 8 })
    await settled()
    expect(got.map((events) => events.length)).toEqual([2, 1, 1])
  })

  it('should refuse a key that is not a string of 1 to 256 characters', async () => {
    const { sessionId } = await threeTabs(new FailingOnce())
    for (const key of ['', 'x'.repeat(257), 7 as unknown as string]) {
      await expect(server!.ss.toSession(sessionId, { durable: true, key }).emit('invoice', 1)).rejects.toThrow(/key must be a string of 1 to 256 characters/)
    }
  })
})
