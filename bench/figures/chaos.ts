/**
 * Figure 6: chaos. Three tabs (three browsers) make calls while the network between them and
 * the server is cut and the server is SIGKILLed. Every execution of the method commits one
 * SQLite transaction (bench/server.ts benchLog): a row in an execution log, and the method's
 * effect, a ledger row, made idempotent with ctx.callKey on the SDK side (plain Socket.IO has no
 * key). Both tables are read from outside the server after the run: an id logged twice means
 * the handler ran twice; an id with two ledger rows means the effect was applied twice; a call
 * never answered is lost. SqliteLinkStore and connect-sqlite3 keep links, call results and
 * sessions across the kills.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import Database from 'better-sqlite3'
import { startTcpProxy, type TcpProxy } from '../../e2e/helpers/tcp-proxy.js'
import { openTab, type Side, type Tab } from '../lib/clients.js'
import { withChildren, type Child } from '../lib/processes.js'
import type { BenchMode, FigureResult, Row } from '../lib/report.js'
import { startServer, type RunningServer } from '../lib/servers.js'
import { fmt, summarize } from '../lib/stats.js'
import type { ServerConfig } from '../server.js'

const FIGURE = '6. Chaos'
const TABS = 3
/** Calls each tab keeps in flight. */
const WINDOW = 5
const CALL_LEASE = 3000

interface Window {
  openMs: number
  callMs: number
  effects: number
  /** ms since the server listened. */
  life: number
}

export interface ChaosSample {
  calls: number
  answered: number
  /** Calls whose promise rejected or never settled. */
  lost: number
  errors: Record<string, number>
  /** Ids whose handler ran (its transaction committed) more than once. */
  executedTwice: number
  /** Ids whose effect was applied more than once (ledger rows). */
  effectTwice: number
  /** Answered ok but absent from the log (must be 0). */
  answeredNotLogged: number
  /** Answered ok but their effect never applied (must be 0). */
  answeredNoEffect: number
  executions: number
  /** Ledger rows: effects applied. */
  effects: number
  cuts: number
  kills: number
  seconds: number
  /** Share of server time during which a SIGKILL would have made a call run twice. */
  vulnerableShare?: number
  /** Expected duplicates per SIGKILL at a random instant (sum over calls of time in the window / time). */
  expectedPerKill?: number
  /** For each id run twice: ms from its first run (in the server that was killed) to that SIGKILL. */
  duplicateToKillMs: number[]
}

function plan(cuts: number, kills: number): Array<'cut' | 'kill'> {
  const events: Array<'cut' | 'kill'> = Array.from({ length: cuts + kills }, () => 'cut')
  // Kills spread evenly among the cuts, none first.
  for (let k = 0; k < kills; k++) events[Math.floor(((k + 1) * (cuts + kills)) / (kills + 1))] = 'kill'
  return events
}

