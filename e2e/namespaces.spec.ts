import { expect, test, type BrowserContext, type Page } from '@playwright/test'
import type { ConnectionState, SessionSocket } from '../packages/browser/src/index.js'
import { startEcosystemApp, type EcosystemApp } from './helpers/ecosystem-app.js'

// session-socket on a namespace of its own, in a page that also opens the app's own
// socket.io-client sockets (one module, as a bundler resolves it).

declare global {
  interface Window {
    SessionSocket: typeof import('../packages/browser/src/index.js')
    io: typeof import('socket.io-client').io
    loaded: boolean
    client: SessionSocket
    chatNews: string[]
  }
}

let app: EcosystemApp | undefined

test.afterEach(async () => {
  await app?.close()
  app = undefined
})

async function openPage(context: BrowserContext): Promise<Page> {
  const page = await context.newPage()
  await page.goto(app!.url)
  await page.waitForFunction(() => window.loaded === true)
  return page
}

/** The status a client settled in, and its error's code (an Error does not cross page.evaluate whole). */
interface Settled {
  status: ConnectionState['status']
  code?: string
}

/** Creates the page's session-socket client on `path` (a namespace of the page's origin) and resolves once it reaches `settle`. */
function openClient(page: Page, path: string, settle: 'ready' | 'closed'): Promise<Settled> {
  return page.evaluate(
    ({ path, settle }) =>
      new Promise<Settled>((resolve) => {
        window.client = window.SessionSocket.createSessionSocket({ url: location.origin + path })
        window.client.on('status', (state) => {
          if (state.status === settle) resolve({ status: state.status, code: state.status === 'closed' ? state.error?.code : undefined })
        })
      }),
    { path, settle },
  )
}

test.describe('namespaces', () => {
  test("should serve the page's client on '/chat' while the app's own io('/') and io('/other') connect beside it", async ({ context }) => {
    app = await startEcosystemApp({ ss: { namespace: '/chat' } })
    app.io.of('/').on('connection', (socket) => socket.emit('hello', 'main'))
    app.io.of('/other').on('connection', (socket) => socket.emit('hello', 'other'))
    const page = await openPage(context)
    await openClient(page, '/chat', 'ready')
    // Opened after the client: socket.io-client would hand them the client's Manager if it
    // had cached it, and they would never connect.
    const heard = await page.evaluate(
      () =>
        Promise.all(
          ['/', '/other'].map(
            (path) =>
              new Promise<string>((resolve, reject) => {
                const socket = window.io(path)
                socket.once('hello', resolve)
                setTimeout(() => reject(new Error(`io('${path}') did not connect`)), 5_000)
              }),
          ),
        ),
    )
    expect(heard).toEqual(['main', 'other'])
    const { sessionId } = await page.evaluate(() => window.client.call('whoami') as Promise<{ sessionId: string }>)
    await page.evaluate(() => {
      window.chatNews = []
      window.client.on('news', (text: string) => window.chatNews.push(text))
    })
    expect(await app.ss.tabs(sessionId)).toHaveLength(1)
    app.ss.toSession(sessionId).emit('news', 'on /chat')
    await expect.poll(() => page.evaluate(() => window.chatNews)).toEqual(['on /chat'])
    expect(await page.evaluate(() => window.client.status)).toBe('ready')
  })

  test('should close a client on a namespace the server does not serve with NOT_FOUND, not leave it registering', async ({ context }) => {
    app = await startEcosystemApp({ ss: { namespace: '/chat' } })
    const page = await openPage(context)
    expect(await openClient(page, '', 'closed')).toEqual({ status: 'closed', code: 'NOT_FOUND' })
    expect(await openClient(page, '/nowhere', 'closed')).toEqual({ status: 'closed', code: 'NOT_FOUND' })
  })
})
