import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { SessionData, Store } from 'express-session'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError, readConfig } from '../server/config.js'
import { openStores, type DemoStores } from '../server/stores.js'
import { startRedisCluster } from '../../test-helpers/redis-cluster.js'

const dirs: string[] = []
const open: DemoStores[] = []

afterEach(async () => {
  await Promise.all(open.splice(0).map((stores) => stores.close()))
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'ss-demo-stores-'))
  dirs.push(dir)
  return dir
}

async function openIn(dataDir: string): Promise<DemoStores> {
  const stores = await openStores(readConfig({ DATA_DIR: dataDir }))
  open.push(stores)
  return stores
}

const call = <T>(fn: (cb: (err: unknown, value?: T | null) => void) => void) =>
  new Promise<T | null | undefined>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))))

const SESSION = { cookie: { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000) }, count: 7 } as unknown as SessionData

describe('openStores (SQLite)', () => {
  it('should keep sessions and links in the data folder across a close and a reopen', async () => {
    const dir = tempDir()
    const first = await openIn(dir)
    await call((cb) => (first.sessionStore as Store).set('sid-1', SESSION, cb))
    await first.linkStore.putLink('hash-1', { sessionId: 'sid-1', createdAt: 1, lastSeenAt: 1, expiresAt: Date.now() + 60_000 })
    await first.close()
    open.splice(open.indexOf(first), 1)

    const second = await openIn(dir)
    const session = await call<SessionData>((cb) => second.sessionStore.get('sid-1', cb))
    expect(session).toMatchObject({ count: 7 })
    expect(await second.linkStore.getLink('hash-1')).toMatchObject({ sessionId: 'sid-1' })
  })

  it('should not return a session past its expiry', async () => {
    const stores = await openIn(tempDir())
    // What express-session's cookie reports once its expiry has passed: a negative maxAge.
    const expired = { cookie: { originalMaxAge: 60_000, maxAge: -1_000, expires: new Date(Date.now() - 1_000) } } as unknown as SessionData
    await call((cb) => stores.sessionStore.set('sid-old', expired, cb))
    expect(await call((cb) => stores.sessionStore.get('sid-old', cb))).toBeFalsy()
  })

  it('should refuse a data folder that cannot be created, naming it and DATA_DIR', async () => {
    const file = path.join(tempDir(), 'a-file')
    writeFileSync(file, '')
    const bad = path.join(file, 'data')
    await expect(openStores(readConfig({ DATA_DIR: bad }))).rejects.toThrow(ConfigError)
    await expect(openStores(readConfig({ DATA_DIR: bad }))).rejects.toThrow(`data folder ${bad} is not writable (ENOTDIR); set DATA_DIR to a writable folder`)
  })
})

describe('openStores (Redis Cluster)', () => {
  it('should keep sessions and links on the cluster named by REDIS_CLUSTER, and name an unreachable one', async () => {
    const cluster = await startRedisCluster()
    try {
      const stores = await openStores(readConfig({ REDIS_CLUSTER: cluster.addresses }))
      open.push(stores)
      expect(stores.description).toBe(`Redis Cluster at ${cluster.addresses} (sessions, links, Socket.IO sharded adapter)`)
      expect(stores.adapter).toBeTypeOf('function')
      for (let i = 0; i < 20; i++) {
        await call((cb) => stores.sessionStore.set(`sid-${i}`, SESSION, cb))
        await stores.linkStore.putLink(`hash-${i}`, { sessionId: `sid-${i}`, createdAt: 1, lastSeenAt: 1, expiresAt: Date.now() + 60_000 })
      }
      for (let i = 0; i < 20; i++) {
        expect(await call<SessionData>((cb) => stores.sessionStore.get(`sid-${i}`, cb))).toMatchObject({ count: 7 })
        expect(await stores.linkStore.getLink(`hash-${i}`)).toMatchObject({ sessionId: `sid-${i}` })
      }
      await stores.close()
      open.splice(open.indexOf(stores), 1)
    } finally {
      await cluster.stop()
    }
    await expect(openStores(readConfig({ REDIS_CLUSTER: cluster.addresses }))).rejects.toThrow(`cannot reach Redis Cluster at ${cluster.addresses} (REDIS_CLUSTER)`)
  }, 60_000)
})
