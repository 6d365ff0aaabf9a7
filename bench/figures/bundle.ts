/**
 * Figure 5: bundle sizes, raw / gzip -9 / brotli q11, beside socket.io-client's own bundles.
 * The ESM core leaves socket.io-client external (an app ships both); the IIFE inlines it.
 */
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'
import { distFile, ROOT } from '../lib/dist.js'
import type { BenchMode, FigureResult, Row } from '../lib/report.js'
import { summarize } from '../lib/stats.js'

const FIGURE = '5. Bundle size'

interface Size {
  raw: number
  gzip: number
  brotli: number
}

function size(buf: Buffer): Size {
  return {
    raw: buf.length,
    gzip: zlib.gzipSync(buf, { level: 9 }).length,
    brotli: zlib.brotliCompressSync(buf, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: buf.length } }).length,
  }
}

const kb = (n: number) => `${(n / 1024).toFixed(1)}`
const show = (s: Size) => `${kb(s.raw)} / ${kb(s.gzip)} / ${kb(s.brotli)} KB`

export async function bundleSizes(_mode: BenchMode): Promise<FigureResult> {
  const read = (file: string) => fs.readFileSync(file)
  const esm = read(distFile('browser', 'index.js'))
  const iife = read(distFile('browser', 'session-socket.iife.js'))
  const sioMin = read(path.join(ROOT, 'node_modules/socket.io-client/dist/socket.io.min.js'))
  const sioEsm = read(path.join(ROOT, 'node_modules/socket.io-client/dist/socket.io.esm.min.js'))
  const s = { esm: size(esm), iife: size(iife), sioMin: size(sioMin), sioEsm: size(sioEsm), esmPlusSio: size(Buffer.concat([esm, sioEsm])) }
  const ratio = (a: number, b: number) => summarize([a / b])
  const rows: Row[] = [
    { figure: FIGURE, name: 'ESM core (socket.io-client external), raw / gzip / brotli', ss: show(s.esm), plain: `socket.io.esm.min.js ${show(s.sioEsm)}`, ratio: ratio(s.esm.brotli, s.sioEsm.brotli), note: 'brotli ratio' },
    { figure: FIGURE, name: 'ESM core + socket.io.esm.min.js (what an app ships)', ss: show(s.esmPlusSio), plain: `socket.io.esm.min.js ${show(s.sioEsm)}`, ratio: ratio(s.esmPlusSio.brotli, s.sioEsm.brotli) },
    { figure: FIGURE, name: 'IIFE <script> (socket.io-client inlined)', ss: show(s.iife), plain: `socket.io.min.js ${show(s.sioMin)}`, ratio: ratio(s.iife.brotli, s.sioMin.brotli) },
  ]
  return {
    rows,
    notes: [
      'Bundles: packages/browser/dist/index.js and dist/session-socket.iife.js beside node_modules/socket.io-client/dist/socket.io.esm.min.js and socket.io.min.js; gzip level 9, brotli quality 11; ratios on brotli. Deterministic: one measurement, no spread. "ESM core + socket.io" concatenates the two files (compressed together, slightly smaller than the two compressed apart).',
    ],
    raw: s,
  }
}
