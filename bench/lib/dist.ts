import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { BENCH_DIR } from './processes.js'

export const ROOT = path.resolve(BENCH_DIR, '..')
const PACKAGES = ['protocol', 'node', 'browser'] as const
type Pkg = (typeof PACKAGES)[number]

/** Files every figure needs from the build; a build in progress lacks some. */
const REQUIRED: Record<Pkg, string[]> = {
  protocol: ['dist/index.js'],
  node: ['dist/index.js', 'dist/stores/sqlite.js', 'dist/stores/redis.js'],
  browser: ['dist/index.js', 'dist/session-socket.iife.js'],
}

/**
 * Where the built packages are read from: a snapshot taken by the harness at start (the
 * BENCH_DIST env, inherited by every child), so a rebuild by someone else mid-run (`rm -rf
 * dist`) cannot break or mix a run. Falls back to packages/ itself.
 */
export function distDir(pkg: Pkg): string {
  const snapshot = process.env.BENCH_DIST
  return snapshot ? path.join(snapshot, pkg) : path.join(ROOT, 'packages', pkg)
}

export function distFile(pkg: Pkg, file: string): string {
  return path.join(distDir(pkg), 'dist', file)
}

export function importDist<T>(pkg: Pkg, file = 'index.js'): Promise<T> {
  return import(pathToFileURL(distFile(pkg, file)).href) as Promise<T>
}

function missingBuildFiles(): string[] {
  return PACKAGES.flatMap((pkg) => REQUIRED[pkg].filter((file) => !fs.existsSync(path.join(ROOT, 'packages', pkg, file))).map((file) => `packages/${pkg}/${file}`))
}

/** Waits (up to `timeoutMs`) for a build someone else is running to finish: `rm -rf dist` first, files back after. */
export async function waitForBuild(timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let missing = missingBuildFiles()
  while (missing.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 2000))
    missing = missingBuildFiles()
  }
  if (missing.length > 0) throw new Error(`${missing.join(', ')} missing: run npm run build first`)
  // A build that just put the files back may still be writing the rest.
  await new Promise((resolve) => setTimeout(resolve, 1000))
}

/**
 * Copies packages/{protocol,node,browser}/{package.json,dist} to
 * bench/.dist/<id>/node_modules/@session-socket/<pkg>, where the packages' own imports of each
 * other resolve to the copies and everything else to the repository's node_modules.
 */
export function snapshotDist(): { root: string; dir: string; remove(): void } {
  const missing = missingBuildFiles()
  if (missing.length > 0) throw new Error(`${missing.join(', ')} missing: run npm run build first (or wait for a running build)`)
  const base = path.join(BENCH_DIR, '.dist')
  // Snapshots of runs that died without cleaning up.
  if (fs.existsSync(base)) {
    for (const entry of fs.readdirSync(base)) {
      const pid = Number(entry.split('-')[0])
      let alive = false
      try {
        process.kill(pid, 0)
        alive = true
      } catch {
        alive = false
      }
      if (!alive) fs.rmSync(path.join(base, entry), { recursive: true, force: true })
    }
  }
  const root = path.join(base, `${process.pid}-${Date.now()}`)
  const dir = path.join(root, 'node_modules', '@session-socket')
  for (const pkg of PACKAGES) {
    const from = path.join(ROOT, 'packages', pkg)
    const to = path.join(dir, pkg)
    fs.mkdirSync(to, { recursive: true })
    fs.copyFileSync(path.join(from, 'package.json'), path.join(to, 'package.json'))
    fs.cpSync(path.join(from, 'dist'), path.join(to, 'dist'), { recursive: true })
    if (fs.existsSync(path.join(from, 'node_modules'))) fs.symlinkSync(path.join(from, 'node_modules'), path.join(to, 'node_modules'))
  }
  return { root, dir, remove: () => fs.rmSync(root, { recursive: true, force: true }) }
}

/**
 * Compiles the child entry points (server, load, soak-load) to plain ESM beside the snapshot: local files
 * bundled, packages left as imports (resolved from the repository's node_modules).
 */
export async function compileChildren(snapshotRoot: string): Promise<string> {
  const { build } = await import('esbuild')
  const outdir = path.join(snapshotRoot, 'js')
  await build({
    entryPoints: ['server', 'load', 'soak-load'].map((name) => path.join(BENCH_DIR, `${name}.ts`)),
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
  })
  return outdir
}

/**
 * Sets up a standalone bench script's children: the packages' dist snapshotted (or the build
 * BENCH_DIST names), the child entry points compiled, and the env the children read set.
 * `remove()` deletes the snapshot it made (nothing for a given BENCH_DIST).
 */
export async function prepareBenchChildren(): Promise<{ remove(): void }> {
  const given = process.env.BENCH_DIST
  const snapshot = given ? { root: path.dirname(path.dirname(given)), dir: given, remove() {} } : snapshotDist()
  process.env.BENCH_DIST = snapshot.dir
  process.env.BENCH_DIR = BENCH_DIR
  process.env.BENCH_JS = await compileChildren(snapshot.root)
  return snapshot
}
