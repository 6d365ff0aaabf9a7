import { expect, test } from '@playwright/test'
import { disposeDemos, startDemo, type DemoProcess } from './helpers/demo-process.js'

// The built demo with METRICS=1: what a Prometheus scrape sees after real page loads.

let demo: DemoProcess | undefined

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
  demo = undefined
  await disposeDemos()
})

/** The value of the register counter's series with these labels (0 when it has none yet). */
function registers(text: string, outcome: string, reason: string): number {
  const line = text
    .split('\n')
    .find((l) => l.startsWith('session_socket_server_registers_total{') && l.includes(`session_socket_register_outcome="${outcome}"`) && l.includes(`session_socket_register_reason="${reason}"`))
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0
}

test('should count the register of a page load, and the restored one of a reload, at /metrics', async ({ page }) => {
  demo = await startDemo({ env: { METRICS: '1', METRICS_PORT: '0' } })
  const metricsUrl = /demo: metrics on (http:\/\/\S+)/.exec(demo.output())?.[1]
  expect(metricsUrl, demo.output()).toBeDefined()
  const scrape = async () => (await fetch(metricsUrl!)).text()
  expect(registers(await scrape(), 'not-restored', 'no-token')).toBe(0)

  await page.goto(demo.url)
  await expect(page.getByTestId('status')).toHaveText('ready')
  expect(registers(await scrape(), 'not-restored', 'no-token')).toBe(1)

  await page.reload()
  await expect(page.getByTestId('status')).toHaveText('ready')
  await expect.poll(async () => registers(await scrape(), 'restored', 'restored')).toBe(1)
  expect(await scrape()).toContain('# TYPE rpc_server_call_duration histogram')
  // The reloaded page's old socket is gone once the server has seen it close.
  await expect.poll(scrape).toMatch(/^session_socket_server_active_tabs\{[^}]*\} 1$/m)
})
