/**
 * Summarizes a V8 .cpuprofile (from `npm run bench -- --cpu-prof`): self time by package and
 * by function, and inclusive time of chosen functions.
 *   node --import tsx bench/profile-summary.ts <file.cpuprofile> [top=25] [inclusive=name1,name2]
 */
import fs from 'node:fs'

interface Node {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: Node[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

const [file, topArg, inclusiveArg] = process.argv.slice(2)
if (!file) throw new Error('usage: profile-summary.ts <file.cpuprofile> [top] [inclusive=fn1,fn2]')
const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile
const top = Number(topArg ?? 25)
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

const selfUs = new Map<number, number>()
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]!
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0))
}

function pkg(url: string): string {
  if (!url) return '(native/gc/idle)'
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (m) return m[1]!
  if (url.startsWith('node:')) return 'node:*'
  if (url.includes('/packages/')) return url.replace(/.*\/packages\//, 'packages/').replace(/\/dist\/.*/, '')
  return url.replace(/.*\/work\/main\//, '')
}

const total = [...selfUs.values()].reduce((a, b) => a + b, 0)
const byPkg = new Map<string, number>()
const byFn = new Map<string, number>()
for (const [id, us] of selfUs) {
  const n = byId.get(id)!
  const name = n.callFrame.functionName || '(anonymous)'
  if (['(idle)', '(program)', '(garbage collector)'].includes(name)) {
    byPkg.set(name, (byPkg.get(name) ?? 0) + us)
    continue
  }
  const p = pkg(n.callFrame.url)
  byPkg.set(p, (byPkg.get(p) ?? 0) + us)
  const key = `${name} ${p}:${n.callFrame.lineNumber + 1}`
  byFn.set(key, (byFn.get(key) ?? 0) + us)
}
const show = (m: Map<string, number>, n: number) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${(v / 1000).toFixed(1).padStart(9)} ms ${((100 * v) / total).toFixed(1).padStart(5)} %  ${k}`)
    .join('\n')
console.log(`total ${(total / 1000).toFixed(0)} ms sampled\n\nself time by package:\n${show(byPkg, 30)}\n\nself time by function:\n${show(byFn, top)}`)

if (inclusiveArg) {
  // Inclusive time: a sample counts once for a function if the function is on its stack.
  const names = inclusiveArg.split(',')
  const inclusive = new Map<string, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i + 1] ?? 0
    const seen = new Set<string>()
    for (let id: number | undefined = profile.samples[i]; id !== undefined; id = parent.get(id)) {
      const name = byId.get(id)!.callFrame.functionName
      if (names.includes(name) && !seen.has(name)) {
        seen.add(name)
        inclusive.set(name, (inclusive.get(name) ?? 0) + dt)
      }
    }
  }
  console.log(`\ninclusive:\n${show(inclusive, names.length)}`)
}
