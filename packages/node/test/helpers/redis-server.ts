import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'

/** A redis-server child process on a free loopback port, owned by one test file. */
export interface RedisServer {
  url: string
  port: number
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
}

const REDIS_SERVER = '/usr/bin/redis-server'

async function freePort(): Promise<number> {
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

/** Sends one inline PING; true when the answer is +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' })
    let answer = ''
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => {
      answer += chunk.toString()
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'))
    })
  })
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/**
 * Spawns `/usr/bin/redis-server` on a free loopback port without persistence (unless `args`
 * says otherwise) and resolves once it answers PING. Call `stop()` in afterAll; the process is
 * also SIGKILLed when the test worker exits, in case afterAll never ran.
 *
 * @example
 * let redis: RedisServer
 * beforeAll(async () => { redis = await startRedis() })
 * afterAll(async () => { await redis?.stop() })
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const port = await freePort()
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...(options.args ?? [])]
  let child: ChildProcess | undefined
  let log = ''

  const killOnExit = () => child?.kill('SIGKILL')
  process.once('exit', killOnExit)

  async function launch(): Promise<void> {
    log = ''
    const proc = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    child = proc
    proc.stdout?.on('data', (chunk: Buffer) => {
      log = (log + chunk.toString()).slice(-4000)
    })
    proc.stderr?.on('data', (chunk: Buffer) => {
      log = (log + chunk.toString()).slice(-4000)
    })
    const deadline = Date.now() + 5000
    for (let attempt = 0; attempt < 100 && Date.now() < deadline; attempt++) {
      if (proc.exitCode !== null || proc.signalCode !== null) break
      if (await ping(port)) return
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    proc.kill('SIGKILL')
    await exited(proc)
    throw new Error(`redis-server on port ${port} did not answer PING:\n${log}`)
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
