/**
 * Figure 8: soak. One session-socket server on the SQLite stores with N registered tabs (two
 * load processes) for M minutes, under steady churn: calls at a fixed rate (half of them using
 * the session), 1 % of the tabs dropping their connection every 10 s and coming back with their
 * token, and one session expiring in the store every second (its tab ends when the SDK finds
 * out; a new tab takes its place). Once a minute the server is sampled after forced GC. Passes
 * when heap and RSS grow < 5 % from minute 2 to the end, open fds stay flat, and every call is
 * answered exactly once. Not in the default set: `npm run bench -- --only=soak`.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Child, withChildren } from '../lib/processes.js'
import type { BenchMode, FigureResult, Row } from '../lib/report.js'
import { startServer } from '../lib/servers.js'
import type { SoakSample } from '../lib/soak-server.js'
import { STORE_DESCRIPTIONS } from '../lib/stores.js'

const FIGURE = '8. Soak'
/** Calls per second over all tabs. */
const CALL_RATE = 200
/** Share of the tabs dropped every 10 s. */
const RECONNECT_SHARE = 0.01
/** Most a growth from the base minute to the last may be. */
const GROWTH_LIMIT = 0.05
/** "Flat" open fds: every sample within this share (or FD_SLACK fds, whichever is more) of the base minute's. */
const FD_SHARE = 0.02
const FD_SLACK = 20
/** A tab whose session expired must have ended within this (the SDK's session check runs every 60 s). */
const EXPIRY_END_LIMIT_MS = 120_000
/** Tabs per load process: the client side must not be what makes calls slow or time out. */
const TABS_PER_LOAD = 2_500

interface LoadStats {
  sent: number
  ok: number
  wrongAnswer: number
  endedExpected: number
  errors: Record<string, number>
  reconnectsAsked: number
  reconnected: number
  reconnectMaxMs: number
  expiredAsked: number
  expiredEnded: number
  expiredEndMaxMs: number
  unexpectedEnds: Record<string, number>
  replaced: number
  inFlight: number
  tabs: number
  ready: number
  expiring: number
  expiringOldestMs: number
  /** Longest event-loop delay of a load process (p99 over the run, ms). */
  loopLagP99MaxMs: number
}

interface FinishStats extends LoadStats {
  missing: number
  settledTwice: number
  wireDuplicates: number
  okWithoutWire: number
}

export interface SoakMinute {
  minute: number
  server: SoakSample
  /** Server CPU over the minute before (% of one core). */
  cpuPct: number
  /** The load processes' counters, summed. */
  load: LoadStats
  /** One load-average sample (1 min) of the machine. */
  load1: number
}

function sum<T extends LoadStats>(all: T[]): T {
  const out = { ...all[0]! } as Record<string, unknown>
  for (const other of all.slice(1)) {
    for (const [k, v] of Object.entries(other)) {
      const mine = out[k]
      if (typeof v === 'number' && typeof mine === 'number') out[k] = k.endsWith('MaxMs') || k.endsWith('OldestMs') ? Math.max(mine, v) : mine + v
      else if (typeof v === 'object' && v) {
        const merged = { ...(mine as Record<string, number>) }
        for (const [code, n] of Object.entries(v as Record<string, number>)) merged[code] = (merged[code] ?? 0) + n
        out[k] = merged
      }
    }
  }
  return out as T
}

