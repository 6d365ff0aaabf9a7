import { expect, test, type BrowserContext, type Page } from '@playwright/test'
import type { SessionSocket, TokenStorage } from '../packages/browser/src/index.js'
import { PAGES, startBundleServer, type BundleServer } from './helpers/bundle-server.js'

declare global {
  interface Window {
    client: SessionSocket
    tokens: TokenStorage
    logs: { level: string; message: string }[]
  }
}

let server: BundleServer

test.beforeEach(async () => {
  server = await startBundleServer()
})

test.afterEach(async () => {
  await server?.close()
})

/** Opens `bundle`'s page in a new page of `context` and waits until its client is ready. */
async function openTab(context: BrowserContext, bundle: keyof typeof PAGES, prepare?: (page: Page) => Promise<unknown>): Promise<Page> {
  const page = await context.newPage()
  await prepare?.(page)
  await page.goto(`${server.url}/${bundle}.html`)
  await waitReady(page)
  return page
}

async function waitReady(page: Page): Promise<void> {
  await page.waitForFunction(() => window.client?.status === 'ready', null, { timeout: 10_000 })
}

const whoami = (page: Page) => page.evaluate(() => window.client.call('whoami') as Promise<{ sessionId: string; tabId: string }>)
const tabId = (page: Page) => page.evaluate(() => window.client.tabId)

for (const bundle of Object.keys(PAGES) as (keyof typeof PAGES)[]) {
  test.describe(`${bundle} bundle`, () => {
    test('should reach ready and answer calls', async ({ context }) => {
      const page = await openTab(context, bundle)
      const me = await whoami(page)
      expect(me.tabId).toBe(await tabId(page))
      expect(await page.evaluate(() => window.tokens.get())).toMatch(/^[A-Za-z0-9_-]{32,}$/)
      expect(await page.evaluate(() => window.logs.filter((line) => line.level === 'warn'))).toEqual([])
    })

    test('should share the token and the session between two tabs, with distinct tab ids', async ({ context }) => {
      const first = await openTab(context, bundle)
      const second = await openTab(context, bundle)
      const [a, b] = [await whoami(first), await whoami(second)]
      expect(a.sessionId).toBe(b.sessionId)
      expect(a.tabId).not.toBe(b.tabId)
      expect(await second.evaluate(() => window.tokens.get())).toBe(await first.evaluate(() => window.tokens.get()))
    })

    test('should keep the tab id across a reload', async ({ context }) => {
      const page = await openTab(context, bundle)
      const before = await whoami(page)
      await page.reload()
      await waitReady(page)
      expect(await whoami(page)).toEqual(before)
    })

    test('should give a duplicated tab a new tab id and leave the original alone', async ({ context }) => {
      const original = await openTab(context, bundle)
      const originalId = await tabId(original)
      const copied = await original.evaluate(() => Object.entries(sessionStorage))
      expect(copied.map(([key]) => key)).toContain('session-socket:tab-id')
      // Chromium's "Duplicate tab" copies sessionStorage into the new tab before it loads.
      const duplicate = await openTab(context, bundle, (page) =>
        page.addInitScript((entries) => {
          for (const [key, value] of entries) sessionStorage.setItem(key, value)
        }, copied),
      )
      const duplicateId = await tabId(duplicate)
      expect(duplicateId).not.toBe(originalId)
      expect(await duplicate.evaluate(() => sessionStorage.getItem('session-socket:tab-id'))).toBe(duplicateId)
      expect((await whoami(duplicate)).sessionId).toBe((await whoami(original)).sessionId)
      // The original keeps its id and its socket: the server did not replace it.
      expect(await whoami(original)).toMatchObject({ tabId: originalId })
      expect(await original.evaluate(() => window.client.status)).toBe('ready')
    })

    test('should fall back to memory with one warning when IndexedDB fails, and still reach ready', async ({ context }) => {
      const page = await openTab(context, bundle, (page) =>
        page.addInitScript(() => {
          IDBFactory.prototype.open = () => {
            throw new DOMException('The operation is insecure.', 'SecurityError')
          }
        }),
      )
      const warnings = await page.evaluate(() => window.logs.filter((line) => line.level === 'warn').map((line) => line.message))
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toMatch(/IndexedDB is unavailable/)
      expect(await page.evaluate(() => window.tokens.get())).toMatch(/^[A-Za-z0-9_-]{32,}$/)
    })
  })
}
