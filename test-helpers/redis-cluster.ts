import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { createClient } from 'redis'
import { freePort, startRedis, type RedisServer } from './redis-server.js'

const REDIS_CLI = '/usr/bin/redis-cli'
const run = promisify(execFile)

/** One redis-server of a cluster, and the role it has now. */
export interface RedisClusterNode {
  /** `127.0.0.1:<port>`, as the cluster names it. */
  address: string
  port: number
  url: string
  server: RedisServer
}

/** One line of `CLUSTER NODES`, as seen by a live node. */
export interface ClusterNodeState {
  id: string
  address: string
  role: 'master' | 'replica'
  /** The master this replica follows. */
  masterId: string | undefined
  /** Marked `fail` (or `fail?`) by the node that answered. */
  failing: boolean
  /** Slot ranges served, [from, to] inclusive (masters). */
  slots: Array<[number, number]>
}

/** A local Redis Cluster: N masters with R replicas each, on free loopback ports. */
export interface RedisCluster {
  nodes: RedisClusterNode[]
  /** For node-redis `createCluster({ rootNodes })`: every node. */
  rootNodes: Array<{ url: string }>
  /** `host:port,host:port…`, as the demo's REDIS_CLUSTER takes them. */
  addresses: string
  /** The cluster as a live node sees it now. */
  state(): Promise<ClusterNodeState[]>
  /** The node that serves `key`'s slot now (a master). */
  masterOf(key: string): Promise<RedisClusterNode>
  /** The replicas of `master`, as the cluster knows them now. */
  replicasOf(master: RedisClusterNode): Promise<RedisClusterNode[]>
  /**
   * Resolves once every live node says `cluster_state:ok`, agrees on who serves every slot,
   * and every live replica's link to its master is up; rejects after `timeoutMs`.
   */
  waitUntilHealthy(timeoutMs?: number): Promise<void>
  /**
   * Resolves once every live replica has applied everything its master has written (replica
   * offset = master offset); rejects after `timeoutMs`.
   */
  waitForReplication(timeoutMs?: number): Promise<void>
  /**
   * Cuts `master` off from its replicas: each replica's link is dropped and its reconnects fail
   * (a wrong `masterauth`), so writes the master acknowledges from now on are not replicated.
   * Resolves once the master has no replica connected; the returned function lets them sync
   * again.
   */
  isolateReplicas(master: RedisClusterNode): Promise<() => Promise<void>>
  /**
   * Starts a stopped or killed node again (same port, same cluster config file): it rejoins,
   * as a replica if its master role went to another node meanwhile. Waits until healthy.
   */
  restart(node: RedisClusterNode): Promise<void>
  /** Runs one command on one node (its own short-lived connection). */
  command(node: RedisClusterNode, args: string[]): Promise<unknown>
  /** SIGTERM every node, removes the folder. */
  stop(): Promise<void>
}

export interface StartRedisClusterOptions {
  /** @default 3 */
  masters?: number
  /** @default 1 */
  replicasPerMaster?: number
  /**
   * `cluster-node-timeout`: how long a master may be unreachable before its replica takes over.
   * Short here so failover tests are quick; Redis's default is 15000.
   * @default 1000
   */
  nodeTimeoutMs?: number
  /** Extra redis-server arguments for every node; later ones win. @default [] */
  args?: string[]
}

function parseNodes(text: string): ClusterNodeState[] {
  return text
    .trim()
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      const [id, addr, flags, master, , , , , ...slots] = line.split(' ')
      const flagList = flags!.split(',')
      return {
        id: id!,
        // "127.0.0.1:7000@17000" (cluster bus port after the @)
        address: addr!.split('@')[0]!,
        role: flagList.includes('master') ? 'master' : 'replica',
        masterId: master === '-' ? undefined : master,
        failing: flagList.includes('fail') || flagList.includes('fail?'),
        slots: slots
          .filter((s) => !s.startsWith('['))
          .map((s) => {
            const [from, to] = s.split('-').map(Number)
            return [from!, to ?? from!] as [number, number]
          }),
      }
    })
}

