/** Median and spread of repeated measurements. */
export interface Summary {
  n: number
  median: number
  min: number
  max: number
}

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo)
}

export function summarize(values: number[]): Summary {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  return { n: sorted.length, median: quantile(sorted, 0.5), min: sorted[0] ?? NaN, max: sorted[sorted.length - 1] ?? NaN }
}

/** Pairwise ratios a[i] / b[i] of interleaved repetitions, summarized. */
export function ratios(a: number[], b: number[]): Summary {
  const out: number[] = []
  for (let i = 0; i < Math.min(a.length, b.length); i++) out.push(a[i]! / b[i]!)
  return summarize(out)
}

function round(value: number, digits: number): string {
  if (!Number.isFinite(value)) return '–'
  return value.toFixed(digits)
}

/** "123 (110–140)" */
export function fmt(s: Summary, digits = 0, unit = ''): string {
  if (s.n === 0) return '–'
  const u = unit ? ` ${unit}` : ''
  if (s.n === 1 || s.min === s.max) return `${round(s.median, digits)}${u}`
  return `${round(s.median, digits)}${u} (${round(s.min, digits)}–${round(s.max, digits)})`
}

export function fmtRatio(s: Summary): string {
  return fmt(s, 2)
}
