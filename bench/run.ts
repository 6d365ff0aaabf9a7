/**
 * The benchmark runner: `npm run bench -- --help` prints its options.
 *
 * Every figure is measured against plain Socket.IO with the express-session recipe in the same
 * run; ratios are session-socket / baseline over interleaved repetitions.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execSync } from 'node:child_process'
import { compileChildren, snapshotDist, waitForBuild } from './lib/dist.js'
import { BENCH_DIR } from './lib/processes.js'
import type { BenchMode, FigureResult, Row } from './lib/report.js'
import { fmt, fmtRatio, summarize } from './lib/stats.js'
import { storeKinds } from './lib/stores.js'

const ROOT = path.resolve(BENCH_DIR, '..')
const FIGURES = {
  rtt: () => import('./figures/round-trips.js').then((m) => m.roundTrips),
  storm: () => import('./figures/storm.js').then((m) => m.storm),
  memory: () => import('./figures/memory.js').then((m) => m.memoryPerTab),
  rpc: () => import('./figures/rpc.js').then((m) => m.rpcThroughput),
  bundle: () => import('./figures/bundle.js').then((m) => m.bundleSizes),
  chaos: () => import('./figures/chaos.js').then((m) => m.chaos),
  latency: () => import('./figures/latency.js').then((m) => m.storeLatency),
  soak: () => import('./figures/soak.js').then((m) => m.soak),
} as const
/** The figures `--stores=` chooses the stores of; they run alone when --stores is given without --only. */
const STORE_FIGURES: FigureName[] = ['latency', 'storm']
type FigureName = keyof typeof FIGURES
/** Figures that run only when named in --only (the soak takes 10 minutes and more). */
const OPT_IN: FigureName[] = ['soak']
const DEFAULT_FIGURES = (Object.keys(FIGURES) as FigureName[]).filter((name) => !OPT_IN.includes(name))

const USAGE = `npm run bench                 quick mode (small counts, < 3 min)
npm run bench -- --full       the figures for BENCHMARKS.md (results in bench/results/)
npm run bench -- --only=soak  the soak alone (10,000 tabs, 10 minutes; never part of the two above)
options: --only=${Object.keys(FIGURES).join(',')}  --reps=N (>= 3)
         --stores=memory,sqlite,redis,redis-cluster (latency, storm; alone, these two figures run)
         --tabs=N  --backlog=N (storm: size, servers' listen backlog; soak: --tabs=N, default 10000)
         --soak-minutes=N (soak: how long, >= 2, default 10)
         --cpu-prof (server CPU profiles in bench/results/profiles, from servers that exit cleanly)`
const OPTIONS = ['--full', '--cpu-prof', '--only=', '--reps=', '--stores=', '--tabs=', '--backlog=', '--soak-minutes=']

function parseArgs(argv: string[]) {
  if (argv.includes('--help')) {
    console.log(USAGE)
    process.exit(0)
  }
  const unknown = argv.filter((a) => !OPTIONS.some((o) => (o.endsWith('=') ? a.startsWith(o) : a === o)))
  if (unknown.length) throw new Error(`unknown option ${unknown.join(' ')}\n${USAGE}`)
  const full = argv.includes('--full')
  const only = argv.find((a) => a.startsWith('--only='))?.slice(7).split(',') as FigureName[] | undefined
  for (const name of only ?? []) if (!(name in FIGURES)) throw new Error(`unknown figure '${name}'; pick from ${Object.keys(FIGURES).join(', ')}`)
  const reps = Number(argv.find((a) => a.startsWith('--reps='))?.slice(7) ?? 3)
  if (!Number.isInteger(reps) || reps < 3) throw new Error('--reps must be an integer >= 3')
  const cpuProfDir = argv.includes('--cpu-prof') ? path.join(BENCH_DIR, 'results', 'profiles') : undefined
  const stores = argv.find((a) => a.startsWith('--stores='))?.slice(9).split(',')
  if (stores) storeKinds(stores)
  const tabs = argv.find((a) => a.startsWith('--tabs='))?.slice(7)
  const backlog = argv.find((a) => a.startsWith('--backlog='))?.slice(10)
  const soakMinutes = argv.find((a) => a.startsWith('--soak-minutes='))?.slice(15)
  return { full, only: only ?? (stores ? STORE_FIGURES : DEFAULT_FIGURES), reps, cpuProfDir, stores, tabs: tabs === undefined ? undefined : Number(tabs), backlog: backlog === undefined ? undefined : Number(backlog), soakMinutes: soakMinutes === undefined ? undefined : Number(soakMinutes) }
}

