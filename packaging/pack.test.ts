import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readmeSnippets, snippetFileName } from './readme-snippets.js'

// Reads the built packages: run `npm run build` first (the root `npm test` does).
const root = new URL('../', import.meta.url)
const rootDir = fileURLToPath(root)
const PACKAGES = ['protocol', 'node', 'browser'] as const
/** The compiled snippets of each README: a README that loses a marker fails here too. */
const SNIPPETS: Record<string, number> = {
  'README.md': 4,
  'packages/protocol/README.md': 1,
  'packages/node/README.md': 3,
  'packages/browser/README.md': 4,
}
/** Installed beside the tarballs at the repository's own ranges, so the repository's install has them in the npm cache. */
const APP_DEPENDENCIES = ['express', 'express-session', 'socket.io', 'socket.io-client', 'passport', 'passport-local', '@types/node', '@types/express', '@types/express-session', '@types/passport', '@types/passport-local', '@types/better-sqlite3', '@types/react']
/** The repository's TypeScript, so the snippets compile with the version the packages are built with. */
const tsc = fileURLToPath(new URL('node_modules/.bin/tsc', root))

/** What an app with a strict tsconfig checks; skipLibCheck off, so the packages' own .d.ts files must resolve every type they use. */
const STRICT = { strict: true, noUncheckedIndexedAccess: true, exactOptionalPropertyTypes: true, skipLibCheck: false, target: 'es2022', noEmit: true }
const TSCONFIGS = {
  node: { compilerOptions: { ...STRICT, module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2023'], types: ['node'] }, include: ['snippets/node'] },
  browser: {
    compilerOptions: { ...STRICT, module: 'preserve', moduleResolution: 'bundler', lib: ['es2023', 'dom', 'dom.iterable'], types: [], jsx: 'react-jsx' },
    include: ['snippets/browser'],
  },
  // The SDK's client in Node, without the DOM lib: its .d.ts files must not need it (a server-rendered app's tsconfig).
  smoke: { extends: './tsconfig.node.json', compilerOptions: { noEmit: false, outDir: 'out', lib: ['es2023'] }, include: ['smoke-app.ts'] },
}

// `npm test` hands npm's settings for this workspace down in the environment: npm in the
// temporary app must see only the app.
const appEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !/^npm_(package_|lifecycle_|command$|config_(prefix|local_prefix|global_prefix|workspaces?|include_workspace_root)$)/i.test(key)),
)

interface Result {
  code: number
  stdout: string
  output: string
}

function run(command: string, args: string[], cwd: string, timeout = 60_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env: appEnv, timeout, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      resolve({ code, stdout, output: `$ ${command} ${args.join(' ')}\n${stdout}${stderr}${error?.killed ? '\n(killed: timed out)' : ''}` })
    })
  })
}

async function mustRun(command: string, args: string[], cwd: string, timeout?: number): Promise<Result> {
  const result = await run(command, args, cwd, timeout)
  if (result.code !== 0) throw new Error(result.output)
  return result
}

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'))