async function run(side: Side, mode: BenchMode, total: number, cuts: number, kills: number, deadlineMs: number): Promise<ChaosSample> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `ss-bench-chaos-${side}-`))
  const windows = new Map<number, Window>()
  const killedAt = new Map<number, number>()
  try {
    return await withChildren(async (own) => {
      const config: ServerConfig = { side, store: 'sqlite', port: 0, dataDir, log: true, ss: { callLease: CALL_LEASE } }
      const watch = (server: RunningServer) => {
        const pid = server.child.proc.pid!
        server.child.on((msg) => {
          if (msg.type === 'window') windows.set(pid, msg as unknown as Window)
        })
        return server
      }
      let server = watch(await startServer(config))
      own(server.child)
      config.port = server.port
      let proxy: TcpProxy | undefined
      const tabs: Tab[] = []
      try {
        proxy = await startTcpProxy(server.port, { delayMs: 0 })
        for (let i = 0; i < TABS; i++) {
          const tab = openTab(side, proxy.url, {
            backoff: 'native',
            // Calls outlive outages: a lost call is one the SDK gave up on, not a short timeout.
            sdk: { callTimeout: deadlineMs, maxQueue: 1000 },
            // socket.io-client's own at-least-once: ack timeout and retries of the same packet.
            plain: { ackTimeout: 5000, retries: 20 },
          })
          tabs.push(tab)
          await tab.nextSettle(10_000)
        }

        const started = performance.now()
        let issued = 0
        let answered = 0
        const answeredIds = new Set<string>()
        const errors: Record<string, number> = {}
        const worker = async (tab: Tab, t: number) => {
          while (issued < total && performance.now() - started < deadlineMs) {
            const id = `c${issued++}`
            try {
              const result = (await tab.call('log.append', { id })) as { id?: string }
              if (result?.id !== id) throw new Error(`wrong answer ${JSON.stringify(result)}`)
              answered++
              answeredIds.add(id)
            } catch (err) {
              const code = (err as { code?: string }).code ?? (err as Error).message.slice(0, 40)
              errors[code] = (errors[code] ?? 0) + 1
            }
            void t
          }
        }
        const workers = Promise.all(tabs.flatMap((tab, t) => Array.from({ length: WINDOW }, () => worker(tab, t))))

        // Events fire as calls complete, evenly over the run; one at a time.
        const events = plan(cuts, kills)
        let done = 0
        const chaos = (async () => {
          for (let e = 0; e < events.length; e++) {
            const at = ((e + 1) * total) / (events.length + 1)
            while (answered + Object.values(errors).reduce((a, b) => a + b, 0) < at && performance.now() - started < deadlineMs) {
              await new Promise((resolve) => setTimeout(resolve, 5))
            }
            if (events[e] === 'cut') {
              proxy!.cut()
              await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 900))
              proxy!.restore()
            } else {
              killedAt.set(server.child.proc.pid!, Date.now())
              await server.child.kill()
              server = watch(await startServer(config))
              own(server.child)
            }
            done++
          }
        })()
        await Promise.all([workers, chaos])
        const seconds = (performance.now() - started) / 1000
        const calls = issued
        // Settle the books outside the server: stop it, then read the log file.
        for (const tab of tabs) tab.close()
        await server.child.stop()
        const db = new Database(path.join(dataDir, 'links.db'), { readonly: true })
        let executedTwice = 0
        let executions = 0
        let effectTwice = 0
        let effects = 0
        const logged = new Set<string>()
        const applied = new Set<string>()
        const duplicateToKillMs: number[] = []
        try {
          for (const row of db.prepare('SELECT call_id, COUNT(*) AS n FROM bench_log GROUP BY call_id').all() as Array<{ call_id: string; n: number }>) {
            executions += row.n
            logged.add(row.call_id)
            if (row.n > 1) executedTwice++
          }
          for (const row of db.prepare('SELECT call_id, COUNT(*) AS n FROM bench_ledger GROUP BY call_id').all() as Array<{ call_id: string; n: number }>) {
            effects += row.n
            applied.add(row.call_id)
            if (row.n > 1) effectTwice++
          }
          // Forensics: was each second run preceded by a SIGKILL of the server that ran it first?
          const runs = db.prepare('SELECT call_id, pid, at FROM bench_log WHERE call_id IN (SELECT call_id FROM bench_log GROUP BY call_id HAVING COUNT(*) > 1) ORDER BY call_id, at').all() as Array<{ call_id: string; pid: number; at: number }>
          for (let i = 0; i < runs.length; i++) {
            const run = runs[i]!
            if (i > 0 && runs[i - 1]!.call_id === run.call_id) continue
            const kill = killedAt.get(run.pid)
            duplicateToKillMs.push(kill === undefined ? NaN : kill - run.at)
          }
        } finally {
          db.close()
        }
        let answeredNotLogged = 0
        let answeredNoEffect = 0
        for (const id of answeredIds) {
          if (!logged.has(id)) answeredNotLogged++
          if (!applied.has(id)) answeredNoEffect++
        }
        const sample: ChaosSample = {
          calls,
          answered,
          lost: calls - answered,
          errors,
          executedTwice,
          effectTwice,
          answeredNotLogged,
          answeredNoEffect,
          executions,
          effects,
          cuts: events.slice(0, done).filter((e) => e === 'cut').length,
          kills: events.slice(0, done).filter((e) => e === 'kill').length,
          seconds,
          duplicateToKillMs,
        }
        if (side === 'ss' && windows.size > 0) {
          let life = 0
          let open = 0
          let callMs = 0
          for (const w of windows.values()) {
            life += w.life
            open += w.openMs
            callMs += w.callMs
          }
          sample.vulnerableShare = open / life
          sample.expectedPerKill = callMs / life
        }
        return sample
      } finally {
        for (const tab of tabs) tab.close()
        await proxy?.close()
      }
    })
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
}

