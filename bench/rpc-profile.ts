/**
 * CPU profile of one RPC case, server and client, for looking into the RPC figure:
 *   node --cpu-prof --cpu-prof-dir=DIR --import tsx bench/rpc-profile.ts ss|plain echo|echo.session [calls=100000] [window=100]
 * The server's profile lands in bench/results/profiles. BENCH_SS_OPTIONS='{"resultTtl":1000}' adds server options.
 * BENCH_DIST=<dir>/node_modules/@session-socket measures a build made elsewhere (e.g. `tsc --outDir`,
 * somewhere under the repository so its imports resolve) instead of a copy of the packages' dist,
 * so an experiment need not rebuild the dist others' tests run.
 */
import fs from 'node:fs'
import path from 'node:path'
import { prepareBenchChildren } from './lib/dist.js'
import { BENCH_DIR, withChildren } from './lib/processes.js'
import { startServer } from './lib/servers.js'
import type { Side } from './lib/clients.js'

const [side = 'ss', method = 'echo', callsArg = '100000', windowArg = '100'] = process.argv.slice(2)
const snapshot = await prepareBenchChildren()
const { openTab } = await import('./lib/clients.js')
const profiles = path.join(BENCH_DIR, 'results', 'profiles')
fs.mkdirSync(profiles, { recursive: true })
try {
  await withChildren(async (own) => {
    const server = await startServer({ side: side as Side, store: 'memory', port: 0, ss: { maxInFlight: 128, ...JSON.parse(process.env.BENCH_SS_OPTIONS ?? '{}') } }, { cpuProfDir: profiles })
    own(server.child)
    const tab = openTab(side as Side, server.url, { sdk: { maxQueue: 1000 } })
    await tab.nextSettle(10_000)
    const total = Number(callsArg)
    // Warm-up (JIT), as the RPC figure does, so CPU per call is the steady state's.
    let warm = 0
    await Promise.all(
      Array.from({ length: Number(windowArg) }, async () => {
        while (warm < 5000) await tab.call(method, { n: warm++ })
      }),
    )
    // Read and write system calls of both processes (Linux /proc), to tell a cost per call from
    // a change in how packets are batched.
    const syscalls = () => {
      try {
        return ['self', server.child.proc.pid!].map((pid) => {
          const io = fs.readFileSync(`/proc/${pid}/io`, 'utf8')
          return { reads: Number(/syscr: (\d+)/.exec(io)![1]), writes: Number(/syscw: (\d+)/.exec(io)![1]) }
        })
      } catch {
        return undefined
      }
    }
    const sys0 = syscalls()
    let next = 0
    const started = performance.now()
    const c0 = process.cpuUsage()
    const s0 = (await server.child.request<{ cpu: { user: number; system: number } }>({ cmd: 'cpu' })).cpu
    await Promise.all(
      Array.from({ length: Number(windowArg) }, async () => {
        while (next < total) await tab.call(method, { n: next++ })
      }),
    )
    const seconds = (performance.now() - started) / 1000
    const c1 = process.cpuUsage(c0)
    const s1 = (await server.child.request<{ cpu: { user: number; system: number } }>({ cmd: 'cpu' })).cpu
    const sys1 = syscalls()
    if (sys0 && sys1) {
      const per = (i: number, kind: 'reads' | 'writes') => ((sys1[i]![kind] - sys0[i]![kind]) / total).toFixed(2)
      console.log(`system calls per call: client ${per(0, 'writes')} writes, ${per(0, 'reads')} reads; server ${per(1, 'writes')} writes, ${per(1, 'reads')} reads`)
    }
    console.log(`${side} ${method}: ${(total / seconds).toFixed(0)} calls/s; CPU µs/call client ${((c1.user + c1.system) / total).toFixed(1)}, server ${((s1.user + s1.system - s0.user - s0.system) / total).toFixed(1)}`)
    tab.close()
  })
} finally {
  snapshot.remove()
}
