import { disposeDemos, startDemo, type DemoProcess } from '../helpers/demo-process.js'
import { PAGES, startBundleServer, type BundleServer } from '../helpers/bundle-server.js'
import { click, openDemoTab, tabIdOf, waitText, whoami } from '../engines/demo-tab.js'
import { expect, test } from '../engines/engine-test.js'

// The SDK as a page gets it, in every engine: the demo's React page (the hook) and its plain
// <script> page, and the two built bundles loaded bare (classic <script>, ES module).

let demo: DemoProcess | undefined
let server: BundleServer | undefined

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
  demo = undefined
  await disposeDemos()
  await server?.close()
  server = undefined
})

for (const [name, path] of [
  ['the React hook page', '/'],
  ['the <script> page', '/plain.html'],
] as const) {
  test(`${name} of the demo should reach ready and count a call over the socket`, async ({ profile }) => {
    demo = await startDemo()
    const page = await openDemoTab(profile, demo.url + path)
    const tabId = await tabIdOf(page)
    expect(await whoami(page)).toMatchObject({ tabId })
    await waitText(page, 'counter', '0')
    await click(page, 'counter-rpc')
    await waitText(page, 'counter', '1')
  })
}

for (const bundle of Object.keys(PAGES) as (keyof typeof PAGES)[]) {
  test(`the built ${bundle} bundle should reach ready, store its token in IndexedDB and answer calls, with no warning`, async ({ profile }) => {
    server = await startBundleServer()
    const page = await profile.newPage()
    await page.goto(`${server.url}/${bundle}.html`)
    await page.waitFor(() => (window as unknown as { client?: { status: string } }).client?.status === 'ready', undefined, { message: 'client ready' })
    const me = await page.evaluate(() => (window as unknown as { client: { call(m: string): Promise<{ tabId: string }> } }).client.call('whoami'))
    expect(me.tabId).toBe(await page.evaluate(() => (window as unknown as { client: { tabId: string } }).client.tabId))
    expect(await page.evaluate(() => (window as unknown as { tokens: { get(): Promise<string | null> } }).tokens.get())).toMatch(/^[A-Za-z0-9_-]{32,}$/)
    expect(await page.evaluate(() => (window as unknown as { logs: { level: string }[] }).logs.filter((line) => line.level === 'warn'))).toEqual([])
  })
}
