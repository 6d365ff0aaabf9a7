/**
 * Where the memory figure's bytes go: starts a server (side from argv), takes a heap snapshot
 * before and after N tabs connect, and prints the self-size difference by constructor/type.
 *   node --import tsx bench/heap-diff.ts ss|plain [N=1000]
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { compileChildren, snapshotDist } from './lib/dist.js'
import { BENCH_DIR, withChildren } from './lib/processes.js'
import { startLoad, startServer } from './lib/servers.js'
import type { Side } from './lib/clients.js'

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } }
  nodes: number[]
  edges: number[]
  strings: string[]
}

/** Self size of "(object properties)" backing stores, by the constructor of the object owning them. */
function propertyOwners(file: string): Map<string, { size: number; count: number }> {
  const snap = JSON.parse(fs.readFileSync(file, 'utf8')) as Snapshot
  const nf = snap.snapshot.meta.node_fields
  const ef = snap.snapshot.meta.edge_fields
  const types = snap.snapshot.meta.node_types[0]
  const w = nf.length
  const ew = ef.length
  const [typeAt, nameAt, sizeAt, edgeCountAt] = ['type', 'name', 'self_size', 'edge_count'].map((f) => nf.indexOf(f)) as [number, number, number, number]
  const toAt = ef.indexOf('to_node')
  const out = new Map<string, { size: number; count: number }>()
  let e = 0
  for (let i = 0; i < snap.nodes.length; i += w) {
    const count = snap.nodes[i + edgeCountAt]!
    let owner = `${types[snap.nodes[i + typeAt]!]}:${snap.strings[snap.nodes[i + nameAt]!]!.slice(0, 50)}`
    if (owner === 'object:Object') {
      // Name plain objects by their first property names, to tell them apart.
      const names: string[] = []
      for (let k = 0, f = e; k < count && names.length < 6; k++, f += ew) {
        if (snap.snapshot.meta.edge_types[0][snap.edges[f]!] === 'property') names.push(String(snap.strings[snap.edges[f + 1]!]))
      }
      owner = `Object{${names.join(',')}}`
    }
    for (let k = 0; k < count; k++, e += ew) {
      const to = snap.edges[e + toAt]!
      if (types[snap.nodes[to + typeAt]!] === 'array' && snap.strings[snap.nodes[to + nameAt]!] === '(object properties)') {
        const entry = out.get(owner) ?? { size: 0, count: 0 }
        entry.size += snap.nodes[to + sizeAt]!
        entry.count++
        out.set(owner, entry)
      }
    }
  }
  return out
}

function bySize(file: string): Map<string, { size: number; count: number }> {
  const snap = JSON.parse(fs.readFileSync(file, 'utf8')) as Snapshot
  const fields = snap.snapshot.meta.node_fields
  const types = snap.snapshot.meta.node_types[0]
  const width = fields.length
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number]
  const out = new Map<string, { size: number; count: number }>()
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!]!
    let name = snap.strings[snap.nodes[i + nameAt]!]!
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '(string)'
    else if (type === 'code') name = '(code)'
    else if (type === 'hidden' || type === 'array') name = `${type}:${name.slice(0, 40)}`
    else if (type === 'closure') name = `closure ${name.slice(0, 60)}`
    else name = `${type}:${name.slice(0, 60)}`
    const entry = out.get(name) ?? { size: 0, count: 0 }
    entry.size += snap.nodes[i + sizeAt]!
    entry.count++
    out.set(name, entry)
  }
  return out
}

const side = (process.argv[2] ?? 'ss') as Side
const count = Number(process.argv[3] ?? 1000)
const snapshot = snapshotDist()
process.env.BENCH_DIST = snapshot.dir
process.env.BENCH_DIR = BENCH_DIR
process.env.BENCH_JS = await compileChildren(snapshot.root)
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-heap-'))
try {
  await withChildren(async (own) => {
    const server = await startServer({ side, store: 'memory', port: 0 }, { gc: true })
    own(server.child)
    const load = own(await startLoad('load'))
    await load.request({ cmd: 'open', side, url: server.url, count: 20, batch: 20, backoff: 'sio', timeoutMs: 60_000 })
    const before = (await server.child.request<{ file: string }>({ cmd: 'snapshot', file: path.join(dir, 'before.heapsnapshot') }, 120_000)).file
    await load.request({ cmd: 'open', side, url: server.url, count, batch: 100, backoff: 'sio', timeoutMs: 120_000 }, 130_000)
    const after = (await server.child.request<{ file: string }>({ cmd: 'snapshot', file: path.join(dir, 'after.heapsnapshot') }, 120_000)).file
    const a = bySize(before)
    const b = bySize(after)
    const diff: Array<[string, number, number]> = []
    for (const [name, entry] of b) {
      const prev = a.get(name) ?? { size: 0, count: 0 }
      if (entry.size - prev.size !== 0) diff.push([name, entry.size - prev.size, entry.count - prev.count])
    }
    diff.sort((x, y) => y[1] - x[1])
    const total = diff.reduce((s, d) => s + d[1], 0)
    console.log(`${side}: +${(total / count).toFixed(0)} B per tab in the snapshot (self sizes)`)
    for (const [name, size, n] of diff.slice(0, 45)) console.log(`${(size / count).toFixed(1).padStart(8)} B/tab ${(n / count).toFixed(2).padStart(6)} obj/tab  ${name}`)
    const pa = propertyOwners(before)
    const pb = propertyOwners(after)
    console.log('\n(object properties) by owner:')
    const rows: Array<[string, number, number]> = []
    for (const [name, entry] of pb) {
      const prev = pa.get(name) ?? { size: 0, count: 0 }
      if (entry.size !== prev.size) rows.push([name, entry.size - prev.size, entry.count - prev.count])
    }
    rows.sort((x, y) => y[1] - x[1])
    for (const [name, size, n] of rows.slice(0, 15)) console.log(`${(size / count).toFixed(1).padStart(8)} B/tab ${(n / count).toFixed(2).padStart(6)} obj/tab  ${name}`)
  })
} finally {
  fs.rmSync(dir, { recursive: true, force: true })
  snapshot.remove()
}
