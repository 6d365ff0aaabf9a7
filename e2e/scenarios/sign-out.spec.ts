import { disposeDemos, startDemo, type DemoProcess } from '../helpers/demo-process.js'
import { registerWithToken } from '../helpers/raw-register.js'
import { LOG_REGISTERS, QUIET_MS, serverRegisters } from '../helpers/recorded-tab.js'
import { click, httpSession, openDemoTab, recordStatuses, signIn, statusTrail, storedToken, textOf, waitText, whoami } from '../engines/demo-tab.js'
import type { EnginePage } from '../engines/engine-test.js'
import { expect, test } from '../engines/engine-test.js'

// "Sign out" in one tab ends every tab of that browser at once, for good, in every engine: no
// reconnect, and the old link token is refused.

let demo: DemoProcess | undefined

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
  demo = undefined
  await disposeDemos()
})

/** The tab shows it ended with `lastEvent`, lists no tab, and its client will not reconnect. */
async function expectEnded(page: EnginePage, lastEvent: string): Promise<void> {
  await waitText(page, 'status', 'ended')
  await waitText(page, 'last-event', lastEvent)
  expect(await textOf(page, 'ended-banner')).toBeTruthy()
  expect(await page.evaluate(() => document.querySelectorAll('[data-testid="tab-item"]').length)).toBe(0)
  expect(await page.evaluate(() => (window as unknown as { client: { socket: { active: boolean } } }).client.socket.active)).toBe(false)
}

test('should end every tab of the browser at once when one tab signs out, with no reconnect and the old token refused', async ({ profile }) => {
  test.setTimeout(60_000)
  // The server logs every register that reaches it: the count proves no tab came back.
  demo = await startDemo({ env: LOG_REGISTERS })
  const first = await openDemoTab(profile, demo.url)
  await signIn(first, 'Ada')
  const second = await openDemoTab(profile, demo.url)
  const third = await openDemoTab(profile, demo.url)
  const { sessionId } = await whoami(first)
  for (const page of [second, third]) expect((await whoami(page)).sessionId).toBe(sessionId)
  const token = await storedToken(first)
  expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/)
  for (const page of [first, second, third]) await recordStatuses(page)
  const registersBefore = serverRegisters(demo)

  await click(second, 'signout')

  await expectEnded(second, 'ended: you signed out')
  await expectEnded(first, 'ended: signed out in another tab')
  await expectEnded(third, 'ended: signed out in another tab')
  // A bounded watch: several of the client's first backoff steps pass, and nothing comes back.
  await new Promise((resolve) => setTimeout(resolve, QUIET_MS))
  expect(serverRegisters(demo)).toBe(registersBefore)
  for (const page of [first, second, third]) {
    expect(await textOf(page, 'status')).toBe('ended')
    const trail = await statusTrail(page)
    expect(trail.slice(trail.indexOf('ended'))).toEqual(['ended'])
  }
  expect((await httpSession(first)).sessionId).toBeNull()
  // The page offers nothing that would wait for a connection that will not come.
  await expect(click(first, 'counter-rpc')).rejects.toThrow(/disabled/)

  // The old token is refused on a reconnect: a fresh, unrelated link instead.
  const outcome = await registerWithToken(demo.url, token)
  expect(outcome).toMatchObject({ registered: { restored: false, reason: 'revoked-token', newSession: true } })
})