/** The built files the figures import; a stale build would measure old code. */
function checkBuild(): string[] {
  const warnings: string[] = []
  for (const pkg of ['protocol', 'node', 'browser']) {
    const dist = path.join(ROOT, 'packages', pkg, 'dist', 'index.js')
    if (!fs.existsSync(dist)) throw new Error(`${path.relative(ROOT, dist)} is missing: run npm run build first`)
    const built = fs.statSync(dist).mtimeMs
    const src = path.join(ROOT, 'packages', pkg, 'src')
    const newer = fs.readdirSync(src, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && fs.statSync(path.join(e.parentPath, e.name)).mtimeMs > built)
    if (newer.length) warnings.push(`packages/${pkg}/src has ${newer.length} file(s) newer than dist (run npm run build to measure them)`)
  }
  return warnings
}

function versions(): Record<string, string> {
  const read = (p: string) => (JSON.parse(fs.readFileSync(path.join(ROOT, p), 'utf8')) as { version: string }).version
  const out: Record<string, string> = { node: process.version }
  for (const [name, p] of Object.entries({
    '@session-socket/node': 'packages/node/package.json',
    '@session-socket/browser': 'packages/browser/package.json',
    'socket.io': 'node_modules/socket.io/package.json',
    'socket.io-client': 'node_modules/socket.io-client/package.json',
    'express-session': 'node_modules/express-session/package.json',
    express: 'node_modules/express/package.json',
    'better-sqlite3': 'node_modules/better-sqlite3/package.json',
    'connect-sqlite3': 'node_modules/connect-sqlite3/package.json',
    sqlite3: 'node_modules/sqlite3/package.json',
    redis: 'node_modules/redis/package.json',
    'connect-redis': 'node_modules/connect-redis/package.json',
  })) {
    try {
      out[name] = read(p)
    } catch {
      out[name] = '?'
    }
  }
  try {
    out['redis-server'] = execSync('/usr/bin/redis-server --version', { encoding: 'utf8' }).match(/v=([\d.]+)/)?.[1] ?? '?'
  } catch {
    out['redis-server'] = '?'
  }
  return out
}

function machine() {
  const cpus = os.cpus()
  return {
    cpus: cpus.length,
    model: cpus[0]?.model ?? '?',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    loadavg: os.loadavg().map((l) => l.toFixed(2)).join(' '),
    kernel: os.release(),
  }
}

function gitCommit(): string {
  try {
    const head = execSync('git rev-parse --short HEAD', { cwd: ROOT, encoding: 'utf8' }).trim()
    const dirty = execSync('git status --porcelain packages/node/src packages/browser/src packages/protocol/src', { cwd: ROOT, encoding: 'utf8' }).trim()
    return dirty ? `${head} (+ uncommitted changes in packages/*/src)` : head
  } catch {
    return '?'
  }
}

