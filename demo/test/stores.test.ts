import { mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { SessionData, Store } from 'express-session'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError, readConfig } from '../server/config.js'
import { openStores, type DemoStores } from '../server/stores.js'
import { startRedisCluster } from '../../test-helpers/redis-cluster.js'
import { DEMO_MAIN, startDemoChild } from './helpers/demo-child.js'

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

/**
 * Starts the demo on a real, nearly full disk: a 512 KiB tmpfs with `freeKiB` left, mounted in
 * a mount namespace of its own (`unshare`), so it needs no mount on the host and vanishes with
 * the process. Resolves with what the demo printed, its exit code and what was left on the disk.
 */
async function startOnFullDisk(freeKiB: number): Promise<{ printed: string; code: number; left: string[] }> {
  const mountPoint = mkdtempSync(path.join(tmpdir(), 'ss-demo-full-'))
  const script = [
    'mount -t tmpfs -o size=512k tmpfs "$1" || exit 99',
    'head -c $(( (512 - $2) * 1024 )) /dev/zero > "$1/filler"',
    `DATA_DIR="$1/data/demo" node --import tsx ${JSON.stringify(DEMO_MAIN)}`,
    'echo "exit=$?"',
    'echo "left=$(ls -A "$1" | tr "\\n" " ")"',
  ].join('\n')
  try {
    const demo = startDemoChild({ PORT: '0', SESSION_SECRETS: 'test-secret' }, { file: 'unshare', args: ['--map-root-user', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', mountPoint, String(freeKiB)] })
    const { code } = await demo.exited
    const output = demo.output()
    expect(code, output).toBe(0)
    const exit = /^exit=(\d+)$/m.exec(output)
    const left = /^left=(.*)$/m.exec(output)
    expect(exit && left, output).toBeTruthy()
    const printed = output.slice(0, exit!.index)
    return { printed, code: Number(exit![1]), left: left![1]!.trim().split(/\s+/).filter(Boolean) }
  } finally {
    rmdirSync(mountPoint)
  }
}

describe('the demo on a full disk', () => {
  // 0 KiB: the folder's first write fails; 200 KiB: the session database opens, the links database cannot.
  for (const freeKiB of [0, 200]) {
    it(`should print one line and exit 1, leaving no file behind, with ${freeKiB} KiB free`, async () => {
      const { printed, code, left } = await startOnFullDisk(freeKiB)
      expect(code, printed).toBe(1)
      expect(printed.trim().split('\n'), printed).toHaveLength(1)
      expect(printed).toMatch(/^demo: .*(full disk \(ENOSPC\)|the disk is full \(SQLITE_\w+\)); free some space or set DATA_DIR to a folder on another disk\n$/)
      // Only the test's own filler: no empty database, no data folder.
      expect(left).toEqual(['filler'])
    }, 30_000)
  }
})
