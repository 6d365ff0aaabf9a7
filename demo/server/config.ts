import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { TrustProxy } from '@session-socket/node'

/** Everything the demo reads from its environment, checked once at start-up. */
export interface DemoConfig {
  host: string
  port: number
  /** Folder of the SQLite files (embedded stores). */
  dataDir: string
  /** Set: sessions and links live in Redis, and Socket.IO uses the Redis adapter. */
  redisUrl: string | undefined
  /**
   * Set (REDIS_CLUSTER, `host:port,host:port…`): the same on Redis Cluster, these nodes being
   * where the topology is first read from; Socket.IO uses the sharded adapter.
   */
  redisCluster: Array<{ host: string; port: number }> | undefined
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
   * unless the balancer is sticky (docs/scaling.md). On by default with Redis or Redis Cluster.
   */
  websocketOnly: boolean
  /** Socket.IO heartbeat (ms); undefined: Socket.IO's defaults (25 s, 20 s). SS_TEST only. */
  pingInterval: number | undefined
  pingTimeout: number | undefined
  /** Built front end (Vite output). */
  publicDir: string
  /**
   * The reverse proxies trusted for the client address (per-address rate limits) and the
   * host the browser asked for (Origin checks): session-socket's `trustProxy` and Express's
   * `trust proxy`. False: forwarded headers are ignored.
   */
  trustProxy: TrustProxy
  /** Name of the session cookie. A deploy that renames it keeps every tab in its session (through its token). */
  sessionCookieName: string
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

function cookieName(env: NodeJS.ProcessEnv): string {
  const raw = env.SESSION_COOKIE_NAME || 'demo.sid'
  if (!COOKIE_NAME.test(raw)) throw new ConfigError(`SESSION_COOKIE_NAME must be a cookie name: letters, digits and !#$%&'*+-.^_\`|~ (got '${raw}')`)
  return raw
}

function flag(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (raw === '1') return true
  if (raw === '0') return false
  throw new ConfigError(`${name} must be 1 or 0 (got '${raw}')`)
}

/** REDIS_CLUSTER: `host:port` entries, comma-separated. */
function clusterNodes(raw: string | undefined): Array<{ host: string; port: number }> | undefined {
  if (raw === undefined || raw.trim() === '') return undefined
  const nodes = raw
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0)
    .map((entry) => {
      const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(entry)
      const port = Number(match?.[2])
      if (!match || !Number.isInteger(port) || port < 1 || port > 65535) {
        throw new ConfigError(`REDIS_CLUSTER must list host:port entries separated by commas, e.g. 10.0.0.1:7000,10.0.0.2:7000 (got '${entry}')`)
      }
      return { host: match[1]!.replace(/^\[|\]$/g, ''), port }
    })
  if (nodes.length === 0) throw new ConfigError(`REDIS_CLUSTER must list at least one host:port (got '${raw}')`)
  return nodes
}

/** RFC 6265 cookie-name characters (a token): what express-session's cookie serializer accepts. */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/**
 * TRUST_PROXY as Express reads `trust proxy`: unset, `0` or `false` trust no one; `true`
 * every hop; an integer the number of hops; anything else a comma-separated list of addresses,
 * subnets or `loopback` / `linklocal` / `uniquelocal`.
 */
function trustProxy(env: NodeJS.ProcessEnv): TrustProxy {
  const raw = (env.TRUST_PROXY ?? '').trim()
  if (raw === '' || raw === '0' || raw === 'false') return false
  if (raw === 'true') return true
  if (/^\d+$/.test(raw)) return Number(raw)
  const list = raw.split(',').map((item) => item.trim())
  const address = /^(loopback|linklocal|uniquelocal|[0-9a-fA-F.:]+(\/\d+)?)$/
  const bad = list.find((item) => !address.test(item))
  if (bad !== undefined) {
    throw new ConfigError(`TRUST_PROXY must be true, a number of hops, or addresses/subnets such as 'loopback' or '10.0.0.0/8,fd00::/8' (got '${bad}')`)
  }
  return list
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
  const redisCluster = clusterNodes(env.REDIS_CLUSTER)
  if (redisUrl !== undefined && redisCluster !== undefined) {
    throw new ConfigError('set REDIS_URL (one Redis) or REDIS_CLUSTER (Redis Cluster nodes), not both')
  }
  return {
    host: env.HOST || '127.0.0.1',
    port: integer(env, 'PORT', 3000, 0, 65535),
    dataDir: path.resolve(env.DATA_DIR || path.join(DEMO_ROOT, '.data')),
    redisUrl,
    redisCluster,
    secrets,
    devSecret,
    test,
    sessionMaxAge,
    sessionCheckInterval,
    touchInterval,
    shutdownTimeout: integer(env, 'SHUTDOWN_TIMEOUT_MS', 5_000, 100, 60_000),
    tokenRotation: flag(env, 'TOKEN_ROTATION', false),
    websocketOnly: flag(env, 'WEBSOCKET_ONLY', redisUrl !== undefined || redisCluster !== undefined),
    pingInterval: ping('SS_PING_INTERVAL_MS'),
    pingTimeout: ping('SS_PING_TIMEOUT_MS'),
    publicDir: path.join(DEMO_ROOT, 'dist/public'),
    trustProxy: trustProxy(env),
    sessionCookieName: cookieName(env),
    metrics: flag(env, 'METRICS', false),
    metricsPort: integer(env, 'METRICS_PORT', 9464, 0, 65535),
  }
}
