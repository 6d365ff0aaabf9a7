/**
 * Figure 7: register and call latency per store, one tab at a time on loopback: session-socket
 * against plain Socket.IO with the express-session recipe on the same session store. A first
 * connect (no cookie), a reconnect (the cookie, and the SDK's token), and calls one after
 * another with the session off and on. Where figure 1 times round trips through a slow link,
 * this one times what each store adds to them.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { memoryTokenStorage, openTab, type Side, type Tab } from '../lib/clients.js'
import { CookieJar } from '../lib/jar.js'
import { withChildren } from '../lib/processes.js'
import type { BenchMode, FigureResult, Row } from '../lib/report.js'
import { startServer } from '../lib/servers.js'
import { quantile, ratios, summarize } from '../lib/stats.js'
import { startStoreBackend, storeKinds, STORE_DESCRIPTIONS, type StoreBackend } from '../lib/stores.js'
import type { StoreKind } from '../server.js'

const FIGURE = '7. Register and call latency by store'

async function timeToReady(side: Side, url: string, jar: CookieJar, tokens: ReturnType<typeof memoryTokenStorage>): Promise<number> {
  const started = performance.now()
  const tab = openTab(side, url, { jar, tokens })
  try {
    const settled = await tab.nextSettle(10_000)
    if (settled !== 'ready') throw new Error(`${side} tab settled ${settled}`)
    return performance.now() - started
  } finally {
    tab.close()
  }
}

async function callTimes(tab: Tab, method: string, count: number): Promise<number[]> {
  const times: number[] = []
  for (let n = 0; n < count; n++) {
    const started = performance.now()
    const result = (await tab.call(method, { n })) as { n?: number } | null
    times.push(performance.now() - started)
    if (!result || result.n !== n) throw new Error(`${method}: wrong answer for ${n}: ${JSON.stringify(result)}`)
  }
  return times
}

/** "0.84 ms (p99 2.1)" */
function latency(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b)
  const digits = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1))
  return `${digits(quantile(sorted, 0.5))} ms (p99 ${digits(quantile(sorted, 0.99))})`
}

export async function storeLatency(mode: BenchMode): Promise<FigureResult> {
  const stores: StoreKind[] = storeKinds(mode.stores ?? ['memory', 'redis', 'redis-cluster'])
  const connects = mode.full ? 200 : Math.max(30, 10 * mode.reps)
  const calls = mode.full ? 3000 : 500
  const rows: Row[] = []
  const raw: Record<string, Record<string, number[]>> = {}
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-bench-latency-'))
  let backend: StoreBackend | undefined
  try {
    for (const store of stores) {
      backend = await startStoreBackend(store)
      const reach = backend.config
      const samples = await withChildren(async (own) => {
        const server = async (side: Side) => {
          const dataDir = path.join(tmp, `${store}-${side}`)
          fs.mkdirSync(dataDir, { recursive: true })
          const started = await startServer({ side, store, port: 0, dataDir, ...reach })
          own(started.child)
          return started.url
        }
        const urls = { ss: await server('ss'), plain: await server('plain') }
        const s: Record<string, number[]> = { ssFirst: [], plainFirst: [], ssAgain: [], plainAgain: [] }
        // Warm-up, not counted (JIT, first connections to every Redis node, script loads).
        for (let i = 0; i < 5; i++) for (const side of ['ss', 'plain'] as const) await timeToReady(side, urls[side], new CookieJar(), memoryTokenStorage())
        for (let i = 0; i < connects; i++) {
          for (const side of ['ss', 'plain'] as const) {
            const jar = new CookieJar()
            const tokens = memoryTokenStorage()
            s[`${side}First`]!.push(await timeToReady(side, urls[side], jar, tokens))
            s[`${side}Again`]!.push(await timeToReady(side, urls[side], jar, tokens))
          }
        }
        for (const side of ['ss', 'plain'] as const) {
          const tab = openTab(side, urls[side])
          try {
            if ((await tab.nextSettle(10_000)) !== 'ready') throw new Error(`${side} tab did not get ready`)
            await callTimes(tab, 'echo', 200)
            await callTimes(tab, 'echo.session', 200)
            s[`${side}Call`] = await callTimes(tab, 'echo', calls)
            s[`${side}CallSession`] = await callTimes(tab, 'echo.session', calls)
          } finally {
            tab.close()
          }
        }
        return s
      })
      await backend.stop()
      backend = undefined
      raw[store] = samples
      // Connects are interleaved (pairwise ratios); calls are two runs (ratio of medians).
      const row = (name: string, ss: number[], plain: number[], paired: boolean): Row => ({
        figure: FIGURE,
        name: `${store}: ${name}`,
        ss: latency(ss),
        plain: latency(plain),
        ratio: paired ? ratios(ss, plain) : summarize([summarize(ss).median / summarize(plain).median]),
      })
      rows.push(
        row('first connect → ready (no cookie, no token)', samples.ssFirst!, samples.plainFirst!, true),
        row('reconnect → ready (cookie + token / cookie)', samples.ssAgain!, samples.plainAgain!, true),
        row('call, session off', samples.ssCall!, samples.plainCall!, false),
        row('call, session on', samples.ssCallSession!, samples.plainCallSession!, false),
      )
    }
  } finally {
    await backend?.stop()
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  return {
    rows,
    notes: [
      `Latency: ${connects} first connects and ${connects} reconnects per side (interleaved, after 5 warm-ups), then ${calls} calls one after another per method on one tab; median and p99; ratio = median of pairwise ratios for the connects, ratio of medians for the calls. Loopback, WebSocket transport, no added delay (figure 1 adds 25 ms each way). SDK: createSessionSocket → ready (register: link lookup or mint, session-tab record), s.call(); plain: io() → connect (express-session on the handshake, new sessions saved), emitWithAck(). Session on: reloaded around the handler (both sides).`,
      `Stores: ${stores.map((store) => `${store} = ${STORE_DESCRIPTIONS[store]}`).join('; ')}. On the cluster every Lua script touches one hash slot: a new link is two round trips (its session's index, then the link), a register's tab record two (the tab's stream, then the session's tab list), each to the shard of its key.`,
    ],
    raw,
  }
}
