import net from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createSessionSocket, memoryTabIdStorage, memoryTokenStorage, type SessionSocket } from '@session-socket/browser'
import type { DemoMethods } from '../server/api-types.js'
import { createDemoServer, type DemoServer } from '../server/app.js'
import { ConfigError, readConfig } from '../server/config.js'
import { startMetrics, type MetricsEndpoint } from '../server/metrics.js'
import { openStores, type DemoStores } from '../server/stores.js'

let dataDir: string | undefined
let stores: DemoStores | undefined
let server: DemoServer | undefined
let endpoint: MetricsEndpoint | undefined
let client: SessionSocket<DemoMethods> | undefined
let blocker: net.Server | undefined

afterEach(async () => {
  client?.close()
  await server?.close()
  await stores?.close()
  await endpoint?.close()
  if (blocker) await new Promise((resolve) => blocker!.close(resolve))
  if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  client = server = stores = endpoint = blocker = dataDir = undefined
})

const config = (env: Record<string, string> = {}) => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'ss-demo-metrics-'))
  return readConfig({ DATA_DIR: dataDir, PORT: '0', SESSION_SECRETS: 'test-secret', METRICS: '1', METRICS_PORT: '0', ...env })
}

describe('startMetrics', () => {
  it("should serve session-socket's counters and call durations in Prometheus text format at /metrics", async () => {
    const demoConfig = config()
    endpoint = await startMetrics(demoConfig)
    stores = await openStores(demoConfig)
    server = createDemoServer(demoConfig, stores)
    const url = await server.listen()
    client = createSessionSocket<DemoMethods>({ url, tokenStorage: memoryTokenStorage(), tabIdStorage: memoryTabIdStorage(), page: null, locks: null, socketOptions: { transports: ['websocket'] } })
    await client.call('app.state')
    const response = await fetch(endpoint.url)
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/)
    const text = await response.text()
    expect(text).toContain('# TYPE session_socket_server_registers_total counter')
    expect(text).toMatch(/^session_socket_server_registers_total\{[^}]*session_socket_register_outcome="not-restored",session_socket_register_reason="no-token",session_socket_transport="websocket"[^}]*\} 1$/m)
    expect(text).toMatch(/^rpc_server_call_duration_count\{[^}]*rpc_method="app\.state",rpc_response_status_code="OK"[^}]*\} 1$/m)
    expect(text).toMatch(/^session_socket_server_active_tabs\{[^}]*\} 1$/m)
  })

  it('should answer 404 off /metrics', async () => {
    endpoint = await startMetrics(config())
    expect((await fetch(endpoint.url.replace('/metrics', '/'))).status).toBe(404)
  })

  it('should refuse a METRICS_PORT that is taken, with the variable in the message', async () => {
    blocker = net.createServer()
    await new Promise<void>((resolve) => blocker!.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as net.AddressInfo).port
    const taken = startMetrics(config({ METRICS_PORT: String(port) }))
    await expect(taken).rejects.toThrow(ConfigError)
    await expect(taken).rejects.toThrow(`METRICS_PORT ${port} on 127.0.0.1 is already in use`)
  })
})
