import { existsSync, readFileSync } from 'node:fs'
import { runInNewContext } from 'node:vm'
import { brotliCompressSync, gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'

// Reads the built files: run `npm run build` first (the root `npm test` does).
const dist = (file: string) => new URL(`../dist/${file}`, import.meta.url)
const read = (url: URL) => {
  if (!existsSync(url)) throw new Error(`${url.pathname} is missing: run \`npm run build -w @session-socket/browser\` first`)
  return readFileSync(url)
}
const gzip = (code: Buffer) => gzipSync(code, { level: 9 }).length
const brotli = (code: Buffer) => brotliCompressSync(code).length
const KB = 1024

/** The modules a built ES file imports, from its import and export-from statements. */
const importsOf = (code: Buffer) => [...code.toString().matchAll(/(?:import|export)\s*(?:[\w*{}\s,$]+from\s*)?["']([^"']+)["']/g)].map((match) => match[1]).sort()

const socketIoOwn = read(new URL('../../../node_modules/socket.io-client/dist/socket.io.min.js', import.meta.url))

describe('bundles', () => {
  it('should keep the ESM core within 6.1 KB gzip, socket.io-client not included', () => {
    const core = read(dist('index.js'))
    expect(importsOf(core)).toEqual(['socket.io-client'])
    expect(gzip(core)).toBeLessThanOrEqual(6.1 * KB)
    expect(brotli(core)).toBeLessThan(gzip(core))
  })

  it('should keep the React entry small, importing React and the core by name', () => {
    const react = read(dist('react.js'))
    expect(importsOf(react)).toEqual(['@session-socket/browser', 'react'])
    expect(gzip(react)).toBeLessThanOrEqual(1 * KB)
  })

  it('should keep the durable-calls entry small, importing the core by name', () => {
    const durable = read(dist('durable.js'))
    expect(importsOf(durable)).toEqual(['@session-socket/browser'])
    expect(gzip(durable)).toBeLessThanOrEqual(2.5 * KB)
  })

  it("should keep the <script> bundle within socket.io-client's own minified bundle + 6 KB gzip", () => {
    const iife = read(dist('session-socket.iife.js'))
    expect(iife.toString()).toMatch(/^var SessionSocket=/)
    expect(importsOf(iife)).toEqual([])
    expect(gzip(iife)).toBeLessThanOrEqual(gzip(socketIoOwn) + 6 * KB)
  })

  it('should leave the server-side payload schemas (and valibot) out of every browser bundle', () => {
    for (const file of ['index.js', 'react.js', 'session-socket.iife.js']) {
      const code = read(dist(file)).toString()
      expect(code).not.toContain('register must be an object')
      expect(code).not.toContain('valibot')
    }
  })

  it('should expose the same API from the ESM core and the <script> bundle', async () => {
    const esm = (await import(/* @vite-ignore */ dist('index.js').href)) as Record<string, unknown>
    const source = (await import('@session-socket/browser')) as Record<string, unknown>
    expect(Object.keys(esm).sort()).toEqual(Object.keys(source).filter((name) => typeof source[name] !== 'undefined').sort())
    // As a classic <script> would: a fresh global scope, `window` being that scope.
    const page: { window?: unknown; SessionSocket?: Record<string, unknown> } = {}
    page.window = page
    runInNewContext(read(dist('session-socket.iife.js')).toString(), page)
    // The <script> bundle carries the durable-calls entry too.
    const durable = (await import(/* @vite-ignore */ dist('durable.js').href).catch(() => import('@session-socket/browser/durable'))) as Record<string, unknown>
    expect(Object.keys(page.SessionSocket ?? {}).sort()).toEqual([...Object.keys(esm), ...Object.keys(durable)].sort())
  })
})
