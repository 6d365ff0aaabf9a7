import type { Summary } from './stats.js'

/** One line of the results table. */
export interface Row {
  figure: string
  name: string
  /** session-socket, formatted "median (min–max)". */
  ss: string
  /** The baseline: plain Socket.IO with the express-session recipe. */
  plain: string
  /** session-socket / baseline, pairwise over interleaved repetitions. */
  ratio?: Summary
  /** e.g. "<= 1.05" */
  target?: string
  pass?: boolean
  note?: string
}

export interface FigureResult {
  rows: Row[]
  /** Lines printed under the table: settings, counts, explanations. */
  notes: string[]
  /** Markdown tables printed after the notes (the soak's per-minute curve). */
  tables?: string[]
  raw: unknown
}

export interface BenchMode {
  full: boolean
  /** Repetitions of each measurement (>= 3). */
  reps: number
  cpuProfDir?: string
  /** Storm: only these stores (--stores=sqlite,redis). */
  stores?: string[]
  /** Storm, soak: tab count override (--tabs=N). */
  tabs?: number
  /** Soak: how long it runs (--soak-minutes=N). @default 10 */
  soakMinutes?: number
  /** Storm: listen backlog of the servers (--backlog=N). */
  backlog?: number
}

export function check(ratio: Summary, target: string): boolean | undefined {
  const m = /^(<=|>=)\s*([\d.]+)$/.exec(target)
  if (!m || !Number.isFinite(ratio.median)) return undefined
  const limit = Number(m[2])
  return m[1] === '<=' ? ratio.median <= limit : ratio.median >= limit
}
