import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { metrics } from '@opentelemetry/api'
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import { ConfigError, type DemoConfig } from './config.js'

/** The running /metrics listener. */
export interface MetricsEndpoint {
  /** http://host:port/metrics */
  url: string
  /** Stops the listener and the meter provider. */
  close(): Promise<void>
}

/**
 * Registers an OpenTelemetry MeterProvider whose reader is the Prometheus exporter, and serves
 * its text format at `/metrics` on `config.metricsPort`, a listener of its own: scrapes stay
 * off the app's public origin (no Origin check, cookie or session involved, and a firewall can
 * keep the port internal), and the app's routes stay as they are. Call it before the
 * session-socket server is created: instruments taken before a provider is registered record
 * nothing.
 *
 * @example
 * const endpoint = await startMetrics(config)   // then createDemoServer(config, stores)
 * console.log(`metrics on ${endpoint.url}`)
 */
export async function startMetrics(config: DemoConfig): Promise<MetricsEndpoint> {
  // The exporter's own server cannot listen on port 0 (it takes 0 for "unset"): serve its handler.
  const exporter = new PrometheusExporter({ preventServerStart: true })
  const provider = new MeterProvider({ readers: [exporter] })
  metrics.setGlobalMeterProvider(provider)
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && (req.url ?? '').split('?')[0] === '/metrics') return exporter.getMetricsRequestHandler(req, res)
    res.statusCode = 404
    res.end('not found: metrics are at /metrics\n')
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new ConfigError(`METRICS_PORT ${config.metricsPort} on ${config.host} is already in use; set METRICS_PORT to a free port`) : err),
    )
    server.listen(config.metricsPort, config.host, () => resolve())
  })
  const { address, port } = server.address() as AddressInfo
  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}/metrics`,
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await provider.shutdown()
      metrics.disable()
    },
  }
}
