import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import Database from 'better-sqlite3'
import { createClient, type RedisClientType } from 'redis'
import { MemoryLinkStore, type LinkStore } from '@session-socket/node'
import { SqliteLinkStore } from '@session-socket/node/sqlite'
import { RedisLinkStore } from '@session-socket/node/redis'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { startCookieJarProxy, type CookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, nextStatus, waitForStatus } from '@session-socket/test-helpers/clients'
import { startRedis, type RedisServer } from '@session-socket/test-helpers/redis-server'
import { rawRegister } from './helpers/raw-client.js'

let redis: RedisServer | undefined
let client: RedisClientType | undefined
let server: TestServer | undefined
let proxy: CookieJarProxy | undefined
const cleanups: Array<() => unknown> = []

beforeAll(async () => {
  redis = await startRedis()
  client = createClient({ url: redis.url, disableOfflineQueue: true })
  client.on('error', () => {})
  await client.connect()
})

afterAll(async () => {
  if (client?.isOpen) client.destroy()
  await redis?.stop()
})

afterEach(async () => {
  closeAllClients()
  await proxy?.close()
  await server?.close()
  proxy = server = undefined
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** Each store, and how a shutdown closes it. */
const stores: Array<[string, () => { links: LinkStore; close: () => unknown }]> = [
  ['MemoryLinkStore', () => ((links) => ({ links, close: () => links.close() }))(new MemoryLinkStore())],
  [
    'SqliteLinkStore',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'ss-closed-'))
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
      const links = new SqliteLinkStore({ path: join(dir, 'links.db') })
      return { links, close: () => links.close() }
    },
  ],
  [
    'SqliteLinkStore on a database its owner closes',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'ss-closed-'))
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
      const database = new Database(join(dir, 'app.db'))
      return { links: new SqliteLinkStore({ database }), close: () => database.close() }
    },
  ],
  ['RedisLinkStore', () => ((links) => ({ links, close: () => links.close() }))(new RedisLinkStore({ client: client!, prefix: `ss-closed-${Date.now()}:` }))],
]

describe('register while the link store is closed (a deploy)', () => {
  for (const [name, make] of stores) {
    it(`should refuse with STORE_UNAVAILABLE and retryAfter, never a terminal code, when the ${name} is closed under a connected client`, async () => {
      const { links, close } = make()
      server = await startTestServer({ links })
      proxy = await startCookieJarProxy(server.port)
      const tab = makeBrowser(proxy.url).open()
      await waitForStatus(tab)
      await close()

      // A raw client sees the refusal on the wire: retryable, with when to retry.
      const refused = await rawRegister(server.url, { token: null, tabId: 'raw-tab' }).then(
        (raw) => {
          raw.close()
          return undefined
        },
        (err: Error & { data?: unknown }) => err.data,
      )
      // The memory store keeps working once closed (it holds nothing to release).
      if (name !== 'MemoryLinkStore') expect(refused).toEqual({ code: 'STORE_UNAVAILABLE', retryAfter: 1000 })
      else expect(refused).toBeUndefined()

      // The connected tab loses its connection, and its reconnects are refused the same way: it
      // stays offline and keeps trying, it is not closed for good.
      proxy.cut()
      if (name !== 'MemoryLinkStore') {
        const offline = await nextStatus(tab, (state) => state.status === 'offline' && state.error !== undefined)
        expect(offline).toMatchObject({ status: 'offline', error: { code: 'STORE_UNAVAILABLE', retryAfter: 1000 } })
        await nextStatus(tab, (state) => state.status === 'connecting')
      } else {
        await waitForStatus(tab, 'ready')
      }
      expect(tab.status).not.toBe('closed')
    })
  }
})
