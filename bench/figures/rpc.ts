/**
 * Figure 4: RPC throughput. One tab calls a method that returns its params: session-socket's
 * `call` against raw `emitWithAck` on plain Socket.IO, one at a time and 100 in flight, with the
 * session reloaded (and saved if changed) around the handler, and without. The session-on, 100 in
 * flight runs increment a counter in the session, and the figure counts the updates each side lost.
 */
import { openTab, type Side, type Tab } from '../lib/clients.js'
import { withChildren } from '../lib/processes.js'
import { check, type BenchMode, type FigureResult, type Row } from '../lib/report.js'
import { startServer } from '../lib/servers.js'
import { fmt, ratios, summarize } from '../lib/stats.js'

const FIGURE = '4. RPC throughput'
const IN_FLIGHT = 100
/** Increments a counter in the session: reload, write, save on every call (plain), or per batch (SDK). */
const COUNTER = 'counter.increment'

/** Calls made to the counter method per side, to compare with the session's counter at the end. */
const counted = { ss: 0, plain: 0 }

/** Calls per second for `total` calls, `window` at a time. */
async function throughput(tab: Tab, method: string, total: number, window: number): Promise<number> {
  let next = 0
  const started = performance.now()
  const worker = async () => {
    while (next < total) {
      const n = next++
      const result = (await tab.call(method, { n })) as { n?: number } | null
      if (!result || result.n !== n) throw new Error(`${method}: wrong answer for ${n}: ${JSON.stringify(result)}`)
    }
  }
  await Promise.all(Array.from({ length: window }, worker))
  if (method === COUNTER) counted[tab.side] += total
  return total / ((performance.now() - started) / 1000)
}

async function open(side: Side, url: string): Promise<Tab> {
  const tab = openTab(side, url, { sdk: { maxQueue: 1000 } })
  await tab.nextSettle(10_000)
  return tab
}

