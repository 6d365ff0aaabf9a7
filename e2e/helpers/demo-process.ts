import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The BUILT demo server (`npm run build && npm run build -w demo` first). */
export const DEMO_ENTRY = fileURLToPath(new URL('../../demo/dist/server/main.js', import.meta.url))

/** Test secrets: the first signs, both verify. Pass `SESSION_SECRETS` in `env` to rotate. */
export const TEST_SECRETS = 'e2e-secret-current,e2e-secret-previous'

export interface DemoOptions {
  /**
   * Extra environment, merged over the defaults (`SS_TEST=1`, `SESSION_SECRETS`, `HOST`,
   * `PORT`, `DATA_DIR`). A value of `undefined` removes a variable.
   */
  env?: Record<string, string | undefined>
  /** Data folder to use (and keep). @default a new temp folder, removed by dispose() */
  dataDir?: string
  /** Port to listen on. @default a free one picked by the OS, kept across restarts */
  port?: number
  /** Longest wait for the "listening" line (ms). @default 10000 */
  readyTimeoutMs?: number
  /** Print the server's output as it comes (or set DEMO_LOG=1). @default false */
  echo?: boolean
}

export interface ExitInfo {
  code: number | null
  signal: NodeJS.Signals | null
}

/**
 * A demo server running as a child process. Its URL, port and data folder stay the same
 * across `restart()`; `pid` changes.
 */
export interface DemoProcess {
  /** http://127.0.0.1:<port> */
  readonly url: string
  readonly port: number
  readonly dataDir: string
  /** The pid of the current process (undefined while stopped). */
  readonly pid: number | undefined
  readonly running: boolean
  /** How long the last start took, spawn to "listening" line (ms). */
  readonly startupMs: number
  /** Everything the server printed (stdout and stderr, all runs). */
  output(): string
  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves with how it exited. No-op when stopped. */
  stop(options?: { timeoutMs?: number }): Promise<ExitInfo>
  /** SIGKILL: a crash, no shutdown code runs. */
  kill(): Promise<ExitInfo>
  /** Starts again on the same port and data folder; stops first (SIGTERM, or SIGKILL with `kill`). */
  restart(options?: { kill?: boolean; env?: Record<string, string | undefined> }): Promise<void>
  /** Starts again after stop()/kill(), without touching env. */
  start(): Promise<void>
  /** Resolves when the current process exits by itself (or was stopped). */
  exited(): Promise<ExitInfo>
  /** Stops it and removes the temp data folder if this helper made it. */
  dispose(): Promise<void>
}

const live = new Set<DemoProcess>()
const children = new Set<ChildProcess>()

// Last resort if a spec forgot dispose or the runner is exiting: no server outlives the tests.
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})

const LISTENING = /demo: listening on (http:\/\/[^\s]+)/

/**
 * Starts the built demo on 127.0.0.1 with `SS_TEST=1` and its own data folder, and waits
 * for its "listening" line. Call `disposeDemos()` in afterEach (or `dispose()` on the
 * handle) so that every process is stopped even when a test fails.
 *
 * @example
 * test.afterEach(() => disposeDemos())
 * const demo = await startDemo({ env: { SESSION_MAX_AGE_MS: '2000' } })
 * await page.goto(demo.url)
 * await demo.restart({ kill: true })
 */
