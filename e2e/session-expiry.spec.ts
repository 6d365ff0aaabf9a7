import { expect, test } from '@playwright/test'
import { sessionCookie } from './helpers/demo-page.js'
import { disposeDemos, startDemo, type DemoProcess } from './helpers/demo-process.js'
import { registerWithToken } from './helpers/raw-register.js'
import {
  LOG_REGISTERS,
  expectEndedForGood,
  openRecordedTab,
  serverRegisters,
  serverView,
  storedToken,
} from './helpers/recorded-tab.js'
import { sessionInStore } from './helpers/session-in-store.js'
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js'

// The session expires on the server (its store TTL) while tabs are open, or while a tab is
// away. The tabs end with `expired`, say so, and stay ended: no reconnect loop against a
// session that is gone.

/** express-session's store lifetime for these tests (SESSION_MAX_AGE_MS, SS_TEST only); also the cookie's. */
const MAX_AGE_MS = 4_000
/** How often the server checks its live sessions against the store (SESSION_CHECK_INTERVAL_MS). */
const CHECK_MS = 200

let demo: DemoProcess | undefined
let proxy: TcpProxy | undefined

test.beforeEach(async () => {
  demo = await startDemo({ env: { ...LOG_REGISTERS, SESSION_MAX_AGE_MS: String(MAX_AGE_MS), SESSION_CHECK_INTERVAL_MS: String(CHECK_MS) } })
})

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
  await proxy?.close()
  proxy = undefined
  demo = undefined
  await disposeDemos()
})

test('should end open tabs with expired when their session expires in the store, and not reconnect', async ({ context, request }) => {
  test.setTimeout(60_000)
  const url = demo!.url
  const tabs = [await openRecordedTab(context, url), await openRecordedTab(context, url)]
  const { sessionId } = await serverView(tabs[0]!.page)
  expect((await serverView(tabs[1]!.page)).sessionId).toBe(sessionId)
  const cookie = await sessionCookie(context)
  expect(cookie).toBeDefined()
  const token = await storedToken(tabs[0]!.page)
  // One register per tab so far (the debug lines arrive through a pipe: wait for them).
  await expect.poll(() => serverRegisters(demo!)).toBe(2)
  const registersBefore = serverRegisters(demo!)

  // Nobody touches the session now: the store lets it expire, the server's check finds it gone.
  await Promise.all(tabs.map((tab) => expectEndedForGood(tab, 'ended: the session expired')))
  expect(serverRegisters(demo!)).toBe(registersBefore)

  // The server agrees: the cookie's session is gone (read with the cookie as it was, since the
  // browser's copy expires with it), and the tabs' token was revoked with it.
  const response = await request.get(`${url}/__test/session`, { headers: { Cookie: `${cookie!.name}=${cookie!.value}` } })
  expect(await response.json()).toMatchObject({ sessionId: null })
  expect(await registerWithToken(url, token)).toMatchObject({ registered: { restored: false, reason: 'revoked-token' } })
})

test('should end a tab with expired when it comes back after its session expired while it was away', async ({ context }) => {
  test.setTimeout(60_000)
  proxy = await startTcpProxy(demo!.port)
  const tab = await openRecordedTab(context, proxy.url)
  const { sessionId } = await serverView(tab.page)
  await expect.poll(() => serverRegisters(demo!)).toBe(1)
  const registersBefore = serverRegisters(demo!)
  const from = tab.statuses.history().length
  proxy.cut()
  await tab.statuses.reached('offline', { from })

  // Nothing reaches the server now: the store lets the session expire.
  await expect.poll(() => sessionInStore(demo!, sessionId), { timeout: MAX_AGE_MS + 10_000 }).toBe(false)
  proxy.restore()

  // It registers once more, learns its session is gone, and stops there.
  await expectEndedForGood(tab, 'ended: the session expired')
  expect(serverRegisters(demo!)).toBe(registersBefore + 1)
  await expect.poll(() => tab.traffic.registered().length).toBe(2)
  expect(tab.traffic.registered()[1]).toMatchObject({ restored: false, reason: 'session-ended', newSession: true })
})
