import fs from 'node:fs'
import path from 'node:path'
import type { Store } from 'express-session'
import session from 'express-session'
import type { LinkStore } from '@session-socket/node'
import { ConfigError, type DemoConfig } from './config.js'

/** Where sessions and links live, and how to let go of them. */
export interface DemoStores {
  /** One line for the start-up message. */
  description: string
  sessionStore: Store
  linkStore: LinkStore
  /** Socket.IO adapter for many nodes (Redis only). */
  adapter?: (nsp: any) => any
  /** Closes everything; SQLite files are complete on disk once it resolves. */
  close(): Promise<void>
}

/** Embedded stores by default; Redis when REDIS_URL is set, Redis Cluster when REDIS_CLUSTER is. */
export function openStores(config: DemoConfig): Promise<DemoStores> {
  if (config.redisCluster) return openRedisClusterStores(config.redisCluster)
  return config.redisUrl ? openRedisStores(config.redisUrl) : openSqliteStores(config.dataDir)
}

/** Free space the data folder must have at start-up: a first write, as the databases' first pages need. */
const PROBE_BYTES = 16 * 1024

/** The fix for a full disk, for the end of a message. */
const FULL_DISK = 'free some space or set DATA_DIR to a folder on another disk'

/**
 * Fails early, with the folder in the message, rather than at the first session write. Returns
 * the first folder it created (undefined: the folder was there), so a failed start can remove
 * what it made.
 */
function checkWritable(dir: string): string | undefined {
  let created: string | undefined
  const probe = path.join(dir, `.write-check-${process.pid}`)
  try {
    created = fs.mkdirSync(dir, { recursive: true })
    // Some bytes, not an empty file: an empty file fits on a full disk.
    fs.writeFileSync(probe, Buffer.alloc(PROBE_BYTES))
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    removeCreated(dir, created, [probe])
    if (code === 'ENOSPC') throw new ConfigError(`data folder ${dir} is on a full disk (ENOSPC); ${FULL_DISK}`)
    throw new ConfigError(`data folder ${dir} is not writable (${code}); set DATA_DIR to a writable folder`)
  }
  fs.rmSync(probe, { force: true })
  return created
}

/** Removes the files a failed start created, then the folders it created, `dir` up to `createdFrom`, if empty. */
function removeCreated(dir: string, createdFrom: string | undefined, files: string[]): void {
  for (const file of files) {
    try {
      fs.rmSync(file, { force: true })
    } catch {
      // Its folder is not one (ENOTDIR): there is no file to remove.
    }
  }
  if (createdFrom === undefined) return
  for (let folder = dir; folder.startsWith(createdFrom); folder = path.dirname(folder)) {
    try {
      fs.rmdirSync(folder)
    } catch {
      // Not empty (someone else wrote there meanwhile) or gone: leave it and its parents.
      return
    }
    if (folder === createdFrom) return
  }
}

/** Bytes free for this process on the disk of `dir` (Infinity when it cannot be told). */
function freeBytes(dir: string): number {
  try {
    const stats = fs.statfsSync(dir)
    return stats.bavail * stats.bsize
  } catch {
    return Infinity
  }
}

/** A database file and the files SQLite puts next to it. */
const withCompanions = (file: string) => [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]

/**
 * Sessions in SQLite through connect-sqlite3 (on the sqlite3 driver), links in SqliteLinkStore
 * (on better-sqlite3), each in its own file: two drivers on one file would only contend for
 * its write lock. A start that fails (a full disk, a file it cannot open) removes the files it
 * created, so the next start is not met by empty databases.
 */
