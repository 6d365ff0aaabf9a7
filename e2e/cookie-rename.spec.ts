import { expect, test } from '@playwright/test'
import { disposeDemos, startDemo, type DemoProcess } from './helpers/demo-process.js'
import { RECONNECT, cookieSessionId, httpSession, incrementOverRpc, openTab, signIn, whoami } from './helpers/demo-page.js'

// A deploy renames the session cookie (SESSION_COOKIE_NAME). The browser's cookie under the
// old name no longer counts; the tab stays in its session through its token, and the SDK sets
// its provisional cookie under the new name (`after.sid.ss`: the SDK never sets the session
// cookie itself), for the same session.

let demo: DemoProcess | undefined

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
  demo = undefined
  await disposeDemos()
})

test('should keep a signed-in tab in its session across a deploy that renames the cookie, and restore the cookie under the new name', async ({ context }) => {
  test.setTimeout(60_000)
  demo = await startDemo({ env: { SESSION_COOKIE_NAME: 'before.sid' } })
  const page = await openTab(context, demo.url)
  await signIn(page, 'Ada')
  await incrementOverRpc(page, 1)
  const before = await whoami(page)
  const named = async (name: string) => (await context.cookies()).find((cookie) => cookie.name === name)
  expect(cookieSessionId((await named('before.sid'))!.value)).toBe(before.sessionId)

  await demo.restart({ env: { SESSION_COOKIE_NAME: 'after.sid' } })
  await expect(page.getByTestId('status')).toHaveText('ready', RECONNECT)

  expect(await whoami(page)).toEqual(before)
  await expect(page.getByTestId('user-name')).toHaveText('Ada')
  await expect.poll(async () => (await named('after.sid.ss'))?.value, RECONNECT).toBeDefined()
  expect(cookieSessionId((await named('after.sid.ss'))!.value)).toBe(before.sessionId)
  // Plain HTTP carries the session again, under the new name.
  expect(await httpSession(page)).toEqual({ sessionId: before.sessionId, count: 1, userId: 'ada' })
  await page.getByTestId('counter-http').click()
  await expect(page.getByTestId('counter')).toHaveText('2', RECONNECT)
})
