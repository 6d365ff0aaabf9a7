import { createCluster } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisLinkStore, type RedisLinkStoreCluster } from '../../src/stores/redis.js'
import { startRedisCluster, type RedisCluster } from '@session-socket/test-helpers/redis-cluster'
import { linkStoreContract } from './contract.js'
import { durableEventChecks } from './durable-events.js'
import { redisStoreChecks } from './redis-checks.js'

let cluster: RedisCluster | undefined
type Cluster = RedisLinkStoreCluster & { readonly isOpen: boolean; destroy(): void }

let shared: Cluster | undefined
let prefixNo = 0
const nextPrefix = () => `ss-test-${process.pid}-${++prefixNo}:`

/** A cluster client configured as docs/scaling.md says: fail fast, find a promoted replica quickly. */
async function connect(): Promise<Cluster> {
  const client = createCluster({
    rootNodes: cluster!.rootNodes,
    defaults: { disableOfflineQueue: true, socket: { connectTimeout: 1000, reconnectStrategy: (retries) => Math.min(50 * (retries + 1), 300) } },
    topologyRefreshOnReconnectionAttemptStrategy: 200,
  })
  client.on('error', () => {})
  await client.connect()
  return client
}

beforeAll(async () => {
  cluster = await startRedisCluster()
  shared = await connect()
}, 60_000)

afterAll(async () => {
  shared?.destroy()
  await cluster?.stop()
})

linkStoreContract(
  'RedisLinkStore on Redis Cluster',
  async () => {
    const store = new RedisLinkStore({ client: shared!, prefix: nextPrefix() })
    return { store, cleanup: () => store.close() }
  },
  { expiresByItself: true },
)

durableEventChecks('RedisLinkStore on Redis Cluster', async () => {
  const store = new RedisLinkStore({ client: shared!, prefix: nextPrefix() })
  return { store, cleanup: () => store.close() }
})

redisStoreChecks('Redis Cluster (3 masters, 3 replicas)', { connect, prefix: nextPrefix })

describe('RedisLinkStore on Redis Cluster: shards and failover', () => {
  const record = (sessionId: string, now: number, ttl = 60_000) => ({ sessionId, createdAt: now, lastSeenAt: now, expiresAt: now + ttl })

  /** How many keys under `prefix` each master holds now. */
  async function keysPerMaster(prefix: string): Promise<number[]> {
    const masters = (await cluster!.state()).filter((n) => n.role === 'master' && n.slots.length > 0)
    return Promise.all(
      masters.map(async ({ address }) => {
        const node = cluster!.nodes.find((n) => n.address === address)!
        let count = 0
        let cursor = '0'
        do {
          const [next, keys] = (await cluster!.command(node, ['SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000'])) as [string, string[]]
          cursor = next
          count += keys.length
        } while (cursor !== '0')
        return count
      }),
    )
  }

  it('spreads the links, indexes and streams of many sessions over every master, and sweeps every master', async () => {
    const prefix = nextPrefix()
    const store = new RedisLinkStore({ client: shared!, prefix })
    const now = Date.now()
    for (let i = 0; i < 60; i++) {
      await store.putLink(`live${i}`, { ...record(`s${i}`, now), userId: `u${i % 7}` })
      await store.putLink(`short${i}`, { ...record(`s${i}`, now, 1500), userId: `u${i % 7}` })
    }
    await store.recordTabs(Array.from({ length: 60 }, (_, i) => ({ sessionId: `s${i}`, tabId: `t${i}` })), now, 60_000)
    const spread = await keysPerMaster(prefix)
    expect(spread).toHaveLength(3)
    for (const count of spread) expect(count).toBeGreaterThan(20)

    await expect.poll(() => store.getLink('short59'), { timeout: 5000, interval: 50 }).toBeNull()
    // The expired entries still listed, on whichever master holds each index. (An index also
    // drops its expired entries itself whenever a link is added to it.)
    const indexes = [...Array.from({ length: 60 }, (_, i) => `session-links:s${i}`), ...Array.from({ length: 7 }, (_, u) => `user-links:u${u}`)]
    const zcount = (key: string, from: string, to: string) => shared!.sendCommand(`${prefix}${key}`, true, ['ZCOUNT', `${prefix}${key}`, from, to]).then(Number)
    const sweptAt = Date.now()
    const expired = (await Promise.all(indexes.map((key) => zcount(key, '-inf', String(sweptAt))))).reduce((a, b) => a + b, 0)
    expect(expired).toBeGreaterThan(0)
    expect(await store.sweep(sweptAt)).toBe(expired)
    expect(await store.sweep(Date.now())).toBe(0)
    const cards = await Promise.all(indexes.map((key) => zcount(key, '-inf', '+inf')))
    expect(cards).toEqual([...Array.from({ length: 60 }, () => 1), ...[9, 9, 9, 9, 8, 8, 8]])
    expect((await store.userSessions('u3', Date.now())).sort()).toEqual(Array.from({ length: 60 }, (_, i) => i).filter((i) => i % 7 === 3).map((i) => `s${i}`).sort())
    expect(await store.revokeSession('s42', now)).toBe(1)
  })

  it('refuses at once the keys of a master that died, and serves them again once its replica took over, with nothing lost that was replicated', async () => {
    const prefix = nextPrefix()
    const client = await connect()
    const store = new RedisLinkStore({ client, prefix })
    const now = Date.now()
    const hashes = Array.from({ length: 300 }, (_, i) => `h${i}`)
    for (const hash of hashes) await store.putLink(hash, record(`s${hash}`, now))
    await cluster!.waitForReplication()

    const victim = await cluster!.masterOf(`${prefix}link:h0`)
    const onVictim: string[] = []
    const elsewhere: string[] = []
    for (const hash of hashes) ((await cluster!.masterOf(`${prefix}link:${hash}`)) === victim ? onVictim : elsewhere).push(hash)
    const killedAt = performance.now()
    victim.server.kill()
    try {
      // The victim's keys: refused with STORE_UNAVAILABLE, at once (no offline queue), never a hang.
      for (const hash of onVictim.slice(0, 5)) {
        const started = performance.now()
        await expect(store.getLink(hash)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', retryAfter: 1000 })
        expect(performance.now() - started).toBeLessThan(1000)
      }
      // Until the replica takes over: then the client's topology refresh finds it.
      await expect.poll(() => store.getLink(onVictim[0]!).then(() => 'served', (err: { code?: string }) => err.code), { timeout: 15_000, interval: 50 }).toBe('served')
      const servedAfterMs = Math.round(performance.now() - killedAt)
      const lost = (await Promise.all(hashes.map((hash) => store.getLink(hash)))).filter((r) => r === null).length
      expect(lost).toBe(0)
      expect(await store.revokeSession(`s${onVictim[0]}`, now)).toBe(1)
      if (process.env.SS_REPORT) console.info(JSON.stringify({ linksOnVictim: onVictim.length, elsewhere: elsewhere.length, servedAfterMs, lost }))
    } finally {
      client.destroy()
      await cluster!.restart(victim)
    }
  })
})
