import { disposeDemos, startDemo, type DemoProcess } from '../helpers/demo-process.js'
import { click, openDemoTab, tabIdOf, waitText, whoami } from '../engines/demo-tab.js'
import { expect, test } from '../engines/engine-test.js'

// Leaving the page and coming back with the browser's Back: the page may come back from the
// back/forward cache (the same document: the SDK closed its socket on `pagehide` and
// reconnects on `pageshow`) or be loaded again (its tab id read back after its own `pagehide`).
// Either way it is the same tab, in the same session, ready again.

let demo: DemoProcess | undefined

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
  demo = undefined
  await disposeDemos()
})

test('should come back as the same tab in the same session after leaving the page and going back', async ({ profile }) => {
  demo = await startDemo()
  const page = await openDemoTab(profile, demo.url)
  const before = await whoami(page)
  expect(before.tabId).toBe(await tabIdOf(page))
  await page.evaluate(() => {
    const w = window as unknown as { sameDocument: boolean; restoredFromCache: boolean }
    w.sameDocument = true
    addEventListener('pageshow', (event) => (w.restoredFromCache = event.persisted))
  })

  await page.goto(`${demo.url}/__e2e/elsewhere`)
  await page.evaluate(() => history.back())
  await waitText(page, 'status', 'ready')

  const cached = await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument === true)
  if (cached) expect(await page.evaluate(() => (window as unknown as { restoredFromCache?: boolean }).restoredFromCache)).toBe(true)
  test.info().annotations.push({ type: 'back/forward cache', description: cached ? 'restored from the cache' : 'loaded again' })
  expect(await tabIdOf(page)).toBe(before.tabId)
  expect(await whoami(page)).toEqual(before)
  await click(page, 'counter-rpc')
  await waitText(page, 'counter', '1')
})