async function openSqliteStores(dataDir: string): Promise<DemoStores> {
  const createdFrom = checkWritable(dataDir)
  // Loaded here, not at the top: a Redis run never needs the native SQLite drivers.
  const [{ default: sqlite3 }, { default: connectSqlite3 }, { SqliteLinkStore }] = await Promise.all([
    import('sqlite3'),
    import('connect-sqlite3'),
    import('@session-socket/node/sqlite'),
  ])
  const sessionsFile = path.join(dataDir, 'sessions.db')
  const linksFile = path.join(dataDir, 'links.db')
  const created = [...withCompanions(sessionsFile), ...withCompanions(linksFile)].filter((file) => !fs.existsSync(file))
  const failed = (file: string, err: Error & { code?: string }): ConfigError => {
    // SQLite reports a full disk as SQLITE_FULL, or as an I/O error when its shared-memory file cannot grow.
    const full = err.code === 'SQLITE_FULL' || (err.code?.startsWith('SQLITE_IOERR') === true && freeBytes(dataDir) < PROBE_BYTES * 64)
    removeCreated(dataDir, createdFrom, created)
    return new ConfigError(full ? `cannot open ${file}: the disk is full (${err.code}); ${FULL_DISK}` : `cannot open ${file}: ${err.message}`)
  }
  let db: InstanceType<typeof sqlite3.Database> | undefined
  try {
    db = await new Promise<InstanceType<typeof sqlite3.Database>>((resolve, reject) => {
      const opened = new sqlite3.Database(sessionsFile, (err) => (err ? reject(err) : resolve(opened)))
    })
    const open = db
    // The table connect-sqlite3 makes, made here first: connect-sqlite3 throws a failure of its
    // own CREATE from a callback, out of reach (a full disk printed an uncaught SQLITE_FULL).
    await new Promise<void>((resolve, reject) =>
      open.exec('PRAGMA journal_mode = wal; CREATE TABLE IF NOT EXISTS sessions (sid PRIMARY KEY, expired, sess)', (err) => (err ? reject(err) : resolve())),
    )
  } catch (err) {
    await new Promise<void>((resolve) => (db ? db.close(() => resolve()) : resolve()))
    throw failed(sessionsFile, err as Error)
  }
  const sessionDb = db
  const SQLiteStore = connectSqlite3(session)
  let linkStore: InstanceType<typeof SqliteLinkStore>
  try {
    linkStore = new SqliteLinkStore({ path: linksFile })
  } catch (err) {
    await new Promise<void>((resolve) => sessionDb.close(() => resolve()))
    throw failed(linksFile, err as Error)
  }
  const sessionStore = new SQLiteStore({ db: sessionDb, table: 'sessions', concurrentDb: true })
  return {
    description: `SQLite files in ${dataDir}`,
    sessionStore,
    linkStore,
    async close() {
      await linkStore.close()
      // sqlite3 runs close after the statements already queued, so pending writes land first.
      await new Promise<void>((resolve) => sessionDb.close(() => resolve()))
    },
  }
}

/** Rejects with `message` if `promise` has not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ConfigError(message)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * Sessions in Redis through connect-redis, links in RedisLinkStore, and the Socket.IO Redis
 * adapter so that emits, logout and tab takeover reach tabs held by other nodes.
 */
async function openRedisStores(url: string): Promise<DemoStores> {
  const [{ createClient }, { RedisStore }, { createAdapter }, { RedisLinkStore }] = await Promise.all([
    import('redis'),
    import('connect-redis'),
    import('@socket.io/redis-adapter'),
    import('@session-socket/node/redis'),
  ])
  let where: string
  try {
    where = new URL(url).host
  } catch {
    throw new ConfigError(`REDIS_URL is not a URL (expected e.g. redis://127.0.0.1:6379)`)
  }
  let connected = false
  // At start-up, fail at once (one clear line) rather than retry; later, retry for ever.
  const reconnectStrategy = (retries: number, cause: Error) => (connected ? Math.min(100 * 2 ** retries, 2_000) : cause)
  // A Redis that stops answering on an open connection is caught by socketTimeout (no byte
  // for that long); pingInterval keeps idle connections above it.
  const socket = { connectTimeout: 5_000, socketTimeout: 5_000, reconnectStrategy }
  // Sessions and links: no offline queue, so commands fail at once while Redis is away (the
  // stores answer STORE_UNAVAILABLE and clients retry) instead of piling up.
  const client = createClient({ url, disableOfflineQueue: true, pingInterval: 1_000, socket })
  // The adapter's pub/sub: it publishes without catching, so these keep the offline queue and
  // no command timeout (an emit during an outage waits for Redis rather than rejecting)...
  const adapterOptions = { url, commandOptions: { timeout: 0 }, pingInterval: 1_000, socket }
  const pub = createClient(adapterOptions)
  const sub = createClient(adapterOptions)
  // ...and a publish in flight when the connection drops still rejects: catch it, or Node
  // would end the process on the unhandled rejection.
  const publish = pub.publish.bind(pub)
  Object.assign(pub, { publish: (...args: Parameters<typeof publish>) => publish(...args).catch(() => 0) })
  const clients = [client, pub, sub]
  let lastError = ''
  for (const c of clients) {
    c.on('error', (err: Error) => {
      // Start-up failures are reported once, below; later, one line per distinct error.
      if (!connected || err.message === lastError) return
      lastError = err.message
      console.error(`demo: redis: ${err.message}`)
    })
  }
  // close() lets queued commands finish: only on a live connection. Offline, drop them.
  const quitAll = () => Promise.allSettled(clients.map((c) => (c.isReady ? c.close() : c.isOpen ? c.destroy() : undefined)))
  try {
    await within(Promise.all(clients.map((c) => c.connect())), 6_000, `cannot reach Redis at ${where} (REDIS_URL) within 6 s`)
    connected = true
  } catch (err) {
    for (const c of clients) if (c.isOpen) c.destroy()
    throw err instanceof ConfigError ? err : new ConfigError(`cannot reach Redis at ${where} (REDIS_URL): ${(err as Error).message}`)
  }
  return {
    description: `Redis at ${where} (sessions, links, Socket.IO adapter)`,
    sessionStore: new RedisStore({ client, prefix: 'demo:sess:' }),
    linkStore: new RedisLinkStore({ client, prefix: 'demo:ss:' }),
    adapter: createAdapter(pub, sub),
    async close() {
      await quitAll()
    },
  }
}