export async function startDemo(options: DemoOptions = {}): Promise<DemoProcess> {
  const ownsDataDir = options.dataDir === undefined
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'ss-demo-'))
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000
  const echo = options.echo ?? process.env.DEMO_LOG === '1'
  let env: Record<string, string | undefined> = { ...options.env }
  let port = options.port ?? 0
  let child: ChildProcess | undefined
  let exit: Promise<ExitInfo> = Promise.resolve({ code: null, signal: null })
  let output = ''
  let startupMs = 0

  const spawnOnce = async (): Promise<void> => {
    const started = performance.now()
    const proc = spawn(process.execPath, [DEMO_ENTRY], {
      env: cleanEnv({
        ...process.env,
        NODE_ENV: 'production',
        // Embedded stores unless the spec asks for Redis, whatever the developer's shell has.
        REDIS_URL: undefined,
        SS_TEST: '1',
        SESSION_SECRETS: TEST_SECRETS,
        ...env,
        HOST: '127.0.0.1',
        PORT: String(port),
        DATA_DIR: dataDir,
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child = proc
    children.add(proc)
    exit = new Promise<ExitInfo>((resolve) => {
      proc.once('exit', (code, signal) => {
        children.delete(proc)
        if (child === proc) child = undefined
        resolve({ code, signal })
      })
    })
    const thisExit = exit
    let listening: (url: string) => void = () => {}
    const ready = new Promise<string>((resolve) => (listening = resolve))
    let pending = ''
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8')
      output += text
      if (echo) process.stderr.write(text.replace(/^(?=.)/gm, `[demo:${proc.pid}] `))
      pending += text
      const match = LISTENING.exec(pending)
      if (match) listening(match[1]!)
      pending = pending.slice(pending.lastIndexOf('\n') + 1)
    }
    proc.stdout!.on('data', onData)
    proc.stderr!.on('data', onData)
    let timer: NodeJS.Timeout | undefined
    const outcome = await Promise.race([
      ready.then((url) => ({ url })),
      thisExit.then((info) => ({ exited: info })),
      new Promise<{ timeout: true }>((resolve) => (timer = setTimeout(() => resolve({ timeout: true }), readyTimeoutMs))),
    ])
    clearTimeout(timer)
    if ('url' in outcome) {
      port = Number(new URL(outcome.url).port)
      startupMs = performance.now() - started
      return
    }
    if ('timeout' in outcome) {
      proc.kill('SIGKILL')
      await thisExit
      throw new Error(`demo server printed no "listening" line within ${readyTimeoutMs} ms. Output:\n${output}`)
    }
    throw new Error(`demo server exited (code ${outcome.exited.code}, signal ${outcome.exited.signal}) before listening. Output:\n${output}`)
  }

  const stop = async (timeoutMs = 5_000): Promise<ExitInfo> => {
    const proc = child
    if (!proc) return exit
    const done = exit
    proc.kill('SIGTERM')
    let timer: NodeJS.Timeout | undefined
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        proc.kill('SIGKILL')
        resolve()
      }, timeoutMs)
    })
    await Promise.race([done, killed])
    clearTimeout(timer)
    return done
  }

  const kill = async (): Promise<ExitInfo> => {
    const proc = child
    if (!proc) return exit
    proc.kill('SIGKILL')
    return exit
  }

  try {
    await spawnOnce()
  } catch (err) {
    if (ownsDataDir) rmSync(dataDir, { recursive: true, force: true })
    throw err
  }

  const handle: DemoProcess = {
    get url() {
      return `http://127.0.0.1:${port}`
    },
    get port() {
      return port
    },
    dataDir,
    get pid() {
      return child?.pid
    },
    get running() {
      return child !== undefined
    },
    get startupMs() {
      return startupMs
    },
    output: () => output,
    stop: (stopOptions) => stop(stopOptions?.timeoutMs),
    kill,
    async restart(restartOptions = {}) {
      if (restartOptions.kill) await kill()
      else await stop()
      if (restartOptions.env) env = { ...env, ...restartOptions.env }
      await spawnOnce()
    },
    async start() {
      if (child) throw new Error('the demo server is already running; use restart()')
      await spawnOnce()
    },
    exited: () => exit,
    async dispose() {
      live.delete(handle)
      await stop(2_000)
      if (ownsDataDir) rmSync(dataDir, { recursive: true, force: true })
    },
  }
  live.add(handle)
  return handle
}

/** Stops every demo server started by this worker and removes their temp folders. */
export async function disposeDemos(): Promise<void> {
  await Promise.all([...live].map((demo) => demo.dispose()))
}

function cleanEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(env)) if (value !== undefined) out[key] = value
  return out
}
