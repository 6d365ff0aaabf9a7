import { expect, test, type Page } from '@playwright/test'
import type { ConnectionState } from '@session-socket/browser'
import { disposeDemos, startDemo, type DemoProcess } from './helpers/demo-process.js'
import { RECONNECT, cookieSessionId, httpSession, incrementOverRpc, openTab, sessionCookie, signIn, whoami } from './helpers/demo-page.js'
import { RECOMMENDED_HEADERS, startNginx, type Nginx } from './helpers/nginx.js'

// The demo behind Debian's nginx, with the config docs/deploy.md recommends and with the two
// Host settings seen in the wild that refuse every handshake. WebSocket only: the upgrade
// itself goes through nginx, and no long-polling request can hide a refused handshake.

let demo: DemoProcess | undefined
let nginx: Nginx | undefined

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus) {
    if (demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
    if (nginx) await testInfo.attach('nginx', { body: `${nginx.config}\n--- error.log\n${nginx.errorLog()}`, contentType: 'text/plain' })
  }
  await nginx?.close()
  nginx = demo = undefined
  await disposeDemos()
})

async function behindNginx(headers: Record<string, string>, env: Record<string, string> = {}, tls = false): Promise<Nginx> {
  demo = await startDemo({ env: { WEBSOCKET_ONLY: '1', ...env } })
  nginx = await startNginx({ upstreamPort: demo.port, headers, tls })
  return nginx
}

/** The page's client state (SS_TEST exposes the client once `/api/me` answered). */
/** The page's client state; its error's code read in the page (an Error does not cross as it is). */
async function clientState(page: Page): Promise<{ status: ConnectionState['status']; code: string | undefined }> {
  await page.waitForFunction(() => (window as { client?: unknown }).client !== undefined, null, { timeout: 10_000 })
  return page.evaluate(() => {
    const state = (window as unknown as { client: { state: ConnectionState } }).client.state
    return { status: state.status, code: 'error' in state ? (state.error as { code?: string } | undefined)?.code : undefined }
  })
}

test.describe('behind nginx', () => {
  test('should work end to end with the recommended config: WebSocket through the proxy, sign-in, HTTP and RPC in one session', async ({ context }) => {
    const proxy = await behindNginx(RECOMMENDED_HEADERS, { TRUST_PROXY: 'loopback' })
    const page = await openTab(context, proxy.url)
    await signIn(page, 'Ada')
    const socketSession = await whoami(page)
    expect((await httpSession(page)).sessionId).toBe(socketSession.sessionId)
    await incrementOverRpc(page, 1)
    await page.getByTestId('counter-http').click()
    await expect(page.getByTestId('counter')).toHaveText('2', RECONNECT)
    expect(demo!.output()).not.toContain('refused a Socket.IO handshake')
  })

  test('should terminate TLS with the recommended config and TRUST_PROXY: a Secure cookie from sign-in and again from a restore', async ({ browser }) => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true })
    try {
      const proxy = await behindNginx(RECOMMENDED_HEADERS, { TRUST_PROXY: 'loopback' }, true)
      const page = await openTab(context, proxy.url)
      await signIn(page, 'Ada')
      const { sessionId } = await whoami(page)
      expect(await sessionCookie(context)).toMatchObject({ secure: true })
      // The cookie is lost: the HTTP +1 finds no session, the page restores it and counts.
      await context.clearCookies()
      await page.getByTestId('counter-http').click()
      await expect(page.getByTestId('counter')).toHaveText('1', RECONNECT)
      const restored = await sessionCookie(context)
      expect(restored).toMatchObject({ secure: true })
      expect(cookieSessionId(restored!.value)).toBe(sessionId)
    } finally {
      await context.close()
    }
  })

  test("should work behind nginx's default Host (the upstream's name) when TRUST_PROXY trusts it and it forwards X-Forwarded-Host", async ({ context }) => {
    const { Host: _dropped, ...forwarded } = RECOMMENDED_HEADERS
    const proxy = await behindNginx(forwarded, { TRUST_PROXY: 'loopback' })
    const page = await openTab(context, proxy.url)
    await signIn(page, 'Ada')
    expect((await httpSession(page)).userId).toBe('ada')
  })

  for (const [name, headers] of [
    ["nginx's default Host (the upstream's name)", (({ Host: _dropped, ...rest }) => rest)(RECOMMENDED_HEADERS)],
    ['proxy_set_header Host $host (drops the port)', { ...RECOMMENDED_HEADERS, Host: '$host' }],
  ] as const) {
    test(`should never get ready behind ${name} without TRUST_PROXY, show it in the page, and log the fix once`, async ({ context }) => {
      const proxy = await behindNginx(headers)
      const page = await context.newPage()
      await page.goto(proxy.url)
      // Every handshake is refused: the client ends closed with FORBIDDEN, it does not retry.
      await expect.poll(() => clientState(page), RECONNECT).toEqual({ status: 'closed', code: 'FORBIDDEN' })
      await expect(page.getByTestId('status')).not.toHaveText('ready')
      const output = demo!.output()
      expect(output).toContain(`session-socket: refused a Socket.IO handshake from Origin ${proxy.url}: it is not the host the server was asked for`)
      expect(output).toContain('proxy_set_header Host $http_host;')
      expect(output.split('refused a Socket.IO handshake').length - 1).toBe(1)
    })
  }
})