const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1)
const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)} %`
const answered = (s: LoadStats) => s.ok + s.endedExpected + Object.values(s.errors).reduce((a, b) => a + b, 0)
const codes = (r: Record<string, number>) => Object.entries(r).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'

function curve(minutes: SoakMinute[]): string {
  const lines = [
    '| minute | heap used after GC (MB) | heap total (MB) | RSS (MB) | RSS anon / file (MB) | external + arrayBuffers (MB) | open fds | sockets | tabs registered | server CPU (% of a core) | calls sent | calls answered | in flight | reconnects back | sessions expired → tabs ended | load avg (1 min) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ]
  for (const m of minutes) {
    const mem = m.server.memory
    lines.push(
      `| ${m.minute} | ${mb(mem.heapUsed)} | ${mb(mem.heapTotal)} | ${mb(mem.rss)} | ${mb(m.server.rssKinds.anon)} / ${mb(m.server.rssKinds.file)} | ${mb(mem.external + mem.arrayBuffers)} | ${m.server.fds} | ${m.server.sockets} | ${m.server.registered} | ${m.minute === 0 ? '' : m.cpuPct.toFixed(0)} | ${m.load.sent} | ${answered(m.load)} | ${m.load.inFlight} | ${m.load.reconnected}/${m.load.reconnectsAsked} | ${m.load.expiredEnded}/${m.load.expiredAsked} | ${m.load1.toFixed(2)} |`,
    )
  }
  return lines.join('\n')
}

export async function soak(mode: BenchMode): Promise<FigureResult> {
  const tabs = mode.tabs ?? 10_000
  const minutes = mode.soakMinutes ?? 10
  if (!Number.isInteger(minutes) || minutes < 2) throw new Error('--soak-minutes must be an integer >= 2 (growth is measured from minute 2, or 1 in a 2-minute run)')
  const base = Math.min(2, minutes - 1)
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-bench-soak-'))
  try {
    return await withChildren(async (own) => {
      const server = await startServer({ side: 'ss', store: 'sqlite', port: 0, dataDir: tmp }, { gc: true, name: 'server(soak)' })
      own(server.child)
      const loads: Child[] = []
      const loadCount = Math.max(2, Math.ceil(tabs / TABS_PER_LOAD))
      for (let i = 0; i < loadCount; i++) {
        const load = own(new Child('soak-load.ts', { name: `soak-load(${i})` }))
        await load.next('up', 30_000)
        loads.push(load)
      }
      const per = Math.ceil(tabs / loads.length)
      const opened = await Promise.all(
        loads.map((load, i) => load.request<{ opened: number; failed: number; ms: number }>({ cmd: 'open', url: server.url, prefix: `L${i}-`, count: per, batch: 100, timeoutMs: 900_000 }, 960_000)),
      )
      const failed = opened.reduce((n, o) => n + o.failed, 0)
      if (failed > 0) throw new Error(`${failed} of ${per * loads.length} tabs did not get ready while opening`)
      const openMs = Math.max(...opened.map((o) => o.ms))

      const samples: SoakMinute[] = []
      let lastCpu: { at: number; us: number } | undefined
      const sample = async (minute: number) => {
        const [s, ...stats] = await Promise.all([server.child.request<SoakSample>({ cmd: 'sample' }, 60_000), ...loads.map((load) => load.request<LoadStats>({ cmd: 'stats' }))])
        const us = s.cpu.user + s.cpu.system
        const cpuPct = lastCpu ? ((us - lastCpu.us) / 1000 / (s.at - lastCpu.at)) * 100 : NaN
        lastCpu = { at: s.at, us }
        const m: SoakMinute = { minute, server: s, cpuPct, load: sum(stats as LoadStats[]), load1: os.loadavg()[0]! }
        samples.push(m)
        const mem = s.memory
        console.log(
          `  soak minute ${minute}: heap ${mb(mem.heapUsed)} MB (total ${mb(mem.heapTotal)}), rss ${mb(mem.rss)} MB (anon ${mb(s.rssKinds.anon)}, file ${mb(s.rssKinds.file)}), fds ${s.fds}, registered ${s.registered}, calls ${m.load.sent} sent / ${answered(m.load)} answered, reconnects ${m.load.reconnected}/${m.load.reconnectsAsked}, load-process lag p99 ${m.load.loopLagP99MaxMs.toFixed(0)} ms, expired ${m.load.expiredEnded}/${m.load.expiredAsked}, cpu ${Number.isFinite(cpuPct) ? cpuPct.toFixed(0) : '–'} %, load ${m.load1.toFixed(2)}`,
        )
      }

      await Promise.all(loads.map((load) => load.request({ cmd: 'calls', rate: CALL_RATE / loads.length })))
      const started = Date.now()
      await sample(0)
      const background = new Set<Promise<unknown>>()
      const errors: string[] = []
      const track = (p: Promise<unknown>) => {
        const tracked = p.catch((err: unknown) => void errors.push((err as Error).message)).finally(() => background.delete(tracked))
        background.add(tracked)
      }
      const expireOne = async (load: Child) => {
        const { tabId } = await load.request<{ tabId: string | null }>({ cmd: 'pick-expire' })
        if (tabId === null) return
        const { expired } = await server.child.request<{ expired: boolean }>({ cmd: 'expire', tabId })
        if (!expired) await load.request({ cmd: 'not-expired', tabId })
      }
      const reconnectCount = Math.max(1, Math.round((tabs * RECONNECT_SHARE) / loads.length))
      for (let sec = 1; sec <= minutes * 60; sec++) {
        const wait = started + sec * 1000 - Date.now()
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
        track(expireOne(loads[sec % loads.length]!))
        // Halfway between two samples' seconds, so every dropped tab is back when one is taken.
        if (sec % 10 === 5) for (const load of loads) track(load.request({ cmd: 'reconnect', count: reconnectCount }))
        if (sec % 60 === 0) await sample(sec / 60)
      }
      await Promise.all(background)
      const finished = sum(await Promise.all(loads.map((load) => load.request<FinishStats>({ cmd: 'finish', timeoutMs: 60_000 }, 90_000))))
      const result = report({ tabs, minutes, base, openMs, loadCount, samples, finished, errors })
      for (const row of result.rows) if (row.pass !== undefined) console.log(`  soak ${row.pass ? 'PASS' : 'MISSED'}: ${row.name}: ${row.ss} (target ${row.target})`)
      return result
    })
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

function report(r: { tabs: number; minutes: number; base: number; openMs: number; loadCount: number; samples: SoakMinute[]; finished: FinishStats; errors: string[] }): FigureResult {
  const { tabs, minutes, base, samples, finished } = r
  const first = samples.find((m) => m.minute === base)!
  const last = samples[samples.length - 1]!
  const growth = (pick: (m: SoakMinute) => number) => pick(last) / pick(first) - 1
  const heapGrowth = growth((m) => m.server.memory.heapUsed)
  const rssGrowth = growth((m) => m.server.memory.rss)
  const fdLimit = Math.max(FD_SLACK, Math.round(first.server.fds * FD_SHARE))
  const tail = samples.filter((m) => m.minute >= base)
  const fdSpread = Math.max(...tail.map((m) => Math.abs(m.server.fds - first.server.fds)))
  const otherErrors = Object.values(finished.errors).reduce((a, b) => a + b, 0)
  const callsOnce = finished.missing === 0 && finished.settledTwice === 0 && finished.wireDuplicates === 0 && finished.wrongAnswer === 0 && finished.okWithoutWire === 0 && otherErrors === 0
  // Tabs whose session expired in the last EXPIRY_END_LIMIT_MS may still be waiting for the SDK's check.
  const expiryOk = finished.expiringOldestMs <= EXPIRY_END_LIMIT_MS && finished.expiredEndMaxMs <= EXPIRY_END_LIMIT_MS
  const span = `minute ${base} → ${last.minute}`
  const rows: Row[] = [
    { figure: FIGURE, name: `heap used after GC, ${span}`, ss: `${mb(first.server.memory.heapUsed)} → ${mb(last.server.memory.heapUsed)} MB (${pct(heapGrowth)})`, plain: '', target: '< +5 %', pass: heapGrowth < GROWTH_LIMIT },
    { figure: FIGURE, name: `RSS, ${span}`, ss: `${mb(first.server.memory.rss)} → ${mb(last.server.memory.rss)} MB (${pct(rssGrowth)})`, plain: '', target: '< +5 %', pass: rssGrowth < GROWTH_LIMIT },
    { figure: FIGURE, name: `open fds, ${span}`, ss: `${first.server.fds} → ${last.server.fds} (farthest ${fdSpread} from minute ${base})`, plain: '', target: `flat: ±${fdLimit}`, pass: fdSpread <= fdLimit },
    {
      figure: FIGURE,
      name: 'calls answered exactly once',
      ss: `${finished.sent} sent: ${finished.ok} ok, ${finished.endedExpected} SESSION_ENDED (their session expired), other errors ${codes(finished.errors)}; missing ${finished.missing}, twice ${finished.settledTwice}, twice on the wire ${finished.wireDuplicates}, wrong answer ${finished.wrongAnswer}`,
      plain: '',
      target: 'all once',
      pass: callsOnce,
    },
    {
      figure: FIGURE,
      name: 'expired sessions: tabs ended (reason expired)',
      ss: `${finished.expiredEnded} of ${finished.expiredAsked} (slowest ${(finished.expiredEndMaxMs / 1000).toFixed(1)} s; ${finished.expiring} still waiting, oldest ${(finished.expiringOldestMs / 1000).toFixed(1)} s); other ends ${codes(finished.unexpectedEnds)}`,
      plain: '',
      target: `within ${EXPIRY_END_LIMIT_MS / 1000} s`,
      pass: expiryOk,
    },
    {
      figure: FIGURE,
      name: 'dropped tabs back to ready with their token',
      ss: `${finished.reconnected} of ${finished.reconnectsAsked} (slowest ${(finished.reconnectMaxMs / 1000).toFixed(1)} s)`,
      plain: '',
    },
  ]
  const notes = [
    `Soak: one session-socket server (${STORE_DESCRIPTIONS.sqlite}; --expose-gc), ${tabs} registered tabs from ${r.loadCount} load processes (each's event-loop delay p99 at most ${r.finished.loopLagP99MaxMs.toFixed(0)} ms) (opened in ${(r.openMs / 1000).toFixed(0)} s, batches of 100), ${minutes} minutes. Churn: ${CALL_RATE} calls/s over random tabs (half echo.session, which reloads the session, half echo with { session: false }); every 10 s ${RECONNECT_SHARE * 100} % of the tabs drop their WebSocket (terminated as a network loss would) and register again with their token; every second one session expires in the store (connect-sqlite3's expired column set in the past) and the SDK finds out by itself (its session check every 60 s, or the tab's next session call), ends the tab with reason expired, and a new tab (a new browser) takes its place. Default server options (sessionCheckInterval 60 s).`,
    `Sampled once a minute in the server process after 3 forced gc(): heapUsed, RSS, open fds (/proc/self/fd), Engine.IO sockets, sockets registered; the sample pauses the server for the collections. Growth is from minute ${base} (warmed up) to minute ${last.minute}; fds are flat when every sample from minute ${base} on is within ±max(${FD_SLACK}, ${FD_SHARE * 100} %) of minute ${base}'s. Every call is counted per call id as the SDK settles it and as its answer arrives on the wire (ack packets of the tab's Manager): each must settle once, with its own id, and no answer may come twice.`,
    ...(r.errors.length ? [`harness errors: ${r.errors.slice(0, 5).join('; ')}${r.errors.length > 5 ? ` (+${r.errors.length - 5})` : ''}`] : []),
  ]
  return { rows, notes, tables: [curve(samples)], raw: { samples, finished } }
}
