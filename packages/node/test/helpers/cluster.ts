import type http from 'node:http'
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter'
import { RedisStore } from 'connect-redis'
import { createClient, createCluster } from 'redis'
import type express from 'express'
import type { LinkStore, SessionSocketServer } from '@session-socket/node'
import { RedisLinkStore } from '@session-socket/node/redis'
import { startTestServer, type TestServer, type TestServerOptions } from '@session-socket/test-helpers/test-server'

export type RedisClient = ReturnType<typeof createClient>
export type RedisClusterClient = ReturnType<typeof createCluster>
/** A node's Redis connection: to one Redis, or to Redis Cluster. */
export type AnyRedisClient = RedisClient | RedisClusterClient

/** Where the nodes keep their state: one Redis (its URL), or a Redis Cluster (its nodes). */
export type RedisTarget = { kind: 'single'; url: string } | { kind: 'cluster'; rootNodes: Array<{ url: string }> }

const reconnectStrategy = (retries: number) => Math.min(50 * (retries + 1), 300)

/**
 * Options of the client that serves the link store and the session store. No offline queue:
 * commands fail at once while Redis is away. node-redis's command `timeout` only covers the
 * wait to be written, not the reply, so a Redis that stops answering on an open connection is
 * caught by `socketTimeout` (no byte for that long), with `pingInterval` keeping idle
 * connections above it.
 */
export function dataClientOptions(url: string) {
  return {
    url,
    disableOfflineQueue: true,
    pingInterval: 1000,
    socket: { connectTimeout: 1000, socketTimeout: 3000, reconnectStrategy },
  }
}

/**
 * Options of the adapter's pub/sub clients. The adapter publishes without catching: keep the
 * offline queue and turn off node-redis 6's default 5 s command timeout, so that an emit during
 * an outage waits for Redis instead of rejecting (see also `catchPublishErrors`).
 */
export function adapterClientOptions(url: string) {
  return {
    url,
    commandOptions: { timeout: 0 },
    pingInterval: 1000,
    socket: { connectTimeout: 1000, socketTimeout: 3000, reconnectStrategy },
  }
}

/**
 * The cluster client of the link store and the session store: the same per-node settings, in
 * `defaults` (rootNodes only discover the topology), and a topology refresh 200 ms after a
 * node's connection starts failing, so that a replica promoted by failover is found within a
 * reconnect or two (node-redis waits 5 s by default).
 */
export function dataClusterOptions(rootNodes: Array<{ url: string }>) {
  return {
    rootNodes,
    defaults: { disableOfflineQueue: true, pingInterval: 1000, socket: { connectTimeout: 1000, socketTimeout: 3000, reconnectStrategy } },
    topologyRefreshOnReconnectionAttemptStrategy: 200,
  }
}

/**
 * The sharded adapter's cluster clients. Its ClusterAdapter catches every publish error
 * itself, so unlike the classic adapter's clients these may time out: a publish to a shard that
 * is failing over gives up after 2 s instead of holding the local delivery that waits for it.
 */
export function adapterClusterOptions(rootNodes: Array<{ url: string }>) {
  return {
    rootNodes,
    defaults: { pingInterval: 1000, socket: { connectTimeout: 1000, socketTimeout: 3000, reconnectStrategy } },
    commandOptions: { timeout: 2000 },
    topologyRefreshOnReconnectionAttemptStrategy: 200,
  }
}

/**
 * The redis-adapter discards the promise of every `publish`; one that rejects (in flight when
 * the connection dropped) would be an unhandled rejection, which ends a Node process by default.
 */
export function catchPublishErrors(pub: RedisClient): void {
  const publish = pub.publish.bind(pub)
  Object.assign(pub, { publish: (...args: Parameters<typeof publish>) => publish(...args).catch(() => 0) })
}

async function connect(options: Parameters<typeof createClient>[0]): Promise<RedisClient> {
  const client = createClient(options)
  // node-redis throws 'error' events nobody listens to; outages raise one per reconnect attempt.
  client.on('error', () => {})
  await client.connect()
  return client as RedisClient
}

async function connectCluster(options: Parameters<typeof createCluster>[0]): Promise<RedisClusterClient> {
  const client = createCluster(options)
  client.on('error', () => {})
  await client.connect()
  return client as RedisClusterClient
}

/** The node's Redis clients and its Socket.IO adapter, for one Redis or a cluster. */
async function connectNode(target: RedisTarget, adapterKey: string, requestsTimeout: number) {
  if (target.kind === 'single') {
    const data = await connect(dataClientOptions(target.url))
    const pub = await connect(adapterClientOptions(target.url))
    catchPublishErrors(pub)
    const sub = pub.duplicate()
    sub.on('error', () => {})
    await sub.connect()
    return { data, clients: [data, pub, sub] as AnyRedisClient[], adapter: createAdapter(pub, sub, { key: adapterKey, requestsTimeout }) }
  }
  const data = await connectCluster(dataClusterOptions(target.rootNodes))
  const pub = await connectCluster(adapterClusterOptions(target.rootNodes))
  const sub = pub.duplicate()
  sub.on('error', () => {})
  await sub.connect()
  // Sharded pub/sub (Redis 7): SPUBLISH reaches the shard of the channel's slot only, where
  // PUBLISH on a cluster is relayed to every node. 'static': one channel per namespace, so the
  // messages of one node arrive in the order sent; session-socket relies on that when it ends a
  // session (ss:ended to the session's room, then disconnectSockets). The default 'dynamic' gives
  // each room its own channel (and slot), and the two can then overtake each other.
  // (requestsTimeout is the classic adapter's: the sharded one waits 5 s for fetchSockets answers.)
  return {
    data,
    clients: [data, pub, sub] as AnyRedisClient[],
    adapter: createShardedAdapter(pub, sub, { channelPrefix: adapterKey, subscriptionMode: 'static' }),
  }
}

