import { Child } from './processes.js'
import type { ServerConfig } from '../server.js'

export interface RunningServer {
  child: Child
  port: number
  url: string
  /** Epoch ms at which it listened. */
  listeningAt: number
  /** process.cpuUsage() of the child (µs) at listening. */
  cpuAtListening: { user: number; system: number }
}

export interface StartOptions {
  /** --expose-gc, for heap figures. */
  gc?: boolean
  /** Folder for --cpu-prof output (written on clean exit only). */
  cpuProfDir?: string
  name?: string
}

/** Starts bench/server.ts in a child and waits until it listens. */
export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const execArgv: string[] = []
  if (options.gc) execArgv.push('--expose-gc')
  if (options.cpuProfDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`)
  const child = new Child('server.ts', {
    name: options.name ?? `server(${config.side},${config.store})`,
    execArgv,
    // A profiled server exits without closing its sockets, so the profile ends with the figure.
    env: { BENCH_SERVER: JSON.stringify(config), ...(options.cpuProfDir ? { BENCH_FAST_EXIT: '1' } : {}) },
  })
  try {
    const msg = await child.next<{ port: number; at: number; cpu: { user: number; system: number } }>('listening', 30_000)
    return { child, port: msg.port, url: `http://127.0.0.1:${msg.port}`, listeningAt: msg.at, cpuAtListening: msg.cpu }
  } catch (err) {
    await child.kill()
    throw err
  }
}

/** Starts a server in standby (set up, not listening); `listen()` makes it listen. */
export async function prepareServer(config: ServerConfig, options: StartOptions = {}): Promise<{ child: Child; listen(): Promise<RunningServer> }> {
  const execArgv: string[] = []
  if (options.cpuProfDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`)
  const child = new Child('server.ts', {
    name: options.name ?? `standby(${config.side},${config.store})`,
    execArgv,
    env: { BENCH_SERVER: JSON.stringify({ ...config, standby: true }), ...(options.cpuProfDir ? { BENCH_FAST_EXIT: '1' } : {}) },
  })
  try {
    await child.next('prepared', 30_000)
  } catch (err) {
    await child.kill()
    throw err
  }
  return {
    child,
    async listen() {
      const msg = await child.request<{ port: number; at: number; cpu: { user: number; system: number } }>({ cmd: 'listen' }, 10_000)
      return { child, port: msg.port, url: `http://127.0.0.1:${msg.port}`, listeningAt: msg.at, cpuAtListening: msg.cpu }
    },
  }
}

/** Starts a load process and waits until it is up. */
export async function startLoad(name: string): Promise<Child> {
  const child = new Child('load.ts', { name })
  try {
    await child.next('up', 30_000)
    return child
  } catch (err) {
    await child.kill()
    throw err
  }
}