function table(rows: Row[]): string {
  const header = ['figure', 'measure', 'session-socket', 'plain Socket.IO', 'ratio', 'target', '']
  const lines = [header, header.map(() => '---')]
  for (const row of rows) {
    lines.push([
      row.figure,
      row.name,
      row.ss,
      row.plain,
      row.ratio ? fmtRatio(row.ratio) : '',
      row.target ?? '',
      row.pass === undefined ? '' : row.pass ? 'ok' : 'MISSED',
    ])
  }
  return lines.map((cells) => `| ${cells.join(' | ')} |`).join('\n')
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const mode: BenchMode = { full: args.full, reps: args.reps, ...(args.cpuProfDir ? { cpuProfDir: args.cpuProfDir } : {}), ...(args.stores ? { stores: args.stores } : {}), ...(args.tabs ? { tabs: args.tabs } : {}), ...(args.backlog ? { backlog: args.backlog } : {}), ...(args.soakMinutes ? { soakMinutes: args.soakMinutes } : {}) }
  if (args.cpuProfDir) fs.mkdirSync(args.cpuProfDir, { recursive: true })
  await waitForBuild()
  const warnings = checkBuild()
  for (const warning of warnings) console.warn(`warning: ${warning}`)
  const snapshot = snapshotDist()
  process.env.BENCH_DIST = snapshot.dir
  process.once('exit', () => snapshot.remove())
  process.env.BENCH_DIR = BENCH_DIR
  process.env.BENCH_JS = await compileChildren(snapshot.root)
  const started = Date.now()
  const loadBefore = machine().loadavg
  // The machine is shared: sample the 1-minute load average through the run, to say how busy it was.
  const loadSamples: number[] = []
  const sampler = setInterval(() => loadSamples.push(os.loadavg()[0]!), 5000)
  sampler.unref()
  console.log(`session-socket bench, ${args.full ? 'full' : 'quick'} mode: ${args.only.join(', ')} (load average before: ${loadBefore})`)
  const results: Record<string, (FigureResult | { error: string }) & { load1?: string }> = {}
  for (const name of args.only) {
    const t = Date.now()
    const firstSample = loadSamples.length
    process.stdout.write(`\n== ${name} ...\n`)
    try {
      const run = await FIGURES[name]()
      const result = await run(mode)
      results[name] = result
      console.log(table(result.rows))
      for (const note of result.notes) console.log(`  - ${note}`)
      for (const extra of result.tables ?? []) console.log(`\n${extra}`)
    } catch (err) {
      results[name] = { error: err instanceof Error ? err.stack ?? err.message : String(err) }
      console.error(`figure ${name} failed: ${(err as Error).stack ?? String(err)}`)
      process.exitCode = 1
    }
    const load1 = fmt(summarize([os.loadavg()[0]!, ...loadSamples.slice(firstSample)]), 1)
    results[name]!.load1 = load1
    console.log(`   (${((Date.now() - t) / 1000).toFixed(1)} s, 1-min load average ${load1})`)
  }
  clearInterval(sampler)
  const load = summarize(loadSamples)
  const rows = Object.values(results).flatMap((r) => ('rows' in r ? r.rows : []))
  const report = {
    mode: args.full ? 'full' : 'quick',
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    date: new Date().toISOString(),
    seconds: Math.round((Date.now() - started) / 1000),
    machine: { ...machine(), loadavgBefore: loadBefore, load1During: { median: load.median, min: load.min, max: load.max, samples: load.n } },
    versions: versions(),
    commit: gitCommit(),
    warnings,
    results,
  }
  console.log(`\n== summary (${report.seconds} s; 1-min load average during the run ${fmt(load, 1)} on ${report.machine.cpus} CPUs)\n`)
  console.log(table(rows))
  const missed = rows.filter((r) => r.pass === false)
  if (missed.length) console.log(`\nmissed targets: ${missed.map((r) => `${r.figure} / ${r.name}`).join('; ')}`)
  const dir = path.join(BENCH_DIR, 'results')
  fs.mkdirSync(dir, { recursive: true })
  // A partial run gets its own name, so it never overwrites the full figures; the soak alone is "soak".
  const soakOnly = args.only.length === 1 && args.only[0] === 'soak'
  const tag = soakOnly ? 'soak' : [
    report.mode,
    ...(process.argv.some((a) => a.startsWith('--only=') || a.startsWith('--stores=')) ? [args.only.join('+')] : []),
    ...(args.stores ? [args.stores.join('+')] : []),
  ].join('-')
  const file = path.join(dir, `${tag}-latest.json`)
  fs.writeFileSync(file, JSON.stringify(report, null, 2))
  const header = [
    `Command: \`${report.command}\` — ${report.date}, ${report.seconds} s, commit ${report.commit}`,
    `Machine: ${report.machine.cpus} × ${report.machine.model}, ${report.machine.memGiB} GiB, Linux ${report.machine.kernel}; 1-min load average during the run ${fmt(load, 1)} (other engineers' tests share the machine)`,
    `Versions: ${Object.entries(report.versions).map(([k, v]) => `${k} ${v}`).join(', ')}`,
  ]
  const notes = Object.entries(results).flatMap(([name, r]) => ('notes' in r ? [`- **${name}** (load ${r.load1 ?? '?'}): ${r.notes[0] ?? ''}`, ...r.notes.slice(1).map((n) => `  - ${n}`)] : [`- **${name}** failed: ${r.error.split('\n')[0]}`]))
  const tables = Object.values(results).flatMap((r) => ('tables' in r ? r.tables ?? [] : []))
  fs.writeFileSync(path.join(dir, `${tag}-latest.md`), `${header.join('\n\n')}\n\n${table(rows)}\n\n${notes.join('\n')}\n${tables.map((t) => `\n${t}\n`).join('')}`)
  console.log(`\nresults: ${path.relative(ROOT, file)}`)
}

main().then(
  () => process.exit(),
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)