/** One session-socket node: its own HTTP + Socket.IO server and its own Redis connections. */
export interface ClusterNode {
  index: number
  server: TestServer
  /** Serves this node's link store and session store. */
  data: AnyRedisClient
  /** Every Redis connection of the node: data, adapter pub, adapter sub. */
  redisClients: AnyRedisClient[]
  /** False once crashed or closed. */
  readonly alive: boolean
  /**
   * Stops the node as a crash would: its client connections and Redis connections dropped,
   * nothing said to anyone. (`io.disconnectSockets()` would go through the adapter and end the
   * other nodes' sockets too, so the Engine.IO server is closed directly.)
   */
  crash(): Promise<void>
  /** Shuts the node down cleanly (after the test). */
  close(): Promise<void>
}

export interface ClusterOptions extends Omit<TestServerOptions, 'sessionStore' | 'links' | 'setup'> {
  /** How many nodes. @default 2 */
  nodes?: number
  /** Adds methods and routes to each node. */
  setup?: (ss: SessionSocketServer, app: express.Express, node: number) => void
  /** How long the adapter waits for the other nodes' answers (fetchSockets), in ms. @default 2000 */
  requestsTimeout?: number
  /** Wraps the node's link store (fault injection). @default the RedisLinkStore itself */
  links?: (client: AnyRedisClient, prefix: string, node: number) => LinkStore
}

export interface Cluster {
  nodes: ClusterNode[]
  /**
   * The adapter's channel prefix: requests between nodes go to `${adapterKey}-request#/#` (the
   * classic adapter), or `${adapterKey}#/#` (the sharded one, which carries every message).
   */
  adapterKey: string
  /** The link store's key prefix: a token's link is `${linkPrefix}link:${hashSecret(token)}`. */
  linkPrefix: string
  /** The node at `index`; throws if there is none. */
  node(index: number): ClusterNode
  close(): Promise<void>
}

let clusterNo = 0

/**
 * Starts several session-socket nodes on one Redis or on a Redis Cluster, as a deployment would
 * run them: each node has a Socket.IO redis-adapter (own pub + sub clients; the sharded adapter
 * on a cluster), a RedisLinkStore and a connect-redis session store on its own client, all
 * sharing one key prefix and one adapter channel prefix.
 */
export async function startCluster(redis: string | RedisTarget, options: ClusterOptions = {}): Promise<Cluster> {
  const target: RedisTarget = typeof redis === 'string' ? { kind: 'single', url: redis } : redis
  const { nodes: count = 2, setup, links: makeLinks, requestsTimeout = 2000, ...serverOptions } = options
  const prefix = `c${process.pid}-${++clusterNo}:`
  const adapterKey = `${prefix}socket.io`
  const nodes: ClusterNode[] = []
  const cluster: Cluster = {
    nodes,
    adapterKey,
    linkPrefix: `${prefix}ss:`,
    node(index) {
      const node = nodes[index]
      if (!node) throw new Error(`no node ${index}; the cluster has ${nodes.length}`)
      return node
    },
    async close() {
      for (const node of nodes) await node.close()
    },
  }
  try {
    for (let index = 0; index < count; index++) nodes.push(await startNode(index))
  } catch (err) {
    await cluster.close()
    throw err
  }
  return cluster

  async function startNode(index: number): Promise<ClusterNode> {
    const { data, clients, adapter } = await connectNode(target, adapterKey, requestsTimeout)
    let server: TestServer
    try {
      server = await startTestServer({
        ...serverOptions,
        sessionStore: new RedisStore({ client: data, prefix: `${prefix}sess:` }),
        links: makeLinks ? makeLinks(data, `${prefix}ss:`, index) : new RedisLinkStore({ client: data, prefix: `${prefix}ss:` }),
        io: { ...serverOptions.io, adapter },
        setup: setup ? (ss, app) => setup(ss, app, index) : undefined,
      })
    } catch (err) {
      for (const client of clients) client.destroy()
      throw err
    }
    let alive = true
    const { io } = server
    // startTestServer attaches io to a plain node:http server.
    const httpServer = io.httpServer as http.Server
    return {
      index,
      server,
      data,
      redisClients: clients,
      get alive() {
        return alive
      },
      async crash() {
        if (!alive) return
        alive = false
        server.ss.close()
        io.engine.close()
        httpServer.closeAllConnections()
        await new Promise<void>((resolve) => httpServer.close(() => resolve()))
        for (const client of clients) client.destroy()
      },
      async close() {
        if (!alive) return
        alive = false
        server.ss.close()
        httpServer.closeAllConnections()
        await io.close()
        for (const client of clients) {
          // close() waits for pending replies, which a Redis that stopped answering never sends.
          if (client.isReady) await Promise.race([client.close(), new Promise((resolve) => setTimeout(resolve, 1000))])
          if (client.isOpen) client.destroy()
        }
      },
    }
  }
}
