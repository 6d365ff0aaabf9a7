import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { MemoryStore } from 'express-session'
import type { SessionSocket } from '@session-socket/browser'
import { SqliteLinkStore } from '@session-socket/node/sqlite'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { startCookieJarProxy, type CookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, waitForStatus } from '@session-socket/test-helpers/clients'
import { startCluster, type Cluster } from './helpers/cluster.js'
import { startRedis, type RedisServer } from '@session-socket/test-helpers/redis-server'

let redis: RedisServer | undefined
let server: TestServer | undefined
let cluster: Cluster | undefined
const proxies: CookieJarProxy[] = []
const cleanups: Array<() => Promise<void> | void> = []

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis?.stop()
})

afterEach(async () => {
  closeAllClients()
  for (const proxy of proxies.splice(0)) await proxy.close()
  await server?.close()
  await cluster?.close()
  server = cluster = undefined
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** Collects what a tab applies of `event`; `until(count)` waits for that many. */
function collect(tab: SessionSocket, event: string) {
  const got: unknown[] = []
  tab.on(event, (value: unknown) => void got.push(value))
  return {
    got,
    until: (count: number, timeout = 5000) => vi.waitFor(() => expect(got.length, `${event} events`).toBeGreaterThanOrEqual(count), { timeout }),
  }
}

describe('durable events on persistent stores', () => {
  it('should replay events sent while the server was down, after a restart on the same SQLite file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ss-durable-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const path = join(dir, 'links.db')
    const sessionStore = new MemoryStore()
    let links = new SqliteLinkStore({ path })
    server = await startTestServer({ links, sessionStore })
    const port = server.port
    const proxy = await startCookieJarProxy(port)
    proxies.push(proxy)
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    const news = collect(tab, 'news')
    await server.ss.toTab(tab.tabId, { durable: true }).emit('news', 1)
    await news.until(1)
    await server.close()
    await links.close()
    await waitForStatus(tab, 'offline')
    // Another process appends to the same file while this node is down.
    const writer = new SqliteLinkStore({ path })
    const other = await startTestServer({ links: writer, sessionStore })
    for (const n of [2, 3, 4]) await other.ss.toTab(tab.tabId, { durable: true }).emit('news', n)
    await other.close()
    await writer.close()
    links = new SqliteLinkStore({ path })
    cleanups.push(() => links.close())
    server = await startTestServer({ links, sessionStore, port })
    await waitForStatus(tab, 'ready')
    await news.until(4)
    // Whatever the server sent before this answer has been applied: a duplicate would show.
    await tab.call('whoami')
    expect(news.got).toEqual([1, 2, 3, 4])
  })

  it('should replay events on the node a tab moves to, once and in order', async () => {
    cluster = await startCluster(redis!.url)
    const [a, b] = [cluster.node(0), cluster.node(1)]
    const proxy = await startCookieJarProxy(a.server.port)
    proxies.push(proxy)
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    const { sessionId } = (await tab.call('whoami')) as { sessionId: string }
    const news = collect(tab, 'news')
    await a.server.ss.toTab(tab.tabId, { durable: true }).emit('news', 1)
    await news.until(1)
    await a.crash()
    await waitForStatus(tab, 'offline')
    // Sent on B while the tab is between nodes: B keeps them in Redis.
    for (let n = 2; n <= 11; n++) {
      if (n % 2) await b.server.ss.toSession(sessionId, { durable: true }).emit('news', n)
      else await b.server.ss.toTab(tab.tabId, { durable: true }).emit('news', n)
    }
    proxy.retarget(b.server.port)
    await waitForStatus(tab, 'ready')
    await news.until(11)
    await tab.call('whoami')
    expect(news.got).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    // Live again, through B.
    await b.server.ss.toTab(tab.tabId, { durable: true }).emit('news', 12)
    await news.until(12)
  })
})
