import { expect, test, type BrowserContext, type Page } from '@playwright/test'
import { disposeDemos, startDemo, type DemoProcess } from './helpers/demo-process.js'
import { RECONNECT, cookieSessionId, httpSession, incrementOverRpc, sessionCookie, whoami } from './helpers/demo-page.js'
import { startStripProxy, type ProxiedExchange, type StripProxy } from './helpers/strip-proxy.js'

// Behind a caching proxy that strips Set-Cookie from the page, its assets and other HTTP, the
// only place a visitor can get a session is the socket. It does, and plain HTTP afterwards
// shares that session.

let demo: DemoProcess | undefined
let proxy: StripProxy | undefined

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus) {
    if (demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
    if (proxy) await testInfo.attach('proxy-exchanges', { body: JSON.stringify(proxy.exchanges(), null, 2), contentType: 'application/json' })
  }
  await proxy?.close()
  proxy = undefined
  demo = undefined
  await disposeDemos()
})

const onSocketPath = (exchange: ProxiedExchange) => exchange.url.startsWith('/socket.io/') || exchange.url.startsWith('/session-socket/')

/** Opens the page through the proxy and waits until it is ready, as a first-time visitor. */
async function visit(context: BrowserContext): Promise<Page> {
  const page = await context.newPage()
  await page.goto(proxy!.url)
  await expect(page.getByTestId('status')).toHaveText('ready', RECONNECT)
  return page
}

test.describe('a visitor whose only cookie can come from the socket', () => {
  test.beforeEach(async () => {
    demo = await startDemo()
    proxy = await startStripProxy(demo.port)
  })

  test('should get its session from the socket, and share it with plain HTTP afterwards', async ({ context }) => {
    const page = await context.newPage()
    // The page, its assets and GET /api/me load; the socket waits at the proxy.
    proxy!.holdEngineIo()
    const me = page.waitForResponse((response) => new URL(response.url()).pathname === '/api/me', RECONNECT)
    await page.goto(proxy!.url)
    await me
    await expect.poll(() => proxy!.exchanges().some((exchange) => exchange.url.startsWith('/socket.io/')), RECONNECT).toBe(true)
    await expect(page.getByTestId('status')).not.toHaveText('ready')
    expect(await context.cookies()).toEqual([])
    expect(proxy!.exchanges().filter((exchange) => !onSocketPath(exchange)).length).toBeGreaterThan(0)

    proxy!.releaseEngineIo()
    await expect(page.getByTestId('status')).toHaveText('ready', RECONNECT)
    await expect(page.getByTestId('last-event')).toHaveText('connected: new link for this browser')

    // Now the browser has the cookie, and it names the session the socket is in.
    const socketSide = await whoami(page)
    const cookie = await sessionCookie(context)
    expect(cookie).toBeDefined()
    expect(cookieSessionId(cookie!.value)).toBe(socketSide.sessionId)
    expect(await httpSession(page)).toEqual({ sessionId: socketSide.sessionId, count: 0, userId: null })
    // Every Set-Cookie the browser got came from the socket's path.
    const passed = proxy!.exchanges().filter((exchange) => exchange.setCookie === 'passed')
    expect(passed.length).toBeGreaterThan(0)
    expect(passed.filter((exchange) => !onSocketPath(exchange))).toEqual([])

    // HTTP and RPC count in that one session, once each.
    await page.getByTestId('counter-http').click()
    await expect(page.getByTestId('counter')).toHaveText('1')
    await incrementOverRpc(page, 2)
    await page.getByTestId('counter-http').click()
    await expect(page.getByTestId('counter')).toHaveText('3')
    await expect(page.getByTestId('action-error')).toHaveCount(0)
    expect(await httpSession(page)).toEqual({ sessionId: socketSide.sessionId, count: 3, userId: null })
    expect(await whoami(page)).toEqual(socketSide)
    // The proxy did strip what the counter POSTs tried to set: the session did not need it.
    const posts = proxy!.exchanges().filter((exchange) => exchange.method === 'POST' && exchange.url === '/api/counter')
    expect(posts.map((exchange) => exchange.setCookie)).toEqual(['stripped', 'stripped'])
    expect((await sessionCookie(context))!.value).toBe(cookie!.value)
    // The socket moved to WebSocket through the proxy, untouched.
    await expect.poll(() => proxy!.exchanges().some((exchange) => exchange.kind === 'upgrade' && exchange.url.startsWith('/socket.io/')), RECONNECT).toBe(true)
  })

  test('should give two visitors one after another behind the same proxy a session each', async ({ browser }) => {
    const first = await browser.newContext()
    const second = await browser.newContext()
    try {
      const firstPage = await visit(first)
      await incrementOverRpc(firstPage, 1)
      await incrementOverRpc(firstPage, 2)
      const secondPage = await visit(second)
      await expect(secondPage.getByTestId('counter')).toHaveText('0')
      await incrementOverRpc(secondPage, 1)

      const a = await whoami(firstPage)
      const b = await whoami(secondPage)
      expect(a.sessionId).not.toBe(b.sessionId)
      expect(await httpSession(firstPage)).toEqual({ sessionId: a.sessionId, count: 2, userId: null })
      expect(await httpSession(secondPage)).toEqual({ sessionId: b.sessionId, count: 1, userId: null })
      await expect(firstPage.getByTestId('tab-item')).toHaveCount(1)
      await expect(secondPage.getByTestId('tab-item')).toHaveCount(1)
    } finally {
      await first.close()
      await second.close()
    }
  })
})
