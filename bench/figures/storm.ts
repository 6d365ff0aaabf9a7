/**
 * Figure 2: reconnect storm. N registered tabs in two load processes; the server process is
 * SIGKILLed and started again on the same port; time until every tab is ready again, against
 * the same storm with plain Socket.IO (socket.io-client's own reconnection).
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { BackoffMode, Side } from '../lib/clients.js'
import { withChildren, type Child } from '../lib/processes.js'
import { check, type BenchMode, type FigureResult, type Row } from '../lib/report.js'
import { prepareServer, startLoad, startServer, type RunningServer } from '../lib/servers.js'
import { fmt, quantile, ratios, summarize } from '../lib/stats.js'
import { startStoreBackend, storeKinds, STORE_DESCRIPTIONS, type StoreBackend } from '../lib/stores.js'
import type { ServerConfig, StoreKind } from '../server.js'

const FIGURE = '2. Reconnect storm'
type Restart = 'cold' | 'warm'

export interface StormSample {
  /** SIGKILL → every tab ready again (ms). */
  allMs: number
  /** Server listening again → every tab ready (ms). */
  fromUpMs: number
  /** SIGKILL → server listening again (ms). */
  restartMs: number
  p50Ms: number
  p99Ms: number
  /** Connections the kernel dropped because the accept queue was full (system-wide counter). */
  listenOverflows: number
  /** Server CPU (user + system, ms) from listening until every tab was ready. */
  cpuMs: number
  /** Server CPU including process start-up and module loading. */
  cpuTotalMs: number
  ready: number
  ended: number
  missing: number
  maxAttempts: number
}

/** One side's setup: its server (replaced at every kill) and its load processes. */
class Setup {
  server!: RunningServer
  loads: Child[] = []
  constructor(
    readonly side: Side,
    readonly config: ServerConfig,
    readonly backoff: BackoffMode,
    readonly own: (child: Child) => Child,
    readonly cpuProfDir: string | undefined,
  ) {}

  async start(): Promise<void> {
    this.server = await startServer(this.config, this.#serverOptions())
    this.own(this.server.child)
    this.config.port = this.server.port
    for (let i = 0; i < 2; i++) this.loads.push(this.own(await startLoad(`load(${this.side},${this.config.store},${i})`)))
  }

  #serverOptions() {
    return this.cpuProfDir ? { cpuProfDir: this.cpuProfDir } : {}
  }

  async open(count: number, batch: number): Promise<number> {
    const per = Math.ceil(count / this.loads.length)
    const answers = await Promise.all(
      this.loads.map((load) => load.request<{ failed: number; ms: number }>({ cmd: 'open', side: this.side, url: this.server.url, count: per, batch, backoff: this.backoff, timeoutMs: 180_000 }, 200_000)),
    )
    const failed = answers.reduce((sum, a) => sum + a.failed, 0)
    if (failed > 0) throw new Error(`${this.side}/${this.config.store}: ${failed} tabs did not get ready while opening`)
    return Math.max(...answers.map((a) => a.ms))
  }

  async reopen(count: number, batch: number): Promise<void> {
    await Promise.all(this.loads.map((load) => load.request({ cmd: 'close' })))
    await this.open(count, batch)
  }

