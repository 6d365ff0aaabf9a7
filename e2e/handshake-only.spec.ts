import { expect, test, type BrowserContext, type Page } from '@playwright/test'
import { disposeDemos, startDemo, type DemoProcess } from './helpers/demo-process.js'
import { RECONNECT, httpSession, incrementOverRpc, whoami } from './helpers/demo-page.js'
import { startStripProxy, type StripProxy } from './helpers/strip-proxy.js'

// Behind a caching proxy that strips
// Set-Cookie from the page, its assets and other HTTP, the only place a visitor can get a
// session is the socket. The first visit itself runs in every engine
// (scenarios/first-visit.spec.ts); here, two visitors behind one proxy.

let demo: DemoProcess | undefined
let proxy: StripProxy | undefined

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus) {
    if (demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
    if (proxy) await testInfo.attach('proxy-exchanges', { body: JSON.stringify(proxy.exchanges(), null, 2), contentType: 'application/json' })
  }
  await proxy?.close()
  proxy = undefined
  demo = undefined
  await disposeDemos()
})

/** Opens the page through the proxy and waits until it is ready, as a first-time visitor. */
async function visit(context: BrowserContext): Promise<Page> {
  const page = await context.newPage()
  await page.goto(proxy!.url)
  await expect(page.getByTestId('status')).toHaveText('ready', RECONNECT)
  return page
}

test.describe('a visitor whose only cookie can come from the socket', () => {
  test.beforeEach(async () => {
    demo = await startDemo()
    proxy = await startStripProxy(demo.port)
  })

  test('should give two visitors one after another behind the same proxy a session each', async ({ browser }) => {
    const first = await browser.newContext()
    const second = await browser.newContext()
    try {
      const firstPage = await visit(first)
      await incrementOverRpc(firstPage, 1)
      await incrementOverRpc(firstPage, 2)
      const secondPage = await visit(second)
      await expect(secondPage.getByTestId('counter')).toHaveText('0')
      await incrementOverRpc(secondPage, 1)

      const a = await whoami(firstPage)
      const b = await whoami(secondPage)
      expect(a.sessionId).not.toBe(b.sessionId)
      expect(await httpSession(firstPage)).toEqual({ sessionId: a.sessionId, count: 2, userId: null })
      expect(await httpSession(secondPage)).toEqual({ sessionId: b.sessionId, count: 1, userId: null })
      await expect(firstPage.getByTestId('tab-item')).toHaveCount(1)
      await expect(secondPage.getByTestId('tab-item')).toHaveCount(1)
    } finally {
      await first.close()
      await second.close()
    }
  })
})
