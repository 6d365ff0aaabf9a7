/**
 * The stores a figure can run on (`--stores=`), and the Redis servers they need: one
 * redis-server, or a local Redis Cluster of three masters and three replicas
 * (test-helpers/redis-cluster.ts), started for the figure and stopped after it.
 */
import { startRedis } from '../../test-helpers/redis-server.js'
import { startRedisCluster } from '../../test-helpers/redis-cluster.js'
import type { ServerConfig, StoreKind } from '../server.js'

export const STORE_KINDS: readonly StoreKind[] = ['memory', 'sqlite', 'redis', 'redis-cluster']

/** What a store kind stands for, in the notes under a table. */
export const STORE_DESCRIPTIONS: Record<StoreKind, string> = {
  memory: 'MemoryLinkStore + express-session MemoryStore',
  sqlite: 'SqliteLinkStore (better-sqlite3) + connect-sqlite3, files on disk',
  redis: 'RedisLinkStore + connect-redis on one redis-server (loopback)',
  'redis-cluster': 'RedisLinkStore + connect-redis on a Redis Cluster of 3 masters and 3 replicas (loopback, node-redis createCluster)',
}

export interface StoreBackend {
  /** What the servers' config needs to reach it. */
  config: Pick<ServerConfig, 'redisUrl' | 'redisRootNodes'>
  stop(): Promise<void>
}

/** Checks `--stores=` names; throws with the valid ones. */
export function storeKinds(names: readonly string[]): StoreKind[] {
  for (const name of names) if (!STORE_KINDS.includes(name as StoreKind)) throw new Error(`unknown store '${name}'; pick from ${STORE_KINDS.join(', ')}`)
  return names as StoreKind[]
}

/** Starts what `kind` needs (nothing for memory and SQLite). */
export async function startStoreBackend(kind: StoreKind): Promise<StoreBackend> {
  if (kind === 'redis') {
    const redis = await startRedis()
    return { config: { redisUrl: redis.url }, stop: () => redis.stop() }
  }
  if (kind === 'redis-cluster') {
    // Redis's default node timeout: no failover is measured here.
    const cluster = await startRedisCluster({ nodeTimeoutMs: 15_000 })
    return { config: { redisRootNodes: cluster.rootNodes }, stop: () => cluster.stop() }
  }
  return { config: {}, stop: async () => {} }
}