describe('packed packages in an app outside the workspace', () => {
  let work: string
  let app: string
  let packed: Array<{ name: string; version: string; filename: string; files: Array<{ path: string }> }>
  const installed = (name: string, file = 'package.json') => join(app, 'node_modules', name, file)

  beforeAll(async () => {
    for (const name of PACKAGES) {
      if (!existsSync(new URL(`packages/${name}/dist/index.js`, root))) throw new Error(`packages/${name}/dist is missing: run \`npm run build\` first`)
    }
    work = await mkdtemp(join(tmpdir(), 'session-socket-packaging-'))
    app = join(work, 'app')
    const tarballs = join(work, 'tarballs')
    await Promise.all([mkdir(app), mkdir(tarballs)])
    const pack = await mustRun('npm', ['pack', '--json', '--pack-destination', tarballs, ...PACKAGES.flatMap((name) => ['-w', `packages/${name}`])], rootDir)
    packed = JSON.parse(pack.stdout)

    const repo = readJson(join(rootDir, 'package.json'))
    const dependencies: Record<string, string> = Object.fromEntries(packed.map((p) => [p.name, `file:${join(tarballs, p.filename)}`]))
    for (const name of APP_DEPENDENCIES) dependencies[name] = repo.devDependencies[name] ?? repo.dependencies[name]
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'packaging-app', private: true, type: 'module', dependencies }, null, 2))
    for (const [name, config] of Object.entries(TSCONFIGS)) await writeFile(join(app, `tsconfig.${name}.json`), JSON.stringify(config, null, 2))
    await copyFile(new URL('smoke-app.ts', import.meta.url), join(app, 'smoke-app.ts'))
    // Offline when the npm cache has everything (after the repository's own install), the registry otherwise.
    await mustRun('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], app, 150_000)
  }, 180_000)

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true })
  })

  it('should pack the README, LICENSE and built files of every package, depending on the protocol by a caret range', () => {
    expect(app.startsWith(rootDir)).toBe(false)
    const license = readFileSync(new URL('LICENSE', root), 'utf8')
    expect(packed.map((p) => p.name).sort()).toEqual(['@session-socket/browser', '@session-socket/node', '@session-socket/protocol'])
    for (const p of packed) {
      const files = p.files.map((file) => file.path)
      expect(files, p.name).toEqual(expect.arrayContaining(['README.md', 'LICENSE', 'package.json', 'dist/index.js', 'dist/index.d.ts']))
      expect(readFileSync(installed(p.name, 'LICENSE'), 'utf8'), `${p.name} LICENSE`).toBe(license)
      const manifest = readJson(installed(p.name))
      expect(manifest.engines, p.name).toEqual({ node: '>=20.19' })
      if (p.name !== '@session-socket/protocol') expect(manifest.dependencies['@session-socket/protocol'], p.name).toBe(`^${p.version}`)
    }
    // One protocol in the app: the SDKs' caret range takes the packed copy instead of another one.
    expect(existsSync(join(app, 'node_modules/@session-socket/node/node_modules/@session-socket/protocol'))).toBe(false)
    expect(existsSync(join(app, 'node_modules/@session-socket/browser/node_modules/@session-socket/protocol'))).toBe(false)
  })

  it("should compile every marked README snippet under strict TypeScript against the installed packages' types", async () => {
    const counts: Record<string, number> = {}
    for (const readme of Object.keys(SNIPPETS)) {
      const snippets = readmeSnippets(root, readme)
      counts[readme] = snippets.length
      for (const snippet of snippets) {
        await mkdir(join(app, 'snippets', snippet.target), { recursive: true })
        await writeFile(join(app, 'snippets', snippet.target, snippetFileName(snippet)), snippet.code)
      }
    }
    expect(counts).toEqual(SNIPPETS)
    for (const target of ['node', 'browser']) {
      const result = await run(process.execPath, [tsc, '-p', `tsconfig.${target}.json`, '--pretty', 'false'], app)
      expect(result.code, result.output).toBe(0)
    }
  })

  it('should reach ready and answer a call with a server and the SDK client in Node, all from the tarballs', async () => {
    // Without the optional peer: telemetry falls back to no-ops.
    expect(existsSync(join(app, 'node_modules/@opentelemetry/api'))).toBe(false)
    await mustRun(process.execPath, [tsc, '-p', 'tsconfig.smoke.json', '--pretty', 'false'], app)
    const smoke = await mustRun(process.execPath, ['out/smoke-app.js'], app, 20_000)
    const { status, tabId, me } = JSON.parse(smoke.stdout.trim().split('\n').at(-1)!)
    expect(status).toBe('ready')
    expect(me).toEqual({ sessionId: expect.any(String), tabId })
  })

  it('should load with require() as well, as ESM-only packages on Node 20.19+ do', async () => {
    const result = await run(process.execPath, ['-e', "for (const name of ['@session-socket/protocol', '@session-socket/node', '@session-socket/browser']) console.log(name, typeof require(name).SessionSocketError)"], app)
    expect(result.code, result.output).toBe(0)
    expect(result.stdout.trim().split('\n')).toEqual(['@session-socket/protocol function', '@session-socket/node function', '@session-socket/browser function'])
  })

  it('should ship the <script> bundle as a file beside package.json, not as a module export', () => {
    const require = createRequire(join(app, 'package.json'))
    expect(existsSync(join(dirname(require.resolve('@session-socket/browser/package.json')), 'dist/session-socket.iife.js'))).toBe(true)
    expect(() => require.resolve('@session-socket/browser/iife')).toThrow(/not defined by "exports"/)
  })

  it('should list every error code of the installed protocol in its README', async () => {
    const result = await mustRun(process.execPath, ['--input-type=module', '-e', "import { ERROR_CODES } from '@session-socket/protocol'; console.log(JSON.stringify(Object.keys(ERROR_CODES)))"], app)
    const readme = readFileSync(new URL('packages/protocol/README.md', root), 'utf8')
    const listed = [...readme.matchAll(/^\| `([A-Z_]+)` \| (?:yes|no) \|/gm)].map((match) => match[1])
    expect(listed).toEqual(JSON.parse(result.stdout))
  })
})