  /**
   * cold: the new server process is spawned after the kill (restart = process start + module
   * loading + store opening). warm: it is spawned and set up before, and listens right after
   * the kill, so the figure is the reconnects alone.
   */
  async storm(timeoutMs: number, restart: Restart): Promise<StormSample> {
    const standby = restart === 'warm' ? await prepareServer(this.config, this.#serverOptions()) : undefined
    if (standby) this.own(standby.child)
    await Promise.all(this.loads.map((load) => load.request({ cmd: 'arm' })))
    const overflowsBefore = listenOverflows()
    const killedAt = Date.now()
    await this.server.child.kill()
    if (standby) {
      this.server = await standby.listen()
    } else {
      this.server = await startServer(this.config, this.#serverOptions())
      this.own(this.server.child)
    }
    const waits = await Promise.all(
      this.loads.map((load) => load.request<{ at: number[]; ready: number; ended: number; none: number; maxAttempts: number }>({ cmd: 'wait', timeoutMs }, timeoutMs + 30_000)),
    )
    const overflows = listenOverflows() - overflowsBefore
    const cpu = await this.server.child.request<{ cpu: { user: number; system: number } }>({ cmd: 'cpu' })
    const at = waits.flatMap((w) => w.at).filter((t) => t > 0).sort((a, b) => a - b)
    const last = at[at.length - 1] ?? NaN
    const total = (c: { user: number; system: number }) => (c.user + c.system) / 1000
    return {
      allMs: last - killedAt,
      fromUpMs: last - this.server.listeningAt,
      restartMs: this.server.listeningAt - killedAt,
      p50Ms: quantile(at, 0.5) - killedAt,
      p99Ms: quantile(at, 0.99) - killedAt,
      cpuMs: total(cpu.cpu) - total(this.server.cpuAtListening),
      cpuTotalMs: total(cpu.cpu),
      listenOverflows: overflows,
      ready: waits.reduce((s, w) => s + w.ready, 0),
      ended: waits.reduce((s, w) => s + w.ended, 0),
      missing: waits.reduce((s, w) => s + w.none, 0),
      maxAttempts: Math.max(...waits.map((w) => w.maxAttempts)),
    }
  }
}

/**
 * TcpExtListenOverflows from /proc/net/netstat: connections completed by the kernel but dropped
 * because the server's accept queue (listen backlog) was full; the client's SYN is then
 * retransmitted after 1 s, 3 s, 7 s… System-wide: other processes' overflows count too.
 */
function listenOverflows(): number {
  try {
    const lines = fs.readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'))
    const names = lines[0]!.split(/\s+/)
    const values = lines[1]!.split(/\s+/)
    return Number(values[names.indexOf('ListenOverflows')] ?? NaN)
  } catch {
    return NaN
  }
}

function describe(samples: StormSample[]): string {
  const s = (pick: (x: StormSample) => number, digits = 0) => fmt(summarize(samples.map(pick)), digits)
  const counts = samples.map((x) => `${x.ready} ready${x.ended ? `/${x.ended} ended` : ''}${x.missing ? `/${x.missing} MISSING` : ''}`).join(', ')
  return `restart ${s((x) => x.restartMs)} ms, p50 ${s((x) => x.p50Ms)} ms, p99 ${s((x) => x.p99Ms)} ms, slowest tab ${s((x) => x.allMs)} ms after the kill (max attempts ${s((x) => x.maxAttempts)}), server CPU ${s((x) => x.cpuMs)} ms after listening (${s((x) => x.cpuTotalMs)} ms with start-up), accept-queue overflows ${s((x) => x.listenOverflows)}; ${counts}`
}

export async function storm(mode: BenchMode): Promise<FigureResult> {
  const count = mode.tabs ?? (mode.full ? 5000 : 200)
  const batch = mode.full ? 100 : 50
  const reps = mode.reps
  const timeoutMs = mode.full ? 120_000 : 60_000
  const stores: StoreKind[] = storeKinds(mode.stores ?? ['memory', 'sqlite', 'redis'])
  // Quick mode: warm restarts only (the less noisy of the two, and no process start to wait for).
  const restarts: Restart[] = mode.full ? ['cold', 'warm'] : ['warm']
  const rows: Row[] = []
  const notes: string[] = []
  const raw: Record<string, Record<string, StormSample[]>> = {}
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-bench-storm-'))
  let backend: StoreBackend | undefined
  try {
    for (const store of stores) {
      backend = await startStoreBackend(store)
      const reach = backend.config
      await withChildren(async (own) => {
        const config = (side: Side, name: string): ServerConfig => {
          const dataDir = path.join(tmp, `${store}-${name}`)
          fs.mkdirSync(dataDir, { recursive: true })
          return { side, store, port: 0, dataDir, ...reach, ...(mode.backlog ? { backlog: mode.backlog } : {}) }
        }
        const setups: Record<string, Setup> = {
          ss: new Setup('ss', config('ss', 'ss'), 'sio', own, mode.cpuProfDir),
          plain: new Setup('plain', config('plain', 'plain'), 'sio', own, mode.cpuProfDir),
        }
        // The SDK with its own default backoff, beside socket.io-client's defaults (SQLite only).
        if (store === 'sqlite' && restarts.includes('cold')) setups.native = new Setup('ss', config('ss', 'native'), 'native', own, mode.cpuProfDir)
        const samples: Record<string, StormSample[]> = {}
        const openMs: Record<string, number> = {}
        for (const [name, setup] of Object.entries(setups)) {
          await setup.start()
          openMs[name] = await setup.open(count, batch)
        }
        for (let rep = 0; rep < reps; rep++) {
          for (const restart of restarts) {
            for (const [name, setup] of Object.entries(setups)) {
              // The SDK's own backoff is compared on cold restarts only.
              if (name === 'native' && restart === 'warm') continue
              // A memory-store server forgets every session and token when it dies: the SDK's
              // tabs end (their session is gone), so each storm starts from fresh tabs.
              if (store === 'memory' && setup.side === 'ss' && (rep > 0 || restart === 'warm')) await setup.reopen(count, batch)
              ;(samples[`${name}/${restart}`] ??= []).push(await setup.storm(timeoutMs, restart))
            }
          }
        }
        raw[store] = samples
        const all = (x: StormSample) => (x.missing > 0 ? NaN : x.allMs)
        const target = '<= 1.25'
        const settle = store === 'memory' ? 'all settled (SDK: ended)' : 'all ready'
        for (const restart of restarts) {
          const ss = samples[`ss/${restart}`]!
          const plain = samples[`plain/${restart}`]!
          const ratio = ratios(ss.map(all), plain.map(all))
          rows.push({
            figure: FIGURE,
            name: `${count} tabs, ${store} store, ${restart} restart: kill → ${settle}`,
            ss: `${fmt(summarize(ss.map(all)))} ms`,
            plain: `${fmt(summarize(plain.map(all)))} ms`,
            ratio,
            target,
            pass: check(ratio, target),
          })
          rows.push({
            figure: FIGURE,
            name: `${count} tabs, ${store} store, ${restart} restart: server CPU, up → ${settle}`,
            ss: `${fmt(summarize(ss.map((x) => x.cpuMs)))} ms`,
            plain: `${fmt(summarize(plain.map((x) => x.cpuMs)))} ms`,
            ratio: ratios(ss.map((x) => x.cpuMs), plain.map((x) => x.cpuMs)),
          })
          notes.push(`storm ${store}, ${restart} restart: SDK ${describe(ss)}.`)
          notes.push(`storm ${store}, ${restart} restart: plain ${describe(plain)}.`)
        }
        const native = samples['native/cold']
        if (native) {
          const plain = samples['plain/cold']!
          rows.push({
            figure: FIGURE,
            name: `${count} tabs, ${store} store, cold restart: kill → all ready, SDK default backoff`,
            ss: `${fmt(summarize(native.map(all)))} ms`,
            plain: `${fmt(summarize(plain.map(all)))} ms`,
            ratio: ratios(native.map(all), plain.map(all)),
          })
          notes.push(`storm ${store}, cold restart: SDK with its default backoff ${describe(native)}.`)
        }
        notes.push(`storm ${store}: opening ${count} tabs took ${Object.entries(openMs).map(([k, v]) => `${k} ${v} ms`).join(', ')} (batches of ${batch}).`)
      })
      await backend.stop()
      backend = undefined
    }
  } finally {
    await backend?.stop()
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  notes.unshift(
    `Storm: ${count} tabs in 2 load processes (child_process.fork), each tab its own cookie jar (and token storage); server SIGKILLed and restarted on the same port, ${reps} repetitions per side, interleaved. Cold restart: the new server process is spawned after the kill (process start, module loading, stores opened: "restart" below). Warm restart: it was spawned and set up before the kill and listens right after it, which leaves the reconnects alone. Both sides retry on socket.io-client's default schedule: 1000 ms ×2 per attempt, ±50 % (randomizationFactor 0.5), max 5000 ms — plain through reconnectionDelay/randomizationFactor, the SDK through its backoff option (same function). The "SDK default backoff" row uses the SDK's own default (500 ms ×2, equal jitter, max 30 s).`,
    `Stores: ${stores.map((store) => `${store} = ${STORE_DESCRIPTIONS[store]}`).join('; ')} (memory: everything is lost with the process: the plain tabs reconnect into fresh sessions, the SDK tabs learn their session is gone and end — the row times that). The baseline uses the same session store. Rate limits off; file-descriptor limit 20000 (ulimit -n here), enough for 10,000 sockets per process. Listen backlog ${mode.backlog ?? "Node's default 511"} (net.core.somaxconn is 4096 here); "accept-queue overflows" counts connections the kernel dropped because the queue was full (the client's SYN then comes back after 1 s, 3 s, 7 s…).`,
  )
  return { rows, notes, raw }
}
