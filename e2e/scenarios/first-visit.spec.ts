import { startBundleServer, type BundleServer } from '../helpers/bundle-server.js'
import { disposeDemos, startDemo, type DemoProcess } from '../helpers/demo-process.js'
import { startStripProxy, type ProxiedExchange, type StripProxy } from '../helpers/strip-proxy.js'
import { PROVISIONAL_COOKIE, click, cookieSessionId, httpSession, waitText, whoami } from '../engines/demo-tab.js'
import { expect, test } from '../engines/engine-test.js'

// A first visit behind a caching proxy that strips Set-Cookie from the page, its assets and
// other HTTP: the only place the visitor can get a session is the socket. It does, in every
// engine, and plain HTTP afterwards shares that session.

let demo: DemoProcess | undefined
let server: BundleServer | undefined
let proxy: StripProxy | undefined

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus) {
    if (demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
    if (proxy) await testInfo.attach('proxy-exchanges', { body: JSON.stringify(proxy.exchanges(), null, 2), contentType: 'application/json' })
  }
  await proxy?.close()
  await server?.close()
  proxy = server = demo = undefined
  await disposeDemos()
})

const onSocketPath = (exchange: ProxiedExchange) => exchange.url.startsWith('/socket.io/') || exchange.url.startsWith('/session-socket/')

test('should get its session from the socket when nothing else may set a cookie, and share it with plain HTTP', async ({ profile }) => {
  demo = await startDemo()
  proxy = await startStripProxy(demo.port)
  const page = await profile.newPage()
  // The page, its assets and GET /api/me load; the socket waits at the proxy.
  proxy.holdEngineIo()
  await page.goto(proxy.url)
  await expect.poll(() => proxy!.exchanges().some((exchange) => exchange.url === '/api/me')).toBe(true)
  await expect.poll(() => proxy!.exchanges().some((exchange) => exchange.url.startsWith('/socket.io/'))).toBe(true)
  await waitText(page, 'status', /^(connecting|registering)$/)
  expect(await profile.cookies(proxy.url)).toEqual([])
  expect(proxy.exchanges().filter((exchange) => !onSocketPath(exchange)).length).toBeGreaterThan(0)

  proxy.releaseEngineIo()
  await waitText(page, 'status', 'ready')
  await waitText(page, 'last-event', 'connected: new link for this browser')

  // Now the browser has the SDK's provisional cookie (the session cookie only ever comes from
  // the app), and it names the session the socket is in.
  const socketSide = await whoami(page)
  const cookie = (await profile.cookies(proxy.url)).find((c) => c.name === PROVISIONAL_COOKIE)
  expect(cookie).toBeDefined()
  expect(cookieSessionId(cookie!.value)).toBe(socketSide.sessionId)
  expect(await httpSession(page)).toEqual({ sessionId: socketSide.sessionId, count: 0, userId: null })
  const passed = proxy.exchanges().filter((exchange) => exchange.setCookie === 'passed')
  expect(passed.length).toBeGreaterThan(0)
  expect(passed.filter((exchange) => !onSocketPath(exchange))).toEqual([])

  // HTTP and RPC count in that one session, once each.
  await click(page, 'counter-http')
  await waitText(page, 'counter', '1')
  await click(page, 'counter-rpc')
  await waitText(page, 'counter', '2')
  await click(page, 'counter-http')
  await waitText(page, 'counter', '3')
  expect(await httpSession(page)).toEqual({ sessionId: socketSide.sessionId, count: 3, userId: null })
  expect(await whoami(page)).toEqual(socketSide)
  // The proxy did strip what the counter POSTs tried to set: the session did not need it.
  const posts = proxy.exchanges().filter((exchange) => exchange.method === 'POST' && exchange.url === '/api/counter')
  expect(posts.map((exchange) => exchange.setCookie)).toEqual(['stripped', 'stripped'])
})

test('should keep the Set-Cookie of the WebSocket handshake (101) when the socket is WebSocket-only', async ({ profile }) => {
  // The SDK sets its provisional cookie on the Engine.IO handshake response; with WebSocket only,
  // that response is the 101 upgrade, and the proxy strips every other Set-Cookie.
  server = await startBundleServer()
  proxy = await startStripProxy(Number(new URL(server.url).port))
  const page = await profile.newPage()
  await page.goto(`${proxy.url}/iife.html?transports=websocket`)
  await page.waitFor(() => (window as unknown as { client?: { status: string } }).client?.status === 'ready', undefined, { message: 'client ready' })
  expect(proxy.exchanges().filter((exchange) => exchange.url.startsWith('/socket.io/')).map((exchange) => exchange.kind)).toEqual(['upgrade'])
  const me = await page.evaluate(() => (window as unknown as { client: { call(m: string): Promise<{ sessionId: string }> } }).client.call('whoami'))
  const cookies = await profile.cookies(proxy.url)
  expect(cookies.map((cookie) => cookie.name)).toEqual(['connect.sid.ss'])
  expect(cookieSessionId(cookies[0]!.value)).toBe(me.sessionId)
})
