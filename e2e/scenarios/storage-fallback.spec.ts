import { PAGES, startBundleServer, type BundleServer } from '../helpers/bundle-server.js'
import { expect, test } from '../engines/engine-test.js'

// Where IndexedDB is missing or fails (a private window, blocked storage), the SDK keeps the
// link token in memory with one warning and still reaches ready, in every engine.

let server: BundleServer | undefined

test.afterEach(async () => {
  await server?.close()
  server = undefined
})

interface BundleWindow {
  client: { status: string; call(method: string): Promise<{ sessionId: string }> }
  tokens: { get(): Promise<string | null> }
  logs: { level: string; message: string }[]
}

for (const bundle of Object.keys(PAGES) as (keyof typeof PAGES)[]) {
  test(`the ${bundle} bundle should fall back to memory with one warning when IndexedDB throws, and still reach ready`, async ({ profile }) => {
    server = await startBundleServer()
    const page = await profile.newPage()
    await page.goto(`${server.url}/${bundle}.html?no-idb`)
    await page.waitFor(() => (window as unknown as Partial<BundleWindow>).client?.status === 'ready', undefined, { message: 'client ready' })
    const warnings = await page.evaluate(() => (window as unknown as BundleWindow).logs.filter((line) => line.level === 'warn').map((line) => line.message))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/IndexedDB is unavailable/)
    expect(await page.evaluate(() => (window as unknown as BundleWindow).tokens.get())).toMatch(/^[A-Za-z0-9_-]{32,}$/)
    expect((await page.evaluate(() => (window as unknown as BundleWindow).client.call('whoami'))).sessionId).toEqual(expect.any(String))
  })
}
