import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** Everything the demo reads from its environment, checked once at start-up. */
export interface DemoConfig {
  host: string
  port: number
  /** Folder of the SQLite files (embedded stores). */
  dataDir: string
  /** Set: sessions and links live in Redis, and Socket.IO uses the Redis adapter. */
  redisUrl: string | undefined
  /** First signs, all verify: rotate by prepending a new one. */
  secrets: string[]
  /** True when SESSION_SECRETS was not set and the public development secret is in use. */
  devSecret: boolean
  /** SS_TEST=1: test-only routes and methods, and short lifetimes from the environment. */
  test: boolean
  /** Session cookie lifetime (ms). */
  sessionMaxAge: number
  /** How often live sessions are checked for expiry (ms). */
  sessionCheckInterval: number
  /** Least time between two expiry resets of a session by RPC calls (ms). */
  touchInterval: number
  /** Longest a clean shutdown may take before the process exits anyway (ms). */
  shutdownTimeout: number
  /** A new link token at every register (session-socket's `rotation: true`). */
  tokenRotation: boolean
  /**
   * Pages are told to use the WebSocket transport only: nodes behind one address need it
   * unless the balancer is sticky (docs/scaling.md). On by default in Redis mode.
   */
  websocketOnly: boolean
  /** Socket.IO heartbeat (ms); undefined: Socket.IO's defaults (25 s, 20 s). SS_TEST only. */
  pingInterval: number | undefined
  pingTimeout: number | undefined
  /** Built front end (Vite output). */
  publicDir: string
  /** METRICS=1: session-socket's OpenTelemetry metrics in Prometheus text format at /metrics on `metricsPort`. */
  metrics: boolean
  /** Port of the /metrics listener (on `host`); 0 picks a free one. @default 9464, the Prometheus exporter's own */
  metricsPort: number
}

/** A start-up problem the user can fix: printed as one line, exit code 1. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

const here = path.dirname(fileURLToPath(import.meta.url))
/** demo/, from demo/dist/server. */
export const DEMO_ROOT = path.resolve(here, '../..')

const DEV_SECRET = 'session-socket demo: development secret, set SESSION_SECRETS'
const DAY = 24 * 60 * 60 * 1000

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max} (got '${raw}')`)
  }
  return value
}

function flag(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (raw === '1') return true
  if (raw === '0') return false
  throw new ConfigError(`${name} must be 1 or 0 (got '${raw}')`)
}

/** Reads the configuration; throws ConfigError with the fix in the message. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): DemoConfig {
  const test = env.SS_TEST === '1'
  const secrets = (env.SESSION_SECRETS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
  const devSecret = secrets.length === 0
  if (devSecret) secrets.push(DEV_SECRET)
  // The short lifetimes are for expiry tests only: in a real run they would end sessions early.
  const sessionMaxAge = test ? integer(env, 'SESSION_MAX_AGE_MS', 14 * DAY, 100, 365 * DAY) : 14 * DAY
  const sessionCheckInterval = test ? integer(env, 'SESSION_CHECK_INTERVAL_MS', 60_000, 50, DAY) : 60_000
  const touchInterval = test ? integer(env, 'SESSION_TOUCH_INTERVAL_MS', 60_000, 0, DAY) : 60_000
  // A short heartbeat finds a silent network drop in seconds (network-loss tests); in a real
  // run it would only cost traffic and battery.
  const ping = (name: string) => (test && env[name] ? integer(env, name, 0, 50, 600_000) : undefined)
  const redisUrl = env.REDIS_URL || undefined
  return {
    host: env.HOST || '127.0.0.1',
    port: integer(env, 'PORT', 3000, 0, 65535),
    dataDir: path.resolve(env.DATA_DIR || path.join(DEMO_ROOT, '.data')),
    redisUrl,
    secrets,
    devSecret,
    test,
    sessionMaxAge,
    sessionCheckInterval,
    touchInterval,
    shutdownTimeout: integer(env, 'SHUTDOWN_TIMEOUT_MS', 5_000, 100, 60_000),
    tokenRotation: flag(env, 'TOKEN_ROTATION', false),
    websocketOnly: flag(env, 'WEBSOCKET_ONLY', redisUrl !== undefined),
    pingInterval: ping('SS_PING_INTERVAL_MS'),
    pingTimeout: ping('SS_PING_TIMEOUT_MS'),
    publicDir: path.join(DEMO_ROOT, 'dist/public'),
    metrics: flag(env, 'METRICS', false),
    metricsPort: integer(env, 'METRICS_PORT', 9464, 0, 65535),
  }
}
