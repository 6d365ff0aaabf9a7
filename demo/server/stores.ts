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

/** Embedded stores by default; Redis when REDIS_URL is set. */
export function openStores(config: DemoConfig): Promise<DemoStores> {
  return config.redisUrl ? openRedisStores(config.redisUrl) : openSqliteStores(config.dataDir)
}

/** Fails early, with the folder in the message, rather than at the first session write. */
function checkWritable(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true })
    const probe = path.join(dir, `.write-check-${process.pid}`)
    fs.writeFileSync(probe, '')
    fs.unlinkSync(probe)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    throw new ConfigError(`data folder ${dir} is not writable (${code}); set DATA_DIR to a writable folder`)
  }
}

/**
 * Sessions in SQLite through connect-sqlite3 (on the sqlite3 driver), links in SqliteLinkStore
 * (on better-sqlite3), each in its own file: two drivers on one file would only contend for
 * its write lock.
 */
async function openSqliteStores(dataDir: string): Promise<DemoStores> {
  checkWritable(dataDir)
  // Loaded here, not at the top: a Redis run never needs the native SQLite drivers.
  const [{ default: sqlite3 }, { default: connectSqlite3 }, { SqliteLinkStore }] = await Promise.all([
    import('sqlite3'),
    import('connect-sqlite3'),
    import('@session-socket/node/sqlite'),
  ])
  const sessionsFile = path.join(dataDir, 'sessions.db')
  const db = await new Promise<InstanceType<typeof sqlite3.Database>>((resolve, reject) => {
    const opened = new sqlite3.Database(sessionsFile, (err) => (err ? reject(err) : resolve(opened)))
  }).catch((err: Error) => {
    throw new ConfigError(`cannot open ${sessionsFile}: ${err.message}`)
  })
  const SQLiteStore = connectSqlite3(session)
  const sessionStore = new SQLiteStore({ db, table: 'sessions', concurrentDb: true })
  let linkStore: InstanceType<typeof SqliteLinkStore>
  try {
    linkStore = new SqliteLinkStore({ path: path.join(dataDir, 'links.db') })
  } catch (err) {
    db.close()
    throw new ConfigError(`cannot open ${path.join(dataDir, 'links.db')}: ${(err as Error).message}`)
  }
  return {
    description: `SQLite files in ${dataDir}`,
    sessionStore,
    linkStore,
    async close() {
      await linkStore.close()
      // sqlite3 runs close after the statements already queued, so pending writes land first.
      await new Promise<void>((resolve) => db.close(() => resolve()))
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
  // Commands fail at once while Redis is away (the stores answer STORE_UNAVAILABLE and clients
  // retry) instead of piling up in an offline queue; the clients reconnect by themselves.
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: { connectTimeout: 5_000, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2_000) },
  })
  const pub = client.duplicate()
  const sub = client.duplicate()
  const clients = [client, pub, sub]
  let lastError = ''
  for (const c of clients) {
    c.on('error', (err: Error) => {
      // One line per distinct error, not one per reconnect attempt.
      if (err.message === lastError) return
      lastError = err.message
      console.error(`demo: redis: ${err.message}`)
    })
  }
  const quitAll = () => Promise.allSettled(clients.map((c) => (c.isOpen ? c.close() : Promise.resolve())))
  try {
    await within(Promise.all(clients.map((c) => c.connect())), 5_000, `cannot reach Redis at ${where} (REDIS_URL) within 5 s`)
  } catch (err) {
    clients.forEach((c) => c.destroy())
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
