/**
 * Figure 3: server heap per connection. The server runs with --expose-gc; heapUsed after gc
 * before and after N tabs connect (from two load processes), for session-socket (registered
 * tabs) and plain Socket.IO with the recipe (sockets with their session). Memory stores on both
 * sides, so sessions (and the SDK's link records) are in the heap being measured.
 */
import { withChildren } from '../lib/processes.js'
import { check, type BenchMode, type FigureResult, type Row } from '../lib/report.js'
import { startLoad, startServer } from '../lib/servers.js'
import { fmt, summarize } from '../lib/stats.js'
import type { Side } from '../lib/clients.js'

const FIGURE = '3. Memory per tab'

interface HeapAnswer {
  memory: NodeJS.MemoryUsage
  sockets: number
}

export interface MemorySample {
  count: number
  /** heapUsed delta per connection (bytes). */
  heapPerTab: number
  /** external + arrayBuffers delta per connection (bytes): socket buffers live there. */
  externalPerTab: number
  /** rss delta per connection (bytes). */
  rssPerTab: number
}

async function measure(side: Side, count: number, batch: number): Promise<MemorySample> {
  return withChildren(async (own) => {
    const server = await startServer({ side, store: 'memory', port: 0 }, { gc: true })
    own(server.child)
    const loads = [own(await startLoad(`load(${side},mem,0)`)), own(await startLoad(`load(${side},mem,1)`))]
    // Warm-up: a few connections first, so lazily created structures (JIT code, module-level
    // caches, the first room) are in the "before" figure rather than spread over N.
    await loads[0]!.request({ cmd: 'open', side, url: server.url, count: 20, batch: 20, backoff: 'sio', timeoutMs: 60_000 })
    const before = await server.child.request<HeapAnswer>({ cmd: 'heap' })
    const per = Math.ceil(count / loads.length)
    await Promise.all(loads.map((load) => load.request({ cmd: 'open', side, url: server.url, count: per, batch, backoff: 'sio', timeoutMs: 300_000 }, 320_000)))
    const after = await server.child.request<HeapAnswer>({ cmd: 'heap' })
    const added = after.sockets - before.sockets
    if (added !== per * loads.length) throw new Error(`${side}: expected ${per * loads.length} more sockets, server has ${added} more`)
    const ext = (m: NodeJS.MemoryUsage) => m.external + m.arrayBuffers
    return {
      count: added,
      heapPerTab: (after.memory.heapUsed - before.memory.heapUsed) / added,
      externalPerTab: (ext(after.memory) - ext(before.memory)) / added,
      rssPerTab: (after.memory.rss - before.memory.rss) / added,
    }
  })
}

export async function memoryPerTab(mode: BenchMode): Promise<FigureResult> {
  const count = mode.full ? 10_000 : 1000
  const batch = mode.full ? 200 : 100
  const ss: MemorySample[] = []
  const plain: MemorySample[] = []
  for (let rep = 0; rep < mode.reps; rep++) {
    plain.push(await measure('plain', count, batch))
    ss.push(await measure('ss', count, batch))
  }
  const kb = (xs: number[]) => summarize(xs.map((x) => x / 1024))
  const extra: number[] = ss.map((s, i) => s.heapPerTab - plain[i]!.heapPerTab)
  const extraKb = kb(extra)
  const target = '<= 2'
  const rows: Row[] = [
    {
      figure: FIGURE,
      name: `server heapUsed per connection, ${count} connections`,
      ss: `${fmt(kb(ss.map((s) => s.heapPerTab)), 2)} KB`,
      plain: `${fmt(kb(plain.map((s) => s.heapPerTab)), 2)} KB`,
      ratio: summarize(ss.map((s, i) => s.heapPerTab / plain[i]!.heapPerTab)),
    },
    {
      figure: FIGURE,
      name: 'extra heap per tab over plain (KB; target is on this, not a ratio)',
      ss: `+${fmt(extraKb, 2)} KB`,
      plain: '',
      target: `${target} KB`,
      pass: Number.isFinite(extraKb.median) ? extraKb.median <= 2 : undefined,
    },
    {
      figure: FIGURE,
      name: 'external + arrayBuffers per connection',
      ss: `${fmt(kb(ss.map((s) => s.externalPerTab)), 2)} KB`,
      plain: `${fmt(kb(plain.map((s) => s.externalPerTab)), 2)} KB`,
    },
    {
      figure: FIGURE,
      name: 'rss per connection',
      ss: `${fmt(kb(ss.map((s) => s.rssPerTab)), 1)} KB`,
      plain: `${fmt(kb(plain.map((s) => s.rssPerTab)), 1)} KB`,
    },
  ]
  void check
  return {
    rows,
    notes: [
      `Memory: a fresh server process per measurement (--expose-gc), MemoryStore sessions on both sides (+ MemoryLinkStore links for the SDK); heapUsed after 3 gc() before and after ${count} tabs from 2 load processes, after a 20-tab warm-up; ${mode.reps} repetitions per side, interleaved. Each tab is a new browser: one session each (both sides save it), one link record each (SDK). The plain side runs the recipe with socket.join(session.id) for logout.`,
    ],
    raw: { ss, plain },
  }
}
