import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { metrics } from '@opentelemetry/api'
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics'
import { MemoryLinkStore } from '@session-socket/node'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { INSTRUMENTS } from '../src/telemetry.js'
import { rawRegister } from './helpers/raw-client.js'

// No SDK is registered when this file starts: @opentelemetry/api is installed, its globals are
// the no-op ones, as in an app that has not set OpenTelemetry up.
const servers: TestServer[] = []

afterEach(async () => {
  for (const server of servers.splice(0)) await server.close()
})

afterAll(() => metrics.disable())

async function registers(reader: PeriodicExportingMetricReader, exporter: InMemoryMetricExporter): Promise<number> {
  exporter.reset()
  await reader.forceFlush()
  const metric = exporter.getMetrics().at(-1)?.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === INSTRUMENTS.registers.name)
  return (metric?.dataPoints ?? []).reduce((sum, point) => sum + (point.value as number), 0)
}

describe('startTelemetry', () => {
  it('should leave the link store as given when no SDK is registered (nothing wraps the hot path)', async () => {
    const links = new MemoryLinkStore()
    const server = await startTestServer({ links })
    servers.push(server)
    expect(server.ss.store).toBe(links)
    const tab = await rawRegister(server.url, { token: null, tabId: 'plain' })
    tab.close()
    expect(tab.reply.restored).toBe(false)
  })

  it('should record only for servers created after the SDK was registered (the metrics API has no late binding)', async () => {
    const early = await startTestServer()
    servers.push(early)
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000, exportTimeoutMillis: 10_000 })
    const provider = new MeterProvider({ readers: [reader] })
    metrics.setGlobalMeterProvider(provider)
    try {
      const before = await rawRegister(early.url, { token: null, tabId: 'early' })
      before.close()
      expect(await registers(reader, exporter)).toBe(0)
      const late = await startTestServer()
      servers.push(late)
      const after = await rawRegister(late.url, { token: null, tabId: 'late' })
      after.close()
      expect(await registers(reader, exporter)).toBe(1)
    } finally {
      await provider.shutdown()
    }
  })
})
