import { expect, test, type Browser, type BrowserContext } from '@playwright/test'
import { disposeDemos, startDemo, type DemoProcess } from './helpers/demo-process.js'
import { registerWithToken } from './helpers/raw-register.js'
import { LOG_REGISTERS, cookieSession, expectEndedForGood, openRecordedTab, serverRegisters, serverView, signIn, storedToken } from './helpers/recorded-tab.js'

// "Sign out" in one tab ends every tab of that browser at once, for good: no reconnect loop,
// and the old link token is refused. "Sign out everywhere" ends the user's other browsers too.

let demo: DemoProcess | undefined
const extraContexts: BrowserContext[] = []

test.beforeEach(async () => {
  // The server logs every register that reaches it: the count proves no tab came back.
  demo = await startDemo({ env: LOG_REGISTERS })
})

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
  await Promise.all(extraContexts.splice(0).map((context) => context.close()))
  demo = undefined
  await disposeDemos()
})

const registers = () => serverRegisters(demo!)

async function newContext(browser: Browser): Promise<BrowserContext> {
  const context = await browser.newContext()
  extraContexts.push(context)
  return context
}

test('should end every tab of the browser at once when one tab signs out, with no reconnect and the old token refused', async ({ context }) => {
  test.setTimeout(60_000)
  const url = demo!.url
  const first = await openRecordedTab(context, url)
  await signIn(first.page, 'Ada')
  const second = await openRecordedTab(context, url)
  const third = await openRecordedTab(context, url)
  const { sessionId } = await serverView(first.page)
  for (const tab of [second, third]) expect((await serverView(tab.page)).sessionId).toBe(sessionId)
  // The token every tab of this browser registers with, read as the SDK stores it.
  const token = await storedToken(first.page)
  expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/)
  const registersBefore = registers()
  expect(registersBefore).toBeGreaterThanOrEqual(3)

  await second.page.getByTestId('signout').click()

  await Promise.all([
    expectEndedForGood(second, 'ended: you signed out'),
    expectEndedForGood(first, 'ended: signed out in another tab'),
    expectEndedForGood(third, 'ended: signed out in another tab'),
  ])
  // Not one register reached the server since the sign-out.
  expect(registers()).toBe(registersBefore)
  expect(await cookieSession(first.page, url)).toMatchObject({ sessionId: null })
  // The page offers nothing that would wait for a connection that will not come.
  await expect(first.page.getByTestId('counter-rpc')).toBeDisabled()

  // The old token is refused on a reconnect: a fresh, unrelated link instead.
  const outcome = await registerWithToken(url, token)
  expect(outcome).toMatchObject({ registered: { restored: false, reason: 'revoked-token', newSession: true } })
  expect('registered' in outcome && outcome.registered.token).not.toBe(token)
})

test("should end the user's other browser too on sign out everywhere, and no one else's", async ({ browser, context }) => {
  test.setTimeout(60_000)
  const url = demo!.url
  const mine = await openRecordedTab(context, url)
  await signIn(mine.page, 'Ada')
  const mySecondTab = await openRecordedTab(context, url)
  // The same user in another browser: another session.
  const laptop = await openRecordedTab(await newContext(browser), url)
  await signIn(laptop.page, 'Ada')
  // Another user.
  const bob = await openRecordedTab(await newContext(browser), url)
  await signIn(bob.page, 'Bob')
  const laptopSession = (await serverView(laptop.page)).sessionId
  expect(laptopSession).not.toBe((await serverView(mine.page)).sessionId)
  const bobView = await serverView(bob.page)
  const laptopToken = await storedToken(laptop.page)
  const registersBefore = registers()
  expect(registersBefore).toBeGreaterThanOrEqual(4)

  await mine.page.getByTestId('signout-everywhere').click()

  await Promise.all([
    expectEndedForGood(mine, 'ended: you signed out everywhere'),
    expectEndedForGood(mySecondTab, 'ended: signed out everywhere from another tab or browser'),
    expectEndedForGood(laptop, 'ended: signed out everywhere from another tab or browser'),
  ])
  expect(registers()).toBe(registersBefore)
  expect(await cookieSession(mine.page, url)).toMatchObject({ sessionId: null })
  expect(await cookieSession(laptop.page, url)).toMatchObject({ sessionId: null })
  const outcome = await registerWithToken(url, laptopToken)
  expect(outcome).toMatchObject({ registered: { restored: false, reason: 'revoked-token' } })

  // Bob is untouched: still ready, in his session, counting.
  await expect(bob.page.getByTestId('status')).toHaveText('ready')
  expect(await serverView(bob.page)).toEqual(bobView)
  await bob.page.getByTestId('counter-rpc').click()
  await expect(bob.page.getByTestId('counter')).toHaveText('1')
  expect(bob.statuses.history()).not.toContain('ended')
})