export async function rpcThroughput(mode: BenchMode): Promise<FigureResult> {
  const total = mode.full ? 50_000 : 5000
  return withChildren(async (own) => {
    // maxInFlight above 100, or the 100-in-flight runs would be answered RATE_LIMITED.
    const ssServer = await startServer({ side: 'ss', store: 'memory', port: 0, ss: { maxInFlight: 128 } }, mode.cpuProfDir ? { cpuProfDir: mode.cpuProfDir } : {})
    own(ssServer.child)
    const plainServer = await startServer({ side: 'plain', store: 'memory', port: 0 })
    own(plainServer.child)
    const ss = await open('ss', ssServer.url)
    const plain = await open('plain', plainServer.url)
    try {
      const cases = [
        { name: 'session off, sequential', ssMethod: 'echo', plainMethod: 'echo', window: 1, target: '>= 0.8' },
        { name: `session off, ${IN_FLIGHT} in flight`, ssMethod: 'echo', plainMethod: 'echo', window: IN_FLIGHT, target: '>= 0.8' },
        { name: 'session on, sequential', ssMethod: 'echo.session', plainMethod: 'echo.session', window: 1 },
        { name: `session on, ${IN_FLIGHT} in flight`, ssMethod: COUNTER, plainMethod: COUNTER, window: IN_FLIGHT, target: '>= 0.9' },
      ]
      // Warm-up (JIT, first session load).
      for (const c of cases) {
        await throughput(ss, c.ssMethod, Math.min(1000, total / 4), c.window)
        await throughput(plain, c.plainMethod, Math.min(1000, total / 4), c.window)
      }
      const results: Record<string, { ss: number[]; plain: number[] }> = {}
      /** CPU µs per call, client (this process) and server, to tell where the time goes. */
      const cpu: Record<string, { ssClient: number[]; ssServer: number[]; plainClient: number[]; plainServer: number[] }> = {}
      const serverCpu = async (child: typeof ssServer.child) => {
        const { cpu: c } = await child.request<{ cpu: { user: number; system: number } }>({ cmd: 'cpu' })
        return c.user + c.system
      }
      const measured = async (tab: Tab, server: typeof ssServer, method: string, window: number) => {
        const s0 = await serverCpu(server.child)
        const c0 = process.cpuUsage()
        const rate = await throughput(tab, method, total, window)
        const c1 = process.cpuUsage(c0)
        const s1 = await serverCpu(server.child)
        return { rate, client: (c1.user + c1.system) / total, server: (s1 - s0) / total }
      }
      for (let rep = 0; rep < mode.reps; rep++) {
        for (const c of cases) {
          const r = (results[c.name] ??= { ss: [], plain: [] })
          const u = (cpu[c.name] ??= { ssClient: [], ssServer: [], plainClient: [], plainServer: [] })
          const a = await measured(ss, ssServer, c.ssMethod, c.window)
          const b = await measured(plain, plainServer, c.plainMethod, c.window)
          r.ss.push(a.rate)
          r.plain.push(b.rate)
          u.ssClient.push(a.client)
          u.ssServer.push(a.server)
          u.plainClient.push(b.client)
          u.plainServer.push(b.server)
        }
      }
      const rows: Row[] = cases.map((c) => {
        const r = results[c.name]!
        const ratio = ratios(r.ss, r.plain)
        return {
          figure: FIGURE,
          name: `${c.name} (calls/s)`,
          ss: fmt(summarize(r.ss)),
          plain: fmt(summarize(r.plain)),
          ratio,
          ...(c.target ? { target: c.target, pass: check(ratio, c.target) } : {}),
        }
      })
      for (const c of cases) {
        const u = cpu[c.name]!
        rows.push({
          figure: FIGURE,
          name: `${c.name}: CPU µs per call, client + server`,
          ss: `${fmt(summarize(u.ssClient), 1)} + ${fmt(summarize(u.ssServer), 1)}`,
          plain: `${fmt(summarize(u.plainClient), 1)} + ${fmt(summarize(u.plainServer), 1)}`,
          ratio: ratios(u.ssClient.map((x, i) => x + u.ssServer[i]!), u.plainClient.map((x, i) => x + u.plainServer[i]!)),
        })
      }
      for (const window of [1, IN_FLIGHT]) {
        const off = results[cases.find((c) => c.window === window && c.ssMethod === 'echo')!.name]!.ss
        const on = results[cases.find((c) => c.window === window && c.ssMethod !== 'echo')!.name]!.ss
        rows.push({
          figure: FIGURE,
          name: `cost of session on, ${window === 1 ? 'sequential' : `${IN_FLIGHT} in flight`}: SDK on / SDK off`,
          ss: `${fmt(summarize(on))} vs ${fmt(summarize(off))} calls/s`,
          plain: '',
          ratio: ratios(on, off),
        })
      }
      // What each side's store holds now against the increments it was sent (warm-up included).
      const lost: Record<Side, number> = { ss: 0, plain: 0 }
      for (const [side, tab] of [['ss', ss], ['plain', plain]] as const) {
        const { count } = (await tab.call('counter.read', {})) as { count: number }
        lost[side] = counted[side] - count
      }
      rows.push({
        figure: FIGURE,
        name: `session on, ${IN_FLIGHT} in flight: lost updates (calls − stored counter)`,
        ss: `${lost.ss} of ${counted.ss}`,
        plain: `${lost.plain} of ${counted.plain}`,
        target: 'SDK 0',
        pass: lost.ss === 0,
      })
      return {
        rows,
        notes: [
          `RPC: one tab, ${total} calls per measurement after a warm-up, ${mode.reps} repetitions interleaved; the method returns its params ({ n }). SDK: s.call(); plain: socket.emitWithAck() on a handler that acks. Server maxInFlight raised to 128 for the ${IN_FLIGHT}-in-flight runs (default 64 would answer RATE_LIMITED); client maxQueue 1000. MemoryStore sessions, memory link store.`,
          'Session on, sequential: the method returns its params; the SDK reloads the session before the handler and saves it after only if it changed (it does not here), touching it at most once per touchInterval (60 s); plain runs the recipe\'s req.session.reload() before acking.',
          `Session on, ${IN_FLIGHT} in flight: the method increments a counter in the session. Plain: the recipe's socket.request.session.reload(), write, save() per call, in parallel, so concurrent calls overwrite each other's counter. SDK: the calls of a session waiting behind a running batch share one reload before and one save after (handlers one at a time in call order), replies after the save. Lost updates: increments sent (warm-up included) minus the counter the store holds at the end.`,
        ],
        raw: { results, cpu, lost, counted },
      }
    } finally {
      ss.close()
      plain.close()
    }
  })
}
