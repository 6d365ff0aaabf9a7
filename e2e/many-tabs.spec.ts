import { expect, test } from '@playwright/test'
import { disposeDemos, startDemo, type DemoProcess } from './helpers/demo-process.js'
import {
  BACK_TIMEOUT,
  cookieSession,
  expectListedTabs,
  openRecordedTab,
  serverView,
  signIn,
  storedToken,
  tabIdOf,
  type Tab,
} from './helpers/recorded-tab.js'
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js'

// Several tabs of one browser share one session, each with its own tab
// id; a reload keeps a tab's id, another browser is another session. Run with token rotation
// off and on (TOKEN_ROTATION=1: a new token at every register), and with every tab
// reconnecting at once, so tabs race to rotate the one token they share in IndexedDB: none may
// leave its session. Two tabs, a reload and a duplicated tab run in every engine
// (scenarios/tabs.spec.ts).

let demo: DemoProcess | undefined
let proxy: TcpProxy | undefined

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
  await proxy?.close()
  proxy = undefined
  demo = undefined
  await disposeDemos()
})

function expectNeverEnded(tabs: Tab[]): void {
  for (const tab of tabs) {
    expect(tab.statuses.history()).not.toContain('ended')
    expect(tab.statuses.history()).not.toContain('closed')
  }
}

for (const rotation of [false, true]) {
  test.describe(`token rotation ${rotation ? 'on' : 'off'}`, () => {
    test.beforeEach(async () => {
      demo = await startDemo({ env: rotation ? { TOKEN_ROTATION: '1' } : {} })
    })

    test('should give each tab of one browser its own id in one session, keep it across a reload, and keep other browsers out', async ({ browser, context }) => {
      test.setTimeout(90_000)
      const url = demo!.url
      const first = await openRecordedTab(context, url)
      await signIn(first.page, 'Ada')
      const tabs = [first, await openRecordedTab(context, url), await openRecordedTab(context, url)]
      const ids = await Promise.all(tabs.map((tab) => tabIdOf(tab.page)))
      expect(new Set(ids).size).toBe(3)

      // One session, three tabs, each listed in every tab's list, each marking itself.
      const { sessionId } = await serverView(first.page)
      expect((await cookieSession(first.page, url)).sessionId).toBe(sessionId)
      for (const [i, tab] of tabs.entries()) {
        expect(await serverView(tab.page)).toEqual({ sessionId, tabId: ids[i] })
        await expectListedTabs(tab.page, ids)
        await expect(tab.page.locator('[data-testid="tab-item"][data-you="true"]')).toHaveAttribute('data-tab-id', ids[i]!)
        await expect(tab.page.getByTestId('user-name')).toHaveText('Ada')
      }

      // A reload is the same tab: same id, same session, still one entry in every list.
      await tabs[1]!.page.reload()
      await expect(tabs[1]!.page.getByTestId('status')).toHaveText('ready', { timeout: BACK_TIMEOUT })
      expect(await tabIdOf(tabs[1]!.page)).toBe(ids[1])
      expect(await serverView(tabs[1]!.page)).toEqual({ sessionId, tabId: ids[1] })
      for (const tab of tabs) await expectListedTabs(tab.page, ids)

      // Another browser is another session, and sees none of these tabs (nor they it).
      const other = await browser.newContext()
      try {
        const stranger = await openRecordedTab(other, url)
        const strangerView = await serverView(stranger.page)
        expect(strangerView.sessionId).not.toBe(sessionId)
        expect(ids).not.toContain(strangerView.tabId)
        await expectListedTabs(stranger.page, [strangerView.tabId])
        await expect(stranger.page.getByTestId('signin-name')).toBeVisible()
        for (const tab of tabs) await expectListedTabs(tab.page, ids)
        expectNeverEnded([stranger])
      } finally {
        await other.close()
      }
      expectNeverEnded(tabs)
    })

    test('should keep three tabs in their session through a network cut, going offline together and a server crash', async ({ context }) => {
      test.setTimeout(120_000)
      proxy = await startTcpProxy(demo!.port)
      const first = await openRecordedTab(context, proxy.url)
      await signIn(first.page, 'Ada')
      const tabs = [first, await openRecordedTab(context, proxy.url), await openRecordedTab(context, proxy.url)]
      const ids = await Promise.all(tabs.map((tab) => tabIdOf(tab.page)))
      const { sessionId } = await serverView(first.page)
      for (const tab of tabs) await expectListedTabs(tab.page, ids)
      let count = 0
      const registersBefore = tabs.map((tab) => tab.traffic.registered().length)
      let sharedTokenRegisters = 0

      for (const disruption of ['cut', 'offline', 'crash'] as const) {
        const from = tabs.map((tab) => tab.statuses.history().length)
        const connectsBefore = tabs.map((tab) => tab.traffic.connects().length)
        const tokenBefore = await storedToken(first.page)
        if (disruption === 'cut') {
          proxy.cut()
          await Promise.all(tabs.map((tab, i) => tab.statuses.reached('offline', { from: from[i] })))
          proxy.restore()
        } else if (disruption === 'offline') {
          // Back online, every tab reconnects at once (the window `online` event), reading the
          // one token they share: with rotation on, they race to rotate it.
          await context.setOffline(true)
          await Promise.all(tabs.map((tab, i) => tab.statuses.reached('offline', { from: from[i] })))
          await context.setOffline(false)
        } else {
          // SIGKILL and start again on the same port and data folder (sessions and links on disk).
          await demo!.restart({ kill: true })
        }
        for (const tab of tabs) await expect(tab.page.getByTestId('status')).toHaveText('ready', { timeout: BACK_TIMEOUT })
        for (const [i, tab] of tabs.entries()) {
          expect(await serverView(tab.page)).toEqual({ sessionId, tabId: ids[i] })
          await expectListedTabs(tab.page, ids)
        }
        // Calls from every tab land in the one session.
        for (const tab of tabs) await tab.page.getByTestId('counter-rpc').click()
        count += tabs.length
        for (const tab of tabs) await expect(tab.page.getByTestId('counter')).toHaveText(String(count), { timeout: BACK_TIMEOUT })
        const tokenAfter = await storedToken(first.page)
        expect(tokenAfter).not.toBeNull()
        if (rotation) expect(tokenAfter).not.toBe(tokenBefore)
        else expect(tokenAfter).toBe(tokenBefore)
        const presented = tabs.flatMap((tab, i) => [...new Set(tab.traffic.connects().slice(connectsBefore[i]).map((c) => c.token))])
        sharedTokenRegisters += presented.length - new Set(presented).size
      }

      for (const [i, tab] of tabs.entries()) {
        // Every register of every tab since re-attached the session its token names.
        await expect.poll(() => tab.traffic.registered().length - registersBefore[i]!).toBeGreaterThanOrEqual(3)
        expect(tab.traffic.registered().slice(registersBefore[i]).filter((reply) => !reply.restored)).toEqual([])
      }
      expectNeverEnded(tabs)
      expect(await cookieSession(first.page, demo!.url)).toMatchObject({ sessionId, count, userId: 'ada' })
      // How often tabs raced: a register presenting a token another tab presented in the same
      // round (with rotation on, one of them presented a token the other had just rotated).
      if (rotation) test.info().annotations.push({ type: 'rotation races', description: String(sharedTokenRegisters) })
    })
  })
}