function alive(node: RedisClusterNode): boolean {
  return node.server.running
}

/**
 * Starts a real Redis Cluster of `/usr/bin/redis-server` processes (`--cluster-enabled yes`, no
 * persistence, bound to 127.0.0.1, each with its own cluster config file in one temp folder),
 * joins them with `redis-cli --cluster create … --cluster-replicas R --cluster-yes`, and
 * resolves once it is healthy (see `waitUntilHealthy`). Call `stop()` in afterAll; the
 * processes are also SIGKILLed when the test worker exits.
 *
 * @example
 * let cluster: RedisCluster
 * beforeAll(async () => { cluster = await startRedisCluster() }, 60_000)
 * afterAll(async () => { await cluster?.stop() })
 * const client = createCluster({ rootNodes: cluster.rootNodes })
 */
export async function startRedisCluster(options: StartRedisClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3
  const replicas = options.replicasPerMaster ?? 1
  const dir = mkdtempSync(join(tmpdir(), 'ss-redis-cluster-'))
  const nodes: RedisClusterNode[] = []

  const command = async (node: RedisClusterNode, args: string[]): Promise<unknown> => {
    const client = createClient({ url: node.url, socket: { connectTimeout: 2000, reconnectStrategy: false } })
    client.on('error', () => {})
    await client.connect()
    try {
      return await client.sendCommand(args)
    } finally {
      client.destroy()
    }
  }

  async function state(): Promise<ClusterNodeState[]> {
    let lastError: unknown
    for (const node of nodes.filter(alive)) {
      try {
        return parseNodes(String(await command(node, ['CLUSTER', 'NODES'])))
      } catch (err) {
        lastError = err
      }
    }
    throw new Error(`no cluster node answered CLUSTER NODES: ${(lastError as Error)?.message}`)
  }

  const byAddress = (address: string) => {
    const node = nodes.find((n) => n.address === address)
    if (!node) throw new Error(`${address} is not a node of this cluster`)
    return node
  }

  /** Problems that keep the cluster from being healthy now; empty when it is. */
  async function problems(): Promise<string[]> {
    const found: string[] = []
    const live = nodes.filter(alive)
    const views = await Promise.all(
      live.map(async (node) => {
        try {
          const info = String(await command(node, ['CLUSTER', 'INFO']))
          const view = parseNodes(String(await command(node, ['CLUSTER', 'NODES'])))
          const replication = String(await command(node, ['INFO', 'replication']))
          return { node, info, view, replication }
        } catch (err) {
          found.push(`${node.address}: ${(err as Error).message}`)
          return undefined
        }
      }),
    )
    let owners: string | undefined
    for (const v of views) {
      if (!v) continue
      if (!/cluster_state:ok/.test(v.info)) found.push(`${v.node.address}: cluster_state is not ok`)
      const me = v.view.find((n) => n.address === v.node.address)
      if (me?.role === 'replica' && !/master_link_status:up/.test(v.replication)) found.push(`${v.node.address}: replica link not up`)
      // Every node must name the same live master for every slot range.
      const mine = v.view
        .filter((n) => n.role === 'master' && n.slots.length > 0)
        .map((n) => `${n.address}=${n.failing ? 'failing' : 'ok'}:${n.slots.map((s) => s.join('-')).join(',')}`)
        .sort()
        .join(' ')
      if (mine.includes('failing')) found.push(`${v.node.address}: a master serving slots is failing`)
      if (owners === undefined) owners = mine
      else if (owners !== mine) found.push(`${v.node.address}: disagrees about slot owners`)
    }
    return found
  }

  function waitUntilHealthy(timeoutMs = 30_000): Promise<void> {
    return until('not healthy', timeoutMs, problems)
  }

  /** Polls `check` (a few round trips) until it returns no problem; rejects with the last ones. */
  async function until(what: string, timeoutMs: number, check: () => Promise<string[]>): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let last: string[] = []
    for (let round = 0; Date.now() < deadline; round++) {
      last = await check()
      if (last.length === 0) return
      await new Promise((resolve) => setTimeout(resolve, Math.min(20 * (round + 1), 200)))
    }
    throw new Error(`${what} (Redis Cluster in ${dir}) after ${timeoutMs} ms: ${last.join('; ')}`)
  }

  async function replicasOf(master: RedisClusterNode): Promise<RedisClusterNode[]> {
    const view = await state()
    const id = view.find((n) => n.address === master.address)?.id
    return view.filter((n) => n.role === 'replica' && n.masterId === id).map((n) => byAddress(n.address))
  }

  async function lagging(): Promise<string[]> {
    const found: string[] = []
    for (const node of nodes.filter(alive)) {
      const info = String(await command(node, ['INFO', 'replication']))
      if (!/role:master/.test(info)) continue
      const offset = /master_repl_offset:(\d+)/.exec(info)?.[1]
      for (const [, replica, replicaOffset] of info.matchAll(/slave\d+:ip=[^,]+,port=(\d+),state=\w+,offset=(\d+)/g)) {
        if (replicaOffset !== offset) found.push(`replica :${replica} at ${replicaOffset}, master ${node.address} at ${offset}`)
      }
    }
    return found
  }

  async function stop(): Promise<void> {
    await Promise.all(nodes.map((node) => node.server.stop()))
    rmSync(dir, { recursive: true, force: true })
  }

  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const port = await freePort()
      const busPort = await freePort()
      const server = await startRedis({
        port,
        args: [
          '--cluster-enabled', 'yes',
          '--cluster-port', String(busPort),
          '--cluster-config-file', join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout', String(options.nodeTimeoutMs ?? 1000),
          '--dir', dir,
          // A replica's first sync starts at once (Redis waits 5 s for more replicas by default).
          '--repl-diskless-sync-delay', '0',
          ...(options.args ?? []),
        ],
      })
      nodes.push({ address: `127.0.0.1:${port}`, port, url: server.url, server })
    }
    await run(REDIS_CLI, ['--cluster', 'create', ...nodes.map((n) => n.address), '--cluster-replicas', String(replicas), '--cluster-yes'], {
      timeout: 30_000,
    })
    await waitUntilHealthy()
  } catch (err) {
    await stop()
    throw err
  }

  return {
    nodes,
    rootNodes: nodes.map((n) => ({ url: n.url })),
    addresses: nodes.map((n) => n.address).join(','),
    state,
    async masterOf(key) {
      const slot = Number(await command(nodes.find(alive)!, ['CLUSTER', 'KEYSLOT', key]))
      const owner = (await state()).find((n) => n.role === 'master' && !n.failing && n.slots.some(([from, to]) => slot >= from && slot <= to))
      if (!owner) throw new Error(`no live master serves slot ${slot} (key ${key})`)
      return byAddress(owner.address)
    },
    replicasOf,
    waitUntilHealthy,
    waitForReplication: (timeoutMs = 10_000) => until('replicas behind', timeoutMs, lagging),
    async isolateReplicas(master) {
      const replicas = await replicasOf(master)
      for (const replica of replicas) {
        await command(replica, ['CONFIG', 'SET', 'masterauth', 'not-the-password'])
        await command(replica, ['CLIENT', 'KILL', 'TYPE', 'master'])
      }
      await until('replicas still connected', 10_000, async () => {
        const info = String(await command(master, ['INFO', 'replication']))
        return /connected_slaves:0\b/.test(info) ? [] : [`${master.address}: ${/connected_slaves:\d+/.exec(info)?.[0]}`]
      })
      return async () => {
        for (const replica of replicas.filter(alive)) await command(replica, ['CONFIG', 'SET', 'masterauth', ''])
      }
    },
    async restart(node) {
      await node.server.restart()
      await waitUntilHealthy()
    },
    command,
    stop,
  }
}
