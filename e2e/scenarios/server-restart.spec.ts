import { disposeDemos, startDemo, type DemoProcess } from '../helpers/demo-process.js'
import { click, httpSession, openDemoTab, signIn, tabIdOf, textOf, waitListedTabs, waitText, whoami, type Whoami } from '../engines/demo-tab.js'
import type { EnginePage } from '../engines/engine-test.js'
import { expect, test } from '../engines/engine-test.js'

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
  page: EnginePage
  tabId: string
  server: Whoami
}

test('should bring every tab back into its session after a SIGKILL and restart, running calls made while down once', async ({ profile }) => {
  test.setTimeout(90_000)
  demo = await startDemo()
  const first = await openDemoTab(profile, demo.url)
  await signIn(first, 'Ada')
  const pages = [first, await openDemoTab(profile, demo.url), await openDemoTab(profile, demo.url)]
  const tabs: TabBefore[] = []
  for (const page of pages) tabs.push({ page, tabId: await tabIdOf(page), server: await whoami(page) })
  const tabIds = tabs.map((tab) => tab.tabId)
  expect(new Set(tabIds).size).toBe(3)
  for (const page of pages) await waitListedTabs(page, tabIds)
  await click(first, 'counter-rpc')
  await waitText(first, 'counter', '1')
  const sessionId = tabs[0]!.server.sessionId
  expect(tabs.map((tab) => tab.server)).toEqual(tabs.map((tab) => ({ sessionId, tabId: tab.tabId })))
  // A reload would lose this.
  for (const page of pages) await page.evaluate(() => ((window as Window & { beforeRestart?: string }).beforeRestart = 'kept'))

  expect(await demo.kill()).toEqual({ code: null, signal: 'SIGKILL' })
  for (const page of pages) await waitText(page, 'status', 'offline')
  // Calls while the server is down: one from the first tab, two from the second.
  await click(pages[0]!, 'counter-rpc')
  await click(pages[1]!, 'counter-rpc')
  await click(pages[1]!, 'counter-rpc')
  for (const page of pages) expect(await textOf(page, 'counter')).toBe('1')

  await demo.start()

  for (const { page, tabId, server } of tabs) {
    await waitText(page, 'status', 'ready')
    // A crash sends no server:shutdown: to the page it looks like a network loss.
    await waitText(page, 'last-event', 'reconnected after network loss')
    await waitText(page, 'user-name', 'Ada')
    await waitText(page, 'tab-id', tabId)
    await waitText(page, 'counter', '4')
    expect(await whoami(page)).toEqual(server)
    // The new process lists the same three tabs.
    await waitListedTabs(page, tabIds)
    expect(await page.evaluate(() => (window as Window & { beforeRestart?: string }).beforeRestart)).toBe('kept')
  }
  expect(await textOf(pages[0]!, 'action-error')).toBeFalsy()
  expect(await textOf(pages[1]!, 'action-error')).toBeFalsy()
  // Plain HTTP sees the same session, every call counted once.
  expect(await httpSession(first)).toEqual({ sessionId, count: 4, userId: 'ada' })
})
