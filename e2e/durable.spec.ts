import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, test, type Page } from '@playwright/test'
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js'

const APP = fileURLToPath(new URL('./helpers/durable-app.mjs', import.meta.url))

interface App {
  url: string
  port: number
  start(): Promise<void>
  kill(): void
  stop(): void
}

async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** The durable app as a child process on a fixed port and data folder, restartable. */
function app(port: number, dataDir: string, socketUrl: string): App {
  let child: ChildProcess | undefined
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    start() {
      return new Promise((resolve, reject) => {
        const proc = spawn(process.execPath, [APP], {
          env: { ...process.env, PORT: String(port), DATA_DIR: dataDir, SOCKET_URL: socketUrl },
          stdio: ['ignore', 'pipe', 'pipe'],
        })
        child = proc
        let output = ''
        const timer = setTimeout(() => reject(new Error(`durable app did not start:\n${output}`)), 15_000)
        const onData = (chunk: Buffer) => {
          output += chunk.toString()
          if (output.includes('durable-app: listening')) {
            clearTimeout(timer)
            resolve()
          }
        }
        proc.stdout!.on('data', onData)
        proc.stderr!.on('data', onData)
        proc.once('exit', (code) => {
          clearTimeout(timer)
          if (!output.includes('listening')) reject(new Error(`durable app exited ${code}:\n${output}`))
        })
      })
    },
    kill() {
      child?.kill('SIGKILL')
      child = undefined
    },
    stop() {
      child?.kill('SIGKILL')
      child = undefined
    },
  }
}

let server: App | undefined
let proxy: TcpProxy | undefined
let dataDir: string | undefined

test.beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'ss-durable-e2e-'))
  const port = await freePort()
  proxy = await startTcpProxy(port)
  server = app(port, dataDir, proxy.url)
  await server.start()
})

test.afterEach(async () => {
  server?.stop()
  await proxy?.close()
  if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  server = proxy = dataDir = undefined
})

async function ready(page: Page) {
  await page.waitForFunction(() => (window as any).client.status === 'ready', undefined, { timeout: 15_000 })
}

async function identity(page: Page): Promise<{ sessionId: string; tabId: string }> {
  return page.evaluate(() => (window as any).client.call('whoami'))
}

async function send(body: object) {
  const response = await fetch(`${server!.url}/send`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
  expect(response.ok).toBe(true)
}

const ALL = Array.from({ length: 150 }, (_, i) => i + 1)

test('a tab cut from the network gets 100 tab and 50 session durable events once, in order, when it returns', async ({ page }) => {
  await page.goto(server!.url)
  await ready(page)
  const { sessionId, tabId } = await identity(page)
  proxy!.cut()
  await page.waitForFunction(() => (window as any).client.status === 'offline', undefined, { timeout: 10_000 })
  // Every third event goes to the whole session: 50 session-wide, 100 to the tab.
  await send({ tabId, sessionId, from: 1, to: 150, everyNthToSession: 3 })
  proxy!.restore()
  await ready(page)
  await expect.poll(() => page.evaluate(() => (window as any).received.length), { timeout: 15_000 }).toBe(150)
  expect(await page.evaluate(() => (window as any).received)).toEqual(ALL)
  expect(await page.evaluate(() => (window as any).gaps)).toEqual([])
  expect(await identity(page)).toEqual({ sessionId, tabId })
})

test('the same events arrive once, in order, after the server is SIGKILLed and restarted', async ({ page }) => {
  await page.goto(server!.url)
  await ready(page)
  const { sessionId, tabId } = await identity(page)
  await send({ tabId, sessionId, from: 1, to: 50, everyNthToSession: 3 })
  await expect.poll(() => page.evaluate(() => (window as any).received.length), { timeout: 15_000 }).toBe(50)
  server!.kill()
  await page.waitForFunction(() => (window as any).client.status === 'offline', undefined, { timeout: 10_000 })
  await server!.start()
  // Sent while the tab is still reconnecting to the new process (or already back).
  await send({ tabId, sessionId, from: 51, to: 150, everyNthToSession: 3 })
  await ready(page)
  await expect.poll(() => page.evaluate(() => (window as any).received.length), { timeout: 15_000 }).toBe(150)
  expect(await page.evaluate(() => (window as any).received)).toEqual(ALL)
  expect(await identity(page)).toEqual({ sessionId, tabId })
})

test('durable calls queued offline survive a page reload and run once', async ({ page }) => {
  await page.goto(server!.url)
  await ready(page)
  const before = await identity(page)
  proxy!.cut()
  await page.waitForFunction(() => (window as any).client.status === 'offline', undefined, { timeout: 10_000 })
  await page.evaluate(() => {
    for (const n of [1, 2, 3]) void (window as any).durable.call('order.place', { n }).catch(() => {})
  })
  await expect.poll(() => page.evaluate(async () => (await (window as any).durable.list()).length), { timeout: 5_000 }).toBe(3)
  // The page is served directly: it reloads while its socket's route is still cut.
  await page.reload()
  await page.waitForFunction(() => (window as any).client.status === 'offline', undefined, { timeout: 10_000 })
  expect(await page.evaluate(async () => (await (window as any).durable.list()).map((c: { params: unknown }) => c.params))).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }])
  proxy!.restore()
  await ready(page)
  await expect.poll(() => page.evaluate(() => (window as any).settled.length), { timeout: 15_000 }).toBe(3)
  expect(await page.evaluate(() => (window as any).settled)).toEqual([1, 2, 3].map((n) => ({ ok: true, result: { placed: n } })))
  const orders = (await (await fetch(`${server!.url}/orders`)).json()) as Array<{ n: number; times: number }>
  expect(orders).toEqual([1, 2, 3].map((n) => ({ n, times: 1 })))
  expect(await identity(page)).toEqual(before)
  expect(await page.evaluate(async () => (await (window as any).durable.list()).length)).toBe(0)
})
