import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'

/** A redis-server child process on a free loopback port, owned by one test file. */
export interface RedisServer {
  url: string
  port: number
  /** True from start until the process exits (stopped, killed or crashed). */
  readonly running: boolean
  /** SIGTERM, then waits for the process to exit (SIGKILL after 5 s). */
  stop(): Promise<void>
  /** SIGKILL, without waiting: a crash. */
  kill(): void
  /** Starts the server again on the same port with the same arguments. */
  restart(): Promise<void>
  /** SIGSTOP: the connection stays open but nothing answers. */
  pause(): void
  /** SIGCONT after `pause`. */
  resume(): void
}

export interface StartRedisOptions {
  /**
   * Extra redis-server arguments, e.g. `['--appendonly', 'yes', '--dir', tmp]`; later ones win.
   * @default []
   */
  args?: string[]
  /** A port known to be free (e.g. from `freePort`). @default a free loopback port */
  port?: number
}

const REDIS_SERVER = '/usr/bin/redis-server'

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port)
        else reject(new Error('no port'))
      })
    })
  })
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/**
 * Spawns `/usr/bin/redis-server` on a free loopback port without persistence (unless `args`
 * says otherwise) and resolves once it says it accepts connections. Call `stop()` in afterAll; the process is
 * also SIGKILLed when the test worker exits, in case afterAll never ran.
 *
 * @example
 * let redis: RedisServer
 * beforeAll(async () => { redis = await startRedis() })
 * afterAll(async () => { await redis?.stop() })
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort())
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...(options.args ?? [])]
  let child: ChildProcess | undefined
  let log = ''

  const killOnExit = () => child?.kill('SIGKILL')
  process.once('exit', killOnExit)

  async function launch(): Promise<void> {
    log = ''
    const proc = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    child = proc
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no "Ready to accept connections" within 5 s')), 5000)
      proc.once('exit', (code, signal) => reject(new Error(`exited (${signal ?? code}) before it was ready`)))
      const onOutput = (chunk: Buffer) => {
        log = (log + chunk.toString()).slice(-4000)
        // Printed once the port is open and any append-only file is loaded.
        if (!log.includes('Ready to accept connections')) return
        clearTimeout(timer)
        resolve()
      }
      proc.stdout?.on('data', onOutput)
      proc.stderr?.on('data', onOutput)
    })
    try {
      await ready
    } catch (err) {
      proc.kill('SIGKILL')
      await exited(proc)
      throw new Error(`redis-server on port ${port}: ${(err as Error).message}:\n${log}`)
    }
  }

  async function stop(): Promise<void> {
    const proc = child
    if (!proc) return
    if (proc.exitCode === null && proc.signalCode === null) {
      // A paused server would never handle SIGTERM.
      proc.kill('SIGCONT')
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
      await exited(proc)
      clearTimeout(timer)
    }
  }

  await launch()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null
    },
    async stop() {
      await stop()
      process.off('exit', killOnExit)
    },
    kill() {
      child?.kill('SIGKILL')
    },
    async restart() {
      await stop()
      await launch()
    },
    pause() {
      child?.kill('SIGSTOP')
    },
    resume() {
      child?.kill('SIGCONT')
    },
  }
}
