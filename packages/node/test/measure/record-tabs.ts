/*
 * What recording tabs "seen" costs per tab, one store call per tab (as before `recordTabs`
 * batched them) against the batches `DurableEvents.seen` makes of the calls of one event-loop
 * turn, on SqliteLinkStore (a file on disk) and RedisLinkStore (its own redis-server).
 * Not a test: it prints figures. Run from the repo root:
 *
 *   node --import tsx packages/node/test/measure/record-tabs.ts [tabs=5000] [rounds=5]
 *
 * Each round records the same tabs twice: "cold" (every tab gets a new stream: insert) and
 * "warm" (every stream is live: update). CPU is this process's user + system time (what blocks
 * the event loop for SQLite, what node-redis spends for Redis); for Redis, the server's own CPU
 * (INFO cpu) is printed too. Medians over the rounds.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from 'redis'
import { Server } from 'socket.io'
import { DEFAULT_DURABLE, DurableEvents } from '../../src/durable.js'
import type { LinkStore, TabSeen } from '../../src/link-store.js'
import { RedisLinkStore } from '../../src/stores/redis.js'
import { SqliteLinkStore } from '../../src/stores/sqlite.js'
import { startRedis } from '../../../../test-helpers/redis-server.js'

const TABS = Number(process.argv[2] ?? 5000)
const ROUNDS = Number(process.argv[3] ?? 5)
const WINDOW = DEFAULT_DURABLE.window

interface Sample {
  /** µs of this process's CPU per tab. */
  cpu: number
  /** µs of wall time per tab. */
  wall: number
  /** µs of Redis server CPU per tab (Redis only). */
  server?: number
  /** Longest synchronous part of one store call, ms: how long it blocks the event loop (all of a SQLite call). */
  longest: number
}

type Recorder = (store: LinkStore, tabs: TabSeen[], now: number) => Promise<number>

/** Calls `store.recordTabs` and notes how long the call ran before handing back its promise. */
function timedRecord(store: LinkStore, onBlock: (ms: number) => void): LinkStore['recordTabs'] {
  return (batch, at, windowMs) => {
    const started = performance.now()
    const written = store.recordTabs(batch, at, windowMs)
    onBlock(performance.now() - started)
    return written
  }
}

/** One store call per tab, awaited in turn: what every register and disconnect did before. */
const oneByOne: Recorder = async (store, tabs, now) => {
  let longest = 0
  const record = timedRecord(store, (ms) => (longest = Math.max(longest, ms)))
  for (const tab of tabs) await record([tab], now, WINDOW)
  return longest
}

/** All tabs seen in one turn, as in a reconnect storm: DurableEvents batches them. */
const batched: Recorder = async (store, tabs, now) => {
  let longest = 0
  // DurableEvents calls nothing but recordTabs here.
  const timed = { recordTabs: timedRecord(store, (ms) => (longest = Math.max(longest, ms))) } as unknown as LinkStore
  const durable = new DurableEvents(timed, new Server().of('/'), () => now, DEFAULT_DURABLE)
  await Promise.all(tabs.map((tab) => durable.seen(tab.sessionId, tab.tabId)))
  return longest
}

async function sample(store: LinkStore, record: Recorder, tabs: TabSeen[], now: number, serverCpu?: () => Promise<number>): Promise<Sample> {
  const serverBefore = await serverCpu?.()
  const cpuBefore = process.cpuUsage()
  const started = performance.now()
  const longest = await record(store, tabs, now)
  const wall = performance.now() - started
  const cpu = process.cpuUsage(cpuBefore)
  const result: Sample = { cpu: (cpu.user + cpu.system) / tabs.length, wall: (wall * 1000) / tabs.length, longest }
  if (serverCpu) result.server = ((await serverCpu()) - serverBefore!) / tabs.length
  return result
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

function report(label: string, samples: Sample[]): void {
  const parts = [
    `cpu ${median(samples.map((s) => s.cpu)).toFixed(1)} µs/tab`,
    `wall ${median(samples.map((s) => s.wall)).toFixed(1)} µs/tab`,
    `longest loop block ${median(samples.map((s) => s.longest)).toFixed(2)} ms`,
  ]
  if (samples[0]!.server !== undefined) parts.splice(1, 0, `redis-server cpu ${median(samples.map((s) => s.server!)).toFixed(1)} µs/tab`)
  console.log(`${label.padEnd(32)} ${parts.join(', ')}`)
}

async function measure(name: string, store: LinkStore, serverCpu?: () => Promise<number>): Promise<void> {
  const results: Record<string, Sample[]> = {}
  for (let round = 0; round < ROUNDS; round++) {
    for (const [mode, record] of [['one by one', oneByOne], ['batched', batched]] as const) {
      // New tab ids per round and mode: the first pass starts every stream (cold), the second extends them (warm).
      const tabs = Array.from({ length: TABS }, (_, n) => ({ sessionId: `s${round}-${mode}-${n % 1000}`, tabId: `t${round}-${mode}-${n}` }))
      const now = Date.now()
      ;(results[`${mode}, cold`] ??= []).push(await sample(store, record, tabs, now, serverCpu))
      ;(results[`${mode}, warm`] ??= []).push(await sample(store, record, tabs, now + 1000, serverCpu))
    }
  }
  console.log(`\n${name}: ${TABS} tabs, median of ${ROUNDS} rounds`)
  for (const [label, samples] of Object.entries(results)) report(label, samples)
}

const dir = mkdtempSync(join(tmpdir(), 'ss-measure-'))
const sqlite = new SqliteLinkStore({ path: join(dir, 'links.db'), sweepIntervalMs: 0 })
try {
  await measure('SqliteLinkStore (file, WAL, synchronous=NORMAL)', sqlite)
} finally {
  await sqlite.close()
  rmSync(dir, { recursive: true, force: true })
}

const redis = await startRedis()
const client = createClient({ url: redis.url, disableOfflineQueue: true })
client.on('error', () => {})
await client.connect()
try {
  const serverCpu = async () => {
    const info = await client.info('cpu')
    const read = (key: string) => Number(/^(?:used_cpu_)?(\w+):([\d.]+)/m.exec(info.split('\n').find((line) => line.startsWith(key)) ?? '')?.[2] ?? 0)
    return (read('used_cpu_sys:') + read('used_cpu_user:')) * 1e6
  }
  await measure('RedisLinkStore (loopback redis-server)', new RedisLinkStore({ client }), serverCpu)
} finally {
  client.destroy()
  await redis.stop()
}
