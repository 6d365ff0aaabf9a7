import net from 'node:net'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { expect, test, type BrowserContext, type Page } from '@playwright/test'
import { disposeDemos, startDemo, type DemoProcess } from './helpers/demo-process.js'

// The demo app as a user sees it (built demo: `npm run build && npm run build -w demo`).

let demo: DemoProcess | undefined

/** The demo server of the running test. */
function server(): DemoProcess {
  if (!demo) throw new Error('no demo server: start one in beforeEach')
  return demo
}

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
  demo = undefined
  await disposeDemos()
})

interface ServerSession {
  sessionId: string | null
  count: number
  userId: string | null
}

/** The server's view of the page's cookie (SS_TEST only). */
async function cookieSession(page: Page): Promise<ServerSession> {
  const response = await page.request.get(`${server().url}/__test/session`)
  expect(response.ok()).toBe(true)
  return (await response.json()) as ServerSession
}

async function openTab(context: BrowserContext): Promise<Page> {
  const page = await context.newPage()
  await page.goto(server().url)
  await expect(page.getByTestId('status')).toHaveText('ready')
  return page
}

async function signIn(page: Page, name: string): Promise<void> {
  await page.getByTestId('signin-name').fill(name)
  await page.getByTestId('signin-submit').click()
  await expect(page.getByTestId('user-name')).toHaveText(name)
  await expect(page.getByTestId('status')).toHaveText('ready')
}

test.describe('the demo page', () => {
  test.beforeEach(async () => {
    demo = await startDemo()
  })

  test('should sign in with a name over an HTTP form post and stay ready', async ({ context }) => {
    const page = await openTab(context)
    await signIn(page, 'Ada')
    const session = await cookieSession(page)
    expect(session.userId).toBe('ada')
    // The socket is in the session the cookie names.
    await expect(page.getByTestId('session-id')).toHaveText(session.sessionId!)
    await expect(page.getByTestId('tab-id')).not.toBeEmpty()
  })

  test('should change one session counter over HTTP and over RPC', async ({ context }) => {
    const page = await openTab(context)
    await signIn(page, 'Ada')
    await expect(page.getByTestId('counter')).toHaveText('0')
    await page.getByTestId('counter-http').click()
    await expect(page.getByTestId('counter')).toHaveText('1')
    await page.getByTestId('counter-rpc').click()
    await expect(page.getByTestId('counter')).toHaveText('2')
    await page.getByTestId('counter-http').click()
    await expect(page.getByTestId('counter')).toHaveText('3')
    const session = await cookieSession(page)
    expect(session.count).toBe(3)
    await expect(page.getByTestId('session-id')).toHaveText(session.sessionId!)
  })

  test('should list both tabs of the session, each marking itself as you', async ({ context }) => {
    const first = await openTab(context)
    await signIn(first, 'Ada')
    const second = await openTab(context)
    await expect(second.getByTestId('user-name')).toHaveText('Ada')
    const ids = [await first.getByTestId('tab-id').textContent(), await second.getByTestId('tab-id').textContent()]
    expect(ids[0]).not.toBe(ids[1])
    for (const [page, own, other] of [
      [first, ids[0], ids[1]],
      [second, ids[1], ids[0]],
    ] as const) {
      const items = page.getByTestId('tab-list').getByTestId('tab-item')
      await expect(items).toHaveCount(2)
      await expect(items.and(page.locator(`[data-tab-id="${own}"]`))).toHaveAttribute('data-you', 'true')
      await expect(items.and(page.locator(`[data-tab-id="${other}"]`))).toHaveAttribute('data-you', 'false')
    }
    // Both tabs are in one session, and a change in one shows in the other.
    await expect(second.getByTestId('session-id')).toHaveText((await first.getByTestId('session-id').textContent())!)
    await second.getByTestId('counter-rpc').click()
    await expect(first.getByTestId('counter')).toHaveText('1')

    // A tab that closes leaves the list.
    await second.close()
    await expect(first.getByTestId('tab-item')).toHaveCount(1)
  })

  test('should keep the tab in its session across a clean restart (SIGTERM, exit 0)', async ({ context }) => {
    const page = await openTab(context)
    await signIn(page, 'Ada')
    await page.getByTestId('counter-rpc').click()
    await expect(page.getByTestId('counter')).toHaveText('1')
    const before = await page.getByTestId('session-id').textContent()

    expect(await server().stop()).toEqual({ code: 0, signal: null })
    await expect(page.getByTestId('status')).not.toHaveText('ready')
    await server().start()
    await expect(page.getByTestId('status')).toHaveText('ready', { timeout: 10_000 })
    await expect(page.getByTestId('last-event')).toHaveText('reconnected after server restart')
    await expect(page.getByTestId('session-id')).toHaveText(before!)
    await page.getByTestId('counter-http').click()
    await expect(page.getByTestId('counter')).toHaveText('2')
  })
})

test.describe('start-up errors', () => {
  test('should exit 1 with one line when the port is taken', async () => {
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const { port } = blocker.address() as net.AddressInfo
    try {
      await expect(startDemo({ port })).rejects.toThrow(new RegExp(`exited \\(code 1[^]*demo: port ${port} on 127.0.0.1 is already in use`))
    } finally {
      blocker.close()
    }
  })

  test('should exit 1 with one line when the data folder is not writable', async () => {
    // A path below a regular file: not creatable even for root, unlike a chmod-ed folder.
    const dir = mkdtempSync(path.join(tmpdir(), 'ss-demo-blocked-'))
    const file = path.join(dir, 'a-file')
    writeFileSync(file, '')
    try {
      await expect(startDemo({ dataDir: path.join(file, 'data') })).rejects.toThrow(/exited \(code 1[^]*demo: data folder .* is not writable \(ENOTDIR\); set DATA_DIR/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
