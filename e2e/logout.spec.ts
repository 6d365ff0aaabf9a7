import { expect, test, type Browser, type BrowserContext } from '@playwright/test'
import { disposeDemos, startDemo, type DemoProcess } from './helpers/demo-process.js'
import { registerWithToken } from './helpers/raw-register.js'
import { LOG_REGISTERS, cookieSession, expectEndedForGood, openRecordedTab, serverRegisters, serverView, signIn, storedToken } from './helpers/recorded-tab.js'

// "Sign out everywhere" ends the user's other browsers too, for good: no
// reconnect loop, and the old link token is refused. "Sign out" in one tab ending every tab of
// the browser runs in every engine (scenarios/sign-out.spec.ts).

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
