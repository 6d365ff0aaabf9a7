// Writes demo/screenshot.png from the real page: the built demo server, real Chromium
// (Debian's, as in the e2e tests). Run `npm run build && npm run build -w demo` first, then
// `npm run screenshot -w demo`.
import { fileURLToPath } from 'node:url'
import { chromium } from '@playwright/test'
import { disposeDemos, startDemo } from '../../e2e/helpers/demo-process.js'

const OUT = fileURLToPath(new URL('../screenshot.png', import.meta.url))
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic']
const WAIT = { timeout: 10_000 }

// Without SS_TEST the page shows no test-only details.
const demo = await startDemo({ env: { SS_TEST: undefined } })
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 600 }, deviceScaleFactor: 1 })
  const page = await context.newPage()
  const status = page.getByTestId('status')
  await page.goto(demo.url)
  await status.filter({ hasText: 'ready' }).waitFor(WAIT)
  await page.getByTestId('signin-name').fill('Ada')
  await page.getByTestId('signin-submit').click()
  await page.getByTestId('user-name').waitFor(WAIT)
  await status.filter({ hasText: 'ready' }).waitFor(WAIT)
  await page.getByTestId('counter-http').click()
  await page.getByTestId('counter').filter({ hasText: '1' }).waitFor(WAIT)
  await page.getByTestId('counter-rpc').click()
  await page.getByTestId('counter').filter({ hasText: '2' }).waitFor(WAIT)

  // A second tab of the same browser, then the cookie goes: the next HTTP +1 gets it back.
  const second = await context.newPage()
  await second.goto(demo.url)
  await second.getByTestId('status').filter({ hasText: 'ready' }).waitFor(WAIT)
  await page.getByTestId('tab-item').nth(1).waitFor(WAIT)
  await context.clearCookies()
  await page.bringToFront()
  await page.getByTestId('counter-http').click()
  await page.getByTestId('last-event').filter({ hasText: 'restored after cookie loss' }).waitFor(WAIT)
  await page.getByTestId('counter').filter({ hasText: '3' }).waitFor(WAIT)

  await page.screenshot({ path: OUT, fullPage: true, animations: 'disabled' })
  console.log(`wrote ${OUT}`)
} finally {
  await browser.close()
  await disposeDemos()
}
