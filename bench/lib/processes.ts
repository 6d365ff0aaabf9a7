import { fork, type ChildProcess } from 'node:child_process'
import path from 'node:path'

/** Every child this process started and has not seen exit; SIGKILLed if the harness dies. */
const live = new Set<ChildProcess>()

function killAll(): void {
  for (const child of live) child.kill('SIGKILL')
  live.clear()
}
process.once('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll()
    process.exit(130)
  })
}

/** bench/ (children compiled into bench/.dist get it from the env). */
// In a child: if the harness goes away (even before this child is up), do not linger.
if (process.send) process.once('disconnect', () => process.exit(0))

export const BENCH_DIR = process.env.BENCH_DIR ?? path.resolve(import.meta.dirname, '..')

/**
 * The child script to fork: the JS that run.ts compiled from bench/<name>.ts (BENCH_JS), so a
 * child starts as fast as a plain Node app (tsx's loader adds 0.3–0.5 s to every start, which
 * would land in restart times); else the .ts through tsx.
 */
function childScript(name: string): { file: string; execArgv: string[] } {
  const compiled = process.env.BENCH_JS
  if (compiled) return { file: path.join(compiled, name.replace(/\.ts$/, '.mjs')), execArgv: [] }
  return { file: path.join(BENCH_DIR, name), execArgv: ['--import', 'tsx'] }
}

/** A message a child sends over IPC. `re` answers the request with the same id. */
export interface ChildMessage {
  type?: string
  re?: number
  error?: string
  [key: string]: unknown
}

/**
 * A forked Node child with IPC, request/response and a guaranteed end: `stop()` asks it to
 * exit and SIGKILLs it after a grace period; the harness SIGKILLs whatever is left on exit.
 */
export class Child {
  readonly proc: ChildProcess
  readonly name: string
  #nextId = 1
  #pending = new Map<number, { resolve: (msg: ChildMessage) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>()
  #listeners = new Set<(msg: ChildMessage) => void>()
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  #stderr = ''

  constructor(script: string, options: { name: string; execArgv?: string[]; env?: Record<string, string> }) {
    this.name = options.name
    const { file, execArgv } = childScript(script)
    this.proc = fork(file, [], {
      execArgv: [...execArgv, ...(options.execArgv ?? [])],
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      serialization: 'advanced',
    })
    live.add(this.proc)
    // A send to a child that just died is reported through the callback of send().
    this.proc.on('error', () => {})
    this.proc.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-4000)
      if (process.env.BENCH_VERBOSE) process.stderr.write(`[${this.name}] ${chunk}`)
    })
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        live.delete(this.proc)
        for (const [, waiter] of this.#pending) {
          clearTimeout(waiter.timer)
          waiter.reject(new Error(`${this.name} exited (${signal ?? code}) before answering${this.#stderr ? `:\n${this.#stderr}` : ''}`))
        }
        this.#pending.clear()
        resolve({ code, signal })
      })
    })
    this.proc.on('message', (raw) => {
      const msg = raw as ChildMessage
      if (typeof msg.re === 'number') {
        const waiter = this.#pending.get(msg.re)
        if (!waiter) return
        this.#pending.delete(msg.re)
        clearTimeout(waiter.timer)
        if (msg.error) waiter.reject(new Error(`${this.name}: ${msg.error}`))
        else waiter.resolve(msg)
        return
      }
      for (const listener of [...this.#listeners]) listener(msg)
    })
  }

  get stderr(): string {
    return this.#stderr
  }

  /** Sends a command and waits for the answer carrying its id. */
  request<T extends object = ChildMessage>(message: Record<string, unknown>, timeoutMs = 60_000): Promise<T> {
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`${this.name}: no answer to ${String(message.cmd)} in ${timeoutMs} ms`))
      }, timeoutMs)
      if (!this.alive || !this.proc.connected) {
        clearTimeout(timer)
        reject(new Error(`${this.name} is not running (asked ${String(message.cmd)})${this.#stderr ? `:\n${this.#stderr}` : ''}`))
        return
      }
      this.#pending.set(id, { resolve: resolve as (msg: ChildMessage) => void, reject, timer })
      this.proc.send({ ...message, id }, (err) => {
        if (!err) return
        this.#pending.delete(id)
        clearTimeout(timer)
        reject(new Error(`${this.name}: could not send ${String(message.cmd)}: ${err.message}`))
      })
    })
  }

  /** Waits for the next unsolicited message of `type`. */
  next<T extends object = ChildMessage>(type: string, timeoutMs = 30_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        off()
        reject(new Error(`${this.name}: no '${type}' in ${timeoutMs} ms${this.#stderr ? `:\n${this.#stderr}` : ''}`))
      }, timeoutMs)
      const onExit = () => {
        off()
        reject(new Error(`${this.name} exited before '${type}'${this.#stderr ? `:\n${this.#stderr}` : ''}`))
      }
      const listener = (msg: ChildMessage) => {
        if (msg.type !== type) return
        off()
        resolve(msg as T)
      }
      const off = () => {
        clearTimeout(timer)
        this.#listeners.delete(listener)
        this.proc.off('exit', onExit)
      }
      this.#listeners.add(listener)
      this.proc.once('exit', onExit)
    })
  }

  /** Listens to every unsolicited message. */
  on(listener: (msg: ChildMessage) => void): () => void {
    this.#listeners.add(listener)
    return () => void this.#listeners.delete(listener)
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null
  }

  /** A crash: SIGKILL, resolved once the process is gone. */
  async kill(): Promise<void> {
    if (this.alive) this.proc.kill('SIGKILL')
    await this.exited
  }

  /** Asks the child to exit cleanly; SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.alive) return
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs)
    try {
      this.proc.send({ cmd: 'exit' })
    } catch {
      this.proc.kill('SIGKILL')
    }
    await this.exited
    clearTimeout(timer)
  }
}

/** Runs `fn` with children it registers, and stops every one of them afterwards, even on failure. */
export async function withChildren<T>(fn: (own: (child: Child) => Child) => Promise<T>): Promise<T> {
  const owned: Child[] = []
  try {
    return await fn((child) => {
      owned.push(child)
      return child
    })
  } finally {
    await Promise.all(owned.map((child) => child.stop(3000).catch(() => child.kill())))
  }
}

/** Child side: answers requests with `handler`, and exits on `{ cmd: 'exit' }`. */
export function serveRequests(handler: (msg: Record<string, unknown>) => Promise<Record<string, unknown>> | Record<string, unknown>, onExit?: () => Promise<void> | void): void {
  process.on('message', (raw) => {
    const msg = raw as Record<string, unknown> & { id?: number; cmd?: string }
    if (msg.cmd === 'exit') {
      void Promise.resolve(onExit?.())
        .catch(() => {})
        .finally(() => process.exit(0))
      return
    }
    Promise.resolve()
      .then(() => handler(msg))
      .then(
        (answer) => process.send?.({ ...answer, re: msg.id }),
        (err: unknown) => process.send?.({ re: msg.id, error: err instanceof Error ? err.stack ?? err.message : String(err) }),
      )
  })
}
