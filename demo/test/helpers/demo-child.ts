import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** The repository root: the demo's source runs from there through tsx (no demo build needed). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))
/** The demo's entry point, as source. */
export const DEMO_MAIN = fileURLToPath(new URL('../../server/main.ts', import.meta.url))

/** A demo server process started from source. */
export interface DemoChild {
  proc: ChildProcess
  /** Everything it printed so far, stdout and stderr. */
  output(): string
  /** Resolves with the URL once it prints its "listening" line; rejects if it exits first. */
  listening(timeoutMs?: number): Promise<string>
  /** Resolves with the exit code (null: killed by a signal) and when it exited (performance.now()). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
}

const children = new Set<ChildProcess>()
// No demo outlives the test run, whatever failed.
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})

/**
 * Spawns `node --import tsx demo/server/main.ts` (or `command` with these arguments) with
 * `env` over the parent's environment.
 *
 * @example
 * const demo = startDemoChild({ PORT: '0', DATA_DIR: dir, SESSION_SECRETS: 's' })
 * const url = await demo.listening()
 */
export function startDemoChild(env: Record<string, string>, command?: { file: string; args: string[] }): DemoChild {
  const proc = command
    ? spawn(command.file, command.args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, ['--import', 'tsx', DEMO_MAIN], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(proc)
  let out = ''
  proc.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()))
  proc.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    proc.once('exit', (code, signal) => {
      children.delete(proc)
      resolve({ code, signal, at: performance.now() })
    }),
  )
  return {
    proc,
    output: () => out,
    exited,
    listening(timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "listening" line within ${timeoutMs} ms:\n${out}`)), timeoutMs)
        const check = () => {
          const match = /demo: listening on (http:\/\/\S+)/.exec(out)
          if (!match) return
          clearTimeout(timer)
          resolve(match[1]!)
        }
        proc.stdout!.on('data', check)
        void exited.then(() => {
          clearTimeout(timer)
          reject(new Error(`the demo exited before listening:\n${out}`))
        })
        check()
      })
    },
  }
}