/**
 * The same on Redis Cluster: node-redis cluster clients (one for sessions and links, two for
 * the adapter), and the sharded adapter (Redis 7 sharded pub/sub: SPUBLISH goes to one shard,
 * where PUBLISH on a cluster is relayed to every node).
 */
async function openRedisClusterStores(nodes: Array<{ host: string; port: number }>): Promise<DemoStores> {
  const [{ createCluster }, { RedisStore }, { createShardedAdapter }, { RedisLinkStore }] = await Promise.all([
    import('redis'),
    import('connect-redis'),
    import('@socket.io/redis-adapter'),
    import('@session-socket/node/redis'),
  ])
  const where = nodes.map(({ host, port }) => `${host}:${port}`).join(',')
  const rootNodes = nodes.map(({ host, port }) => ({ socket: { host, port } }))
  let connected = false
  // Per node connection, as for one Redis (rootNodes only serve to discover the topology; the
  // connections to the nodes it names are made from `defaults`).
  const socket = { connectTimeout: 5_000, socketTimeout: 5_000, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2_000) }
  // After a node's connection starts failing, read the topology again within a second, so
  // that a replica promoted by failover is found (node-redis waits 5 s by default).
  const topologyRefreshOnReconnectionAttemptStrategy = 1_000
  const client = createCluster({ rootNodes, defaults: { disableOfflineQueue: true, pingInterval: 1_000, socket }, topologyRefreshOnReconnectionAttemptStrategy })
  // The sharded adapter catches its own publish errors, so a command timeout is safe here: a
  // publish to a shard that is failing over gives up instead of holding the local delivery.
  const pub = createCluster({ rootNodes, defaults: { pingInterval: 1_000, socket }, commandOptions: { timeout: 2_000 }, topologyRefreshOnReconnectionAttemptStrategy })
  const sub = pub.duplicate()
  const clients = [client, pub, sub]
  let lastError = ''
  for (const c of clients) {
    c.on('error', (err: Error) => {
      if (!connected || err.message === lastError) return
      lastError = err.message
      console.error(`demo: redis cluster: ${err.message}`)
    })
  }
  try {
    await within(Promise.all(clients.map((c) => c.connect())), 6_000, `cannot reach Redis Cluster at ${where} (REDIS_CLUSTER) within 6 s`)
    connected = true
  } catch (err) {
    for (const c of clients) if (c.isOpen) c.destroy()
    throw err instanceof ConfigError ? err : new ConfigError(`cannot reach Redis Cluster at ${where} (REDIS_CLUSTER): ${(err as Error).message}`)
  }
  return {
    description: `Redis Cluster at ${where} (sessions, links, Socket.IO sharded adapter)`,
    sessionStore: new RedisStore({ client, prefix: 'demo:sess:' }),
    linkStore: new RedisLinkStore({ client, prefix: 'demo:ss:' }),
    // 'static': one channel per namespace, so ss:ended reaches a tab before the disconnect
    // that follows it (per-room channels would let the two overtake each other).
    adapter: createShardedAdapter(pub, sub, { subscriptionMode: 'static' }),
    async close() {
      await Promise.allSettled(clients.map((c) => (c.isReady ? c.close() : c.isOpen ? c.destroy() : undefined)))
    },
  }
}
