/**
 * What a benchmark server has of OpenTelemetry, from the BENCH_OTEL env (inherited by every
 * child), to measure what session-socket's telemetry costs:
 * - `api` (default): @opentelemetry/api installed, no SDK: the repository as it is;
 * - `absent`: the API cannot be resolved, as in an app that never installed the optional peer;
 * - `metrics`: a MeterProvider read by the Prometheus exporter (no scrape during the run: the
 *   recording cost only), no tracing;
 * - `context`: that, and an AsyncLocalStorage entered once, no tracing: what every promise of the
 *   process pays once OpenTelemetry's Node context manager is in use, whoever makes the spans;
 * - `sdk`: `metrics`, and a tracer provider (AsyncLocalStorage context) that samples every call span
 *   and batches it to an exporter that drops it.
 * Call it before the built package creates its server.
 */
import Module from 'node:module'

export type TelemetryMode = 'absent' | 'api' | 'metrics' | 'context' | 'sdk'

export async function setUpTelemetry(mode = (process.env.BENCH_OTEL ?? 'api') as TelemetryMode): Promise<void> {
  if (mode === 'api') return
  if (mode === 'absent') {
    // The package finds the API with require(); make that fail as a missing package does.
    const resolver = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string }
    const resolve = resolver._resolveFilename
    resolver._resolveFilename = function (request: string, ...rest: unknown[]) {
      if (request === '@opentelemetry/api') throw Object.assign(new Error(`Cannot find module '${request}'`), { code: 'MODULE_NOT_FOUND' })
      return resolve.call(this, request, ...rest)
    }
    return
  }
  if (mode !== 'metrics' && mode !== 'context' && mode !== 'sdk') throw new Error(`BENCH_OTEL must be absent, api, metrics, context or sdk (got '${mode}')`)
  const [{ metrics }, { MeterProvider }, { PrometheusExporter }, { BatchSpanProcessor }, { NodeTracerProvider }] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-metrics'),
    import('@opentelemetry/exporter-prometheus'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/sdk-trace-node'),
  ])
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new PrometheusExporter({ preventServerStart: true })] }))
  if (mode === 'metrics') return
  if (mode === 'context') {
    const { AsyncLocalStorage } = await import('node:async_hooks')
    new AsyncLocalStorage().enterWith(true)
    return
  }
  const dropping = { export: (_spans: unknown, done: (result: { code: number }) => void) => done({ code: 0 }), shutdown: async () => {} }
  new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropping)] }).register()
}
