import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigError, DEMO_ROOT, readConfig } from '../server/config.js'

describe('readConfig', () => {
  it('should default to 127.0.0.1:3000, demo/.data and the development secret', () => {
    const config = readConfig({})
    expect(config).toMatchObject({ host: '127.0.0.1', port: 3000, redisUrl: undefined, devSecret: true, test: false })
    expect(config.dataDir).toBe(path.join(DEMO_ROOT, '.data'))
    expect(config.secrets).toHaveLength(1)
  })

  it('should read SESSION_SECRETS as a comma-separated list, first one first', () => {
    const config = readConfig({ SESSION_SECRETS: ' new , old ,,' })
    expect(config.secrets).toEqual(['new', 'old'])
    expect(config.devSecret).toBe(false)
  })

  it('should take short lifetimes from the environment only with SS_TEST=1', () => {
    const env = { SESSION_MAX_AGE_MS: '2000', SESSION_CHECK_INTERVAL_MS: '100', SESSION_TOUCH_INTERVAL_MS: '50' }
    expect(readConfig(env)).toMatchObject({ sessionMaxAge: 14 * 24 * 3600_000, sessionCheckInterval: 60_000, touchInterval: 60_000 })
    expect(readConfig({ ...env, SS_TEST: '1' })).toMatchObject({ test: true, sessionMaxAge: 2000, sessionCheckInterval: 100, touchInterval: 50 })
  })

  it('should refuse a PORT that is not a port, with the variable in the message', () => {
    expect(() => readConfig({ PORT: 'abc' })).toThrow(ConfigError)
    expect(() => readConfig({ PORT: '70000' })).toThrow("PORT must be an integer from 0 to 65535 (got '70000')")
  })

  it('should read TRUST_PROXY as Express reads trust proxy, and refuse what is not an address', () => {
    expect(readConfig({}).trustProxy).toBe(false)
    expect(readConfig({ TRUST_PROXY: '0' }).trustProxy).toBe(false)
    expect(readConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true)
    expect(readConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2)
    expect(readConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8' }).trustProxy).toEqual(['loopback', '10.0.0.0/8'])
    expect(() => readConfig({ TRUST_PROXY: 'my-proxy' })).toThrow("TRUST_PROXY must be true, a number of hops, or addresses/subnets such as 'loopback' or '10.0.0.0/8,fd00::/8' (got 'my-proxy')")
  })

  it('should read SESSION_COOKIE_NAME, demo.sid by default, and refuse what is not a cookie name', () => {
    expect(readConfig({}).sessionCookieName).toBe('demo.sid')
    expect(readConfig({ SESSION_COOKIE_NAME: 'app.session' }).sessionCookieName).toBe('app.session')
    expect(() => readConfig({ SESSION_COOKIE_NAME: 'a b' })).toThrow(/SESSION_COOKIE_NAME must be a cookie name/)
  })

  it('should serve no metrics unless METRICS=1, on port 9464 unless METRICS_PORT says', () => {
    expect(readConfig({})).toMatchObject({ metrics: false, metricsPort: 9464 })
    expect(readConfig({ METRICS: '1', METRICS_PORT: '0' })).toMatchObject({ metrics: true, metricsPort: 0 })
    expect(() => readConfig({ METRICS: 'yes' })).toThrow("METRICS must be 1 or 0 (got 'yes')")
  })

  it('should resolve DATA_DIR to an absolute path', () => {
    expect(readConfig({ DATA_DIR: 'some/where' }).dataDir).toBe(path.resolve('some/where'))
  })

  it('should read REDIS_CLUSTER as host:port entries, turn WebSocket-only on, and refuse it beside REDIS_URL', () => {
    const config = readConfig({ REDIS_CLUSTER: '10.0.0.1:7000, redis-b:7001,[::1]:7002' })
    expect(config.redisCluster).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: 'redis-b', port: 7001 },
      { host: '::1', port: 7002 },
    ])
    expect(config).toMatchObject({ redisUrl: undefined, websocketOnly: true })
    expect(() => readConfig({ REDIS_CLUSTER: '10.0.0.1' })).toThrow("REDIS_CLUSTER must list host:port entries separated by commas, e.g. 10.0.0.1:7000,10.0.0.2:7000 (got '10.0.0.1')")
    expect(() => readConfig({ REDIS_CLUSTER: 'a:0' })).toThrow(ConfigError)
    expect(() => readConfig({ REDIS_CLUSTER: ' , ' })).toThrow('REDIS_CLUSTER must list at least one host:port')
    expect(() => readConfig({ REDIS_CLUSTER: 'a:7000', REDIS_URL: 'redis://a:6379' })).toThrow('set REDIS_URL (one Redis) or REDIS_CLUSTER (Redis Cluster nodes), not both')
  })
})
