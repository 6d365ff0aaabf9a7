import { expect, test, type Page } from '@playwright/test'
import type { SessionSocket } from '../packages/browser/src/index.js'
import { startEcosystemApp, type EcosystemApp } from './helpers/ecosystem-app.js'
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js'

// Socket.IO's connectionStateRecovery (skipMiddlewares: false) on a session-socket server: a
// tab that loses its network and comes back within the window is recovered by Socket.IO
// (missed events, rooms) and registered again by session-socket.

declare global {
  interface Window {
    SessionSocket: typeof import('../packages/browser/src/index.js')
    loaded: boolean
    client: SessionSocket
    heard: number[]
  }
}

let app: EcosystemApp | undefined
let proxy: TcpProxy | undefined

test.afterEach(async () => {
  await proxy?.close()
  await app?.close()
  app = proxy = undefined
})

const whoami = (page: Page) => page.evaluate(() => window.client.call('whoami') as Promise<{ sessionId: string; tabId: string }>)
const status = (page: Page) => page.evaluate(() => window.client.status)

test('should recover a tab after a network cut (missed events delivered) and register it again, in the same session and tab', async ({ context }) => {
  app = await startEcosystemApp({ io: { connectionStateRecovery: { skipMiddlewares: false, maxDisconnectionDuration: 60_000 } } })
  proxy = await startTcpProxy(app.port)
  const page = await context.newPage()
  await page.goto(proxy.url)
  await page.waitForFunction(() => window.loaded === true)
  await page.evaluate(() => {
    window.heard = []
    window.client = window.SessionSocket.createSessionSocket({ backoff: () => 200 })
    window.client.on('news', (n: number) => window.heard.push(n))
  })
  await expect.poll(() => status(page)).toBe('ready')
  const before = await whoami(page)
  // A broadcast gives the client the offset it recovers from.
  app.ss.toSession(before.sessionId).emit('news', 1)
  await expect.poll(() => page.evaluate(() => window.heard)).toEqual([1])

  const gone = new Promise<void>((resolve) => app!.ss.on('tab:close', () => resolve()))
  proxy.cut()
  await gone
  await expect.poll(() => status(page)).toBe('offline')
  app.ss.toSession(before.sessionId).emit('news', 2)
  proxy.restore()

  await expect.poll(() => status(page), { timeout: 10_000 }).toBe('ready')
  expect(await page.evaluate(() => window.client.socket.recovered)).toBe(true)
  await expect.poll(() => page.evaluate(() => window.heard)).toEqual([1, 2])
  expect(await whoami(page)).toEqual(before)
  expect(await app.ss.tabs(before.sessionId)).toHaveLength(1)
})