export async function chaos(mode: BenchMode): Promise<FigureResult> {
  const total = mode.full ? 10_000 : 600
  const cuts = mode.full ? 10 : 2
  const kills = mode.full ? 3 : 1
  const deadlineMs = mode.full ? 600_000 : 90_000
  const ss: ChaosSample[] = []
  const plain: ChaosSample[] = []
  for (let rep = 0; rep < mode.reps; rep++) {
    ss.push(await run('ss', mode, total, cuts, kills, deadlineMs))
    plain.push(await run('plain', mode, total, cuts, kills, deadlineMs))
  }
  const sum = (xs: ChaosSample[], pick: (x: ChaosSample) => number) => xs.reduce((a, x) => a + pick(x), 0)
  const counts = (xs: ChaosSample[]) => xs.map((x) => `${x.lost}/${x.executedTwice}/${x.effectTwice}`).join(', ')
  const totals = (xs: ChaosSample[]) =>
    [sum(xs, (x) => x.calls), sum(xs, (x) => x.answered), sum(xs, (x) => x.lost), sum(xs, (x) => x.executedTwice), sum(xs, (x) => x.effectTwice), sum(xs, (x) => x.answeredNotLogged + x.answeredNoEffect)].join(', ')
  const rows: Row[] = [
    {
      figure: FIGURE,
      name: `${TABS} tabs, ${total} calls, ${cuts} cuts + ${kills} SIGKILLs, per run: lost / handler ran twice / effect applied twice (SDK: effect keyed by ctx.callKey; plain: no key)`,
      ss: counts(ss),
      plain: counts(plain),
      target: '0 lost, 0 effects twice',
      pass: ss.every((x) => x.lost === 0 && x.effectTwice === 0 && x.answeredNotLogged === 0 && x.answeredNoEffect === 0),
    },
    {
      figure: FIGURE,
      name: `totals over ${mode.reps} runs: calls, answered, lost, handler ran twice, effect applied twice, answered but not run or not applied`,
      ss: totals(ss),
      plain: totals(plain),
    },
    {
      figure: FIGURE,
      name: 'run time (s)',
      ss: fmt(summarize(ss.map((x) => x.seconds)), 1),
      plain: fmt(summarize(plain.map((x) => x.seconds)), 1),
    },
  ]
  const share = summarize(ss.map((x) => (x.vulnerableShare ?? NaN) * 100))
  const perKill = summarize(ss.map((x) => x.expectedPerKill ?? NaN))
  const errorText = (xs: ChaosSample[]) => {
    const all: Record<string, number> = {}
    for (const x of xs) for (const [k, v] of Object.entries(x.errors)) all[k] = (all[k] ?? 0) + v
    return Object.keys(all).length ? Object.entries(all).map(([k, v]) => `${k} ×${v}`).join(', ') : 'none'
  }
  return {
    rows,
    notes: [
      `Chaos: ${TABS} tabs (3 browsers), ${WINDOW} calls in flight each, through a TCP proxy that is cut ${cuts} times (all connections destroyed, new ones refused for 0.1–1 s) while the server is SIGKILLed ${kills} times and restarted on the same port; events spread evenly over the calls. SqliteLinkStore on a file (call results and the bench_log table in it), connect-sqlite3 sessions; session-using method (reload/save). SDK: default backoff, callTimeout ${deadlineMs / 1000} s, callLease ${CALL_LEASE} ms (the default 60 s would hold a call killed mid-run IN_PROGRESS for a minute). Plain: socket.io-client's own at-least-once (ackTimeout 5000 ms, retries 20) on emitWithAck, no server-side dedup. ${mode.reps} runs per side.`,
      `Chaos errors: SDK ${errorText(ss)}; plain ${errorText(plain)}.`,
      `Handler ran twice: an id with two committed executions in bench_log (an execution killed before its transaction committed leaves no trace, and no effect). Effect applied twice: an id with two rows in bench_ledger; the SDK's method inserts the ledger row only if INSERT … ON CONFLICT (call_key) DO NOTHING into bench_effect, keyed by ctx.callKey, inserted in the same transaction, so a second run of the same call applies nothing; plain Socket.IO has no call key, so each run of its handler (socket.io-client's retries of the same packet) applies the effect. The counts are read from the SQLite file after the run, outside the server.`,
      `Duplicate window (SDK): the only way a call runs twice is a SIGKILL after its handler's effect and before its reply is recorded (finishCall). Measured in the server: that window is open ${fmt(share, 3)} % of its life, i.e. ${fmt(perKill, 4)} expected duplicates per SIGKILL at a random instant (the kills here are not random: they fire as calls complete, while the server is busy). Each SDK duplicate's first run was in the server then SIGKILLed, this many ms before the kill: ${ss.flatMap((x) => x.duplicateToKillMs.map((d) => d.toFixed(0))).join(', ') || 'none'}; plain: ${plain.flatMap((x) => x.duplicateToKillMs.map((d) => (Number.isFinite(d) ? d.toFixed(0) : 'not killed'))).join(', ') || 'none'}.`,
    ],
    raw: { ss, plain },
  }
}
