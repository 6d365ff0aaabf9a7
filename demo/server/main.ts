import { performance } from 'node:perf_hooks'
import { createDemoServer, type DemoServer } from './app.js'
import { ConfigError, readConfig, type DemoConfig } from './config.js'
import type { MetricsEndpoint } from './metrics.js'
import { openStores, type DemoStores } from './stores.js'

/*
 * The demo's entry point: read the environment, open the stores, listen. One line per
 * problem the user can fix (port taken, data folder not writable, Redis unreachable), exit 1.
 */

let stores: DemoStores | undefined
let server: DemoServer | undefined
let metricsEndpoint: MetricsEndpoint | undefined
let stopping = false

function fail(err: unknown): void {
  if (err instanceof ConfigError) console.error(`demo: ${err.message}`)
  else console.error('demo: failed to start:', err)
  process.exitCode = 1
  void stores?.close().catch(() => undefined)
  void metricsEndpoint?.close().catch(() => undefined)
}

async function stop(signal: NodeJS.Signals, config: DemoConfig): Promise<void> {
  if (stopping) {
    console.error(`demo: ${signal} again, exiting now`)
    process.exit(1)
  }
  stopping = true
  const started = performance.now()
  console.log(`demo: ${signal}: shutting down`)
  const bound = setTimeout(() => {
    console.error(`demo: shutdown took longer than ${config.shutdownTimeout} ms, exiting anyway`)
    process.exit(1)
  }, config.shutdownTimeout)
  bound.unref()
  try {
    await server?.close()
    await stores?.close()
    await metricsEndpoint?.close()
  } catch (err) {
    console.error('demo: shutdown failed:', err)
    process.exit(1)
  }
  console.log(`demo: stopped in ${Math.round(performance.now() - started)} ms`)
  process.exit(0)
}

async function main(): Promise<void> {
  const started = performance.now()
  const config = readConfig()
  if (config.devSecret) {
    console.warn(
      [
        '',
        '  !!! demo: SESSION_SECRETS is not set: session cookies are signed with a PUBLIC development secret.',
        '  !!! Anyone can forge them. Set SESSION_SECRETS=<new secret>[,<previous secret>...] before exposing this server.',
        '',
      ].join('\n'),
    )
  }
  // Loaded only when asked for (the SDK adds a few hundred ms to start-up), and before the
  // session-socket server exists: its instruments bind to the provider registered then.
  if (config.metrics) metricsEndpoint = await (await import('./metrics.js')).startMetrics(config)
  stores = await openStores(config)
  server = createDemoServer(config, stores)
  const url = await server.listen()
  if (metricsEndpoint) console.log(`demo: metrics on ${metricsEndpoint.url}`)
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void stop(signal, config))
  console.log(`demo: listening on ${url} (${stores.description}${config.test ? ', SS_TEST=1' : ''}) after ${Math.round(performance.now() - started)} ms`)
}

main().catch(fail)
