import { expect, test } from '@playwright/test'
import { disposeDemos, startDemo, type DemoProcess } from './helpers/demo-process.js'
import { RECONNECT, httpSession, incrementOverRpc, openTab, sessionCookie, whoami } from './helpers/demo-page.js'
import { startStripProxy, type StripProxy } from './helpers/strip-proxy.js'

// A proxy strips Set-Cookie from every response, the socket's own included: the browser never
// holds the session cookie. The tab keeps its identity through its token; restoreCookie() says
// the cookie was not kept, and the demo signs in and out over the socket.

let demo: DemoProcess | undefined
let proxy: StripProxy | undefined

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
  await proxy?.close()
  proxy = demo = undefined
  await disposeDemos()
})

test('should say the cookie was not kept, sign in over the socket, and keep the signed-in session across a reload through the token', async ({ context }) => {
  demo = await startDemo()
  proxy = await startStripProxy(demo.port, { keepCookies: () => false })
  const page = await openTab(context, proxy.url)
  const result = await page.evaluate(() => (window as unknown as { client: { restoreCookie(): Promise<unknown> } }).client.restoreCookie())
  expect(result).toEqual({ kept: false, reason: 'not-stored' })
  expect(await sessionCookie(context)).toBeUndefined()

  await page.getByTestId('signin-name').fill('Ada')
  await page.getByTestId('signin-submit').click()
  await expect(page.getByTestId('user-name')).toHaveText('Ada', RECONNECT)
  await expect(page.getByTestId('signin-over-socket')).toHaveCount(0)
  await expect(page.getByTestId('status')).toHaveText('ready', RECONNECT)
  const signedIn = await whoami(page)
  await incrementOverRpc(page, 1)
  // Plain HTTP never carried a session: every Set-Cookie was stripped.
  expect(await httpSession(page)).toEqual({ sessionId: null, count: 0, userId: null })
  expect(proxy.exchanges().filter((exchange) => exchange.setCookie === 'passed')).toEqual([])

  await page.reload()
  await expect(page.getByTestId('status')).toHaveText('ready', RECONNECT)
  await expect(page.getByTestId('user-name')).toHaveText('Ada', RECONNECT)
  expect((await whoami(page)).sessionId).toBe(signedIn.sessionId)
  await expect(page.getByTestId('counter')).toHaveText('1')

  await page.getByTestId('signout').click()
  await expect(page.getByTestId('status')).toHaveText('ended', RECONNECT)
})

test('should show the sign-in over the socket once the page found the cookie is not kept', async ({ context }) => {
  demo = await startDemo()
  proxy = await startStripProxy(demo.port, { keepCookies: () => false })
  const page = await openTab(context, proxy.url)
  // An HTTP request that finds no session makes the page restore the cookie, and learn.
  await page.getByTestId('counter-http').click()
  await expect(page.getByTestId('action-error')).toContainText('does not keep the session cookie', RECONNECT)
  await expect(page.getByTestId('signin-over-socket')).toBeVisible()
})
