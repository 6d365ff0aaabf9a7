/**
 * Session-off sequential calls, SDK and plain Socket.IO alternating in one run, with user and
 * system CPU per call of the client (this process) and of each server, for telling a per-call
 * cost from noise on a shared machine:
 *   node --import tsx bench/rpc-seq-profile.ts [calls=20000] [alternations=6]
 * BENCH_DIST as in bench/rpc-profile.ts.
 */
import os from 'node:os'
import { prepareBenchChildren } from './lib/dist.js'
import { withChildren } from './lib/processes.js'
import { startServer } from './lib/servers.js'
import type { Side } from './lib/clients.js'

const [callsArg = '20000', altArg = '6'] = process.argv.slice(2)
const snapshot = await prepareBenchChildren()
const { openTab } = await import('./lib/clients.js')
const total = Number(callsArg)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
try {
  await withChildren(async (own) => {
    const sides = {} as Record<Side, { server: Awaited<ReturnType<typeof startServer>>; tab: ReturnType<typeof openTab> }>
    for (const side of ['ss', 'plain'] as Side[]) {
      const server = await startServer({ side, store: 'memory', port: 0 })
      own(server.child)
      const tab = openTab(side, server.url, { sdk: { maxQueue: 1000 } })
      await tab.nextSettle(10_000)
      sides[side] = { server, tab }
    }
    const cpu = async (side: Side) => (await sides[side].server.child.request<{ cpu: { user: number; system: number } }>({ cmd: 'cpu' })).cpu
    const run = async (side: Side, calls: number) => {
      const { tab } = sides[side]
      const s0 = await cpu(side)
      const c0 = process.cpuUsage()
      const started = performance.now()
      for (let n = 0; n < calls; n++) {
        const result = (await tab.call('echo', { n })) as { n?: number }
        if (result.n !== n) throw new Error(`wrong answer for ${n}`)
      }
      const seconds = (performance.now() - started) / 1000
      const c = process.cpuUsage(c0)
      const s1 = await cpu(side)
      return { rate: calls / seconds, cu: c.user / calls, cs: c.system / calls, su: (s1.user - s0.user) / calls, ss: (s1.system - s0.system) / calls }
    }
    await run('ss', 5000)
    await run('plain', 5000)
    const rows: Record<Side, Awaited<ReturnType<typeof run>>[]> = { ss: [], plain: [] }
    const load0 = os.loadavg()[0]!
    for (let i = 0; i < Number(altArg); i++) {
      for (const side of (i % 2 ? ['plain', 'ss'] : ['ss', 'plain']) as Side[]) rows[side].push(await run(side, total))
    }
    const load1 = os.loadavg()[0]!
    for (const side of ['ss', 'plain'] as Side[]) {
      const r = rows[side]
      const m = (k: keyof (typeof r)[number]) => median(r.map((x) => x[k])).toFixed(1)
      console.log(`${side.padEnd(5)} ${m('rate')} calls/s; CPU µs/call client ${m('cu')} user + ${m('cs')} sys, server ${m('su')} user + ${m('ss')} sys; total ${median(r.map((x) => x.cu + x.cs + x.su + x.ss)).toFixed(1)}`)
    }
    const ratio = (f: (x: (typeof rows.ss)[number]) => number) => median(rows.ss.map((x, i) => f(x) / f(rows.plain[i]!))).toFixed(3)
    console.log(`ratio ss/plain: calls/s ${ratio((x) => x.rate)}, CPU client+server ${ratio((x) => x.cu + x.cs + x.su + x.ss)}; load average ${load0.toFixed(2)} -> ${load1.toFixed(2)}`)
    for (const side of ['ss', 'plain'] as Side[]) sides[side].tab.close()
  })
} finally {
  snapshot.remove()
}
