/**
 * Figure 1: time to ready through a proxy adding 25 ms each way, session-socket
 * (createSessionSocket → ready) against plain Socket.IO (io() → connect). Both sides keep their
 * cookies in a per-browser jar; session-socket also keeps its token between the two connects.
 */
import { startTcpProxy, type TcpProxy } from '../../e2e/helpers/tcp-proxy.js'
import { memoryTokenStorage, openTab, type Side } from '../lib/clients.js'
import { CookieJar } from '../lib/jar.js'
import { withChildren } from '../lib/processes.js'
import { check, type BenchMode, type FigureResult, type Row } from '../lib/report.js'
import { startServer } from '../lib/servers.js'
import { fmt, ratios, summarize } from '../lib/stats.js'

const DELAY_MS = 25
const FIGURE = '1. Round trips to ready (25 ms each way)'

interface Sample {
  ms: number
  flights: number
}

async function timeToReady(side: Side, proxy: TcpProxy, jar: CookieJar, tokens: ReturnType<typeof memoryTokenStorage>): Promise<Sample> {
  proxy.resetFlights()
  const started = performance.now()
  const tab = openTab(side, proxy.url, { jar, tokens })
  try {
    await tab.nextSettle(10_000)
    const sample = { ms: performance.now() - started, flights: proxy.flights() }
    if (tab.settled !== 'ready') throw new Error(`${side} tab settled ${tab.settled}`)
    return sample
  } finally {
    tab.close()
    // Let the proxy's delayed close finish before the next connect is counted.
    await new Promise((resolve) => setTimeout(resolve, 3 * DELAY_MS))
  }
}

export async function roundTrips(mode: BenchMode): Promise<FigureResult> {
  const reps = mode.full ? 20 : Math.max(3, mode.reps)
  return withChildren(async (own) => {
    const plain = await startServer({ side: 'plain', store: 'memory', port: 0 })
    own(plain.child)
    const ss = await startServer({ side: 'ss', store: 'memory', port: 0 })
    own(ss.child)
    const ssNoSave = await startServer({ side: 'ss', store: 'memory', port: 0, saveUninitialized: false })
    own(ssNoSave.child)
    const proxies: TcpProxy[] = []
    try {
      const plainProxy = await startTcpProxy(plain.port, { delayMs: DELAY_MS })
      proxies.push(plainProxy)
      const ssProxy = await startTcpProxy(ss.port, { delayMs: DELAY_MS })
      proxies.push(ssProxy)
      const noSaveProxy = await startTcpProxy(ssNoSave.port, { delayMs: DELAY_MS })
      proxies.push(noSaveProxy)

      const s = { plainFirst: [] as Sample[], plainAgain: [] as Sample[], ssFirst: [] as Sample[], ssAgain: [] as Sample[], ssNoSaveFirst: [] as Sample[] }
      // One warm-up of each, not counted (first connections pay for JIT and lazy module loads).
      await timeToReady('plain', plainProxy, new CookieJar(), memoryTokenStorage())
      await timeToReady('ss', ssProxy, new CookieJar(), memoryTokenStorage())
      for (let i = 0; i < reps; i++) {
        const plainJar = new CookieJar()
        s.plainFirst.push(await timeToReady('plain', plainProxy, plainJar, memoryTokenStorage()))
        s.plainAgain.push(await timeToReady('plain', plainProxy, plainJar, memoryTokenStorage()))
        const jar = new CookieJar()
        const tokens = memoryTokenStorage()
        s.ssFirst.push(await timeToReady('ss', ssProxy, jar, tokens))
        s.ssAgain.push(await timeToReady('ss', ssProxy, jar, tokens))
        s.ssNoSaveFirst.push(await timeToReady('ss', noSaveProxy, new CookieJar(), memoryTokenStorage()))
      }
      const ms = (xs: Sample[]) => xs.map((x) => x.ms)
      const flights = (xs: Sample[]) => summarize(xs.map((x) => x.flights))
      const row = (name: string, a: Sample[], b: Sample[], target?: string): Row => {
        const ratio = ratios(ms(a), ms(b))
        return {
          figure: FIGURE,
          name,
          ss: `${fmt(summarize(ms(a)), 1, 'ms')}, ${fmt(flights(a))} RT`,
          plain: `${fmt(summarize(ms(b)), 1, 'ms')}, ${fmt(flights(b))} RT`,
          ratio,
          ...(target ? { target, pass: check(ratio, target) } : {}),
        }
      }
      return {
        rows: [
          row('first connect (no cookie, no token)', s.ssFirst, s.plainFirst, '<= 1.05'),
          row('reconnect (cookie + token / cookie)', s.ssAgain, s.plainAgain, '<= 1.05'),
          row('first connect, saveUninitialized: false', s.ssNoSaveFirst, s.plainFirst, '<= 1.05'),
        ],
        notes: [
          `Round trips: TCP proxy (e2e/helpers/tcp-proxy.ts) adding ${DELAY_MS} ms each way; RT = client→server flights counted by the proxy. ${reps} interleaved repetitions after one warm-up; ratio = pairwise medians.`,
          'Both sides: WebSocket transport, a per-browser cookie jar (bench/lib/jar.ts). SDK: createSessionSocket → ready; plain: io() → connect. "reconnect" opens a new tab of the same browser (cookie; the SDK also has its token).',
          'The proxy sets TCP_NODELAY on both legs, as ws and Chromium do: with Nagle on, the SDK\'s second frame (ss:registered right behind the CONNECT reply) waited for the client\'s delayed ACK, +40 ms that a real path does not add.',
          'saveUninitialized: false: the SDK sets its provisional cookie on the handshake response itself (the WebSocket 101 here), so a first visit needs no POST /restore; the plain recipe then has no cookie at all.',
        ],
        raw: s,
      }
    } finally {
      await Promise.all(proxies.map((p) => p.close()))
    }
  })
}
