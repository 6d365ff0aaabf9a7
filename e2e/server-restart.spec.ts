import { expect, test, type Page } from '@playwright/test'
import { disposeDemos, startDemo, type DemoProcess } from './helpers/demo-process.js'
import { RECONNECT, httpSession, incrementOverRpc, openTab, signIn, whoami, type Whoami } from './helpers/demo-page.js'

// The server dies (SIGKILL, no shutdown code runs) and starts again on the same port and data
// folder. Every open tab comes back into its session with its tab id, without a reload, and
// calls made while the server was down run once after it is back.

let demo: DemoProcess | undefined

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
  demo = undefined
  await disposeDemos()
})

interface TabBefore {
  page: Page
  tabId: string
  server: Whoami
  loads: number
}

test('should bring every tab back into its session after a SIGKILL and restart, running calls made while down once', async ({ context }) => {
  test.setTimeout(90_000)
  demo = await startDemo()
  const first = await openTab(context, demo.url)
  await signIn(first, 'Ada')
  const pages = [first, await openTab(context, demo.url), await openTab(context, demo.url)]
  for (const page of pages) await expect(page.getByTestId('tab-item')).toHaveCount(3)
  await incrementOverRpc(first, 1)

  const tabs: TabBefore[] = []
  for (const page of pages) {
    const tab: TabBefore = { page, tabId: (await page.getByTestId('tab-id').textContent())!, server: await whoami(page), loads: 0 }
    // A reload would lose this and fire `load`.
    await page.evaluate(() => ((window as Window & { beforeRestart?: string }).beforeRestart = 'kept'))
    page.on('load', () => tab.loads++)
    tabs.push(tab)
  }
  const sessionId = tabs[0]!.server.sessionId
  expect(tabs.map((tab) => tab.server)).toEqual(tabs.map((tab) => ({ sessionId, tabId: tab.tabId })))
  const tabIds = tabs.map((tab) => tab.tabId).sort()

  expect(await demo.kill()).toEqual({ code: null, signal: 'SIGKILL' })
  for (const page of pages) await expect(page.getByTestId('status')).toHaveText('offline', RECONNECT)
  // Calls while the server is down: one from the first tab, two from the second.
  await pages[0]!.getByTestId('counter-rpc').click()
  await pages[1]!.getByTestId('counter-rpc').click()
  await pages[1]!.getByTestId('counter-rpc').click()
  for (const page of pages) await expect(page.getByTestId('counter')).toHaveText('1')

  await demo.start()

  for (const { page, tabId, server } of tabs) {
    await expect(page.getByTestId('status')).toHaveText('ready', RECONNECT)
    // A crash sends no server:shutdown: to the page it looks like a network loss.
    await expect(page.getByTestId('last-event')).toHaveText('reconnected after network loss')
    await expect(page.getByTestId('user-name')).toHaveText('Ada')
    await expect(page.getByTestId('tab-id')).toHaveText(tabId)
    await expect(page.getByTestId('counter')).toHaveText('4', RECONNECT)
    expect(await whoami(page)).toEqual(server)
    // The new process lists the same three tabs.
    const items = page.getByTestId('tab-list').getByTestId('tab-item')
    await expect(items).toHaveCount(3, RECONNECT)
    expect((await items.evaluateAll((nodes) => nodes.map((node) => node.getAttribute('data-tab-id')))).sort()).toEqual(tabIds)
  }
  for (const tab of tabs) {
    expect(await tab.page.evaluate(() => (window as Window & { beforeRestart?: string }).beforeRestart)).toBe('kept')
    expect(tab.loads).toBe(0)
  }
  await expect(pages[0]!.getByTestId('action-error')).toHaveCount(0)
  await expect(pages[1]!.getByTestId('action-error')).toHaveCount(0)
  // Plain HTTP sees the same session, every call counted once.
  expect(await httpSession(first)).toEqual({ sessionId, count: 4, userId: 'ada' })
})
