import { expect, type BrowserContext, type Page } from '@playwright/test'
import type { DemoProcess } from './demo-process.js'
import { isSocketIo, recordSocketTraffic, type SocketTraffic } from './socket-traffic.js'

/*
 * The demo page as the e2e specs drive it: a tab with its status history and Socket.IO
 * traffic recorded from before its first load, and the server's view of it (SS_TEST only).
 */

/** Longest wait for a tab to be `ready` again after a disruption ends (busy machine, backoff). */
export const BACK_TIMEOUT = 30_000

/** Every status the page's badge showed, in order (reloads included), pushed by the page itself. */
export interface StatusLog {
  history(): string[]
  /**
   * Resolves once the badge shows `status` at or after position `from` of the history
   * (default: from now on, or already showing it now).
   */
  reached(status: string, options?: { from?: number; timeout?: number }): Promise<void>
}

/** A demo page in a browser context, recorded. */
export interface Tab {
  page: Page
  traffic: SocketTraffic
  statuses: StatusLog
}

/** The server's view of a request's cookie (`GET /__test/session`). */
export interface CookieSession {
  sessionId: string | null
  count: number
  userId: string | null
}

/**
 * Records every change of the `status` badge as it happens: a MutationObserver in the page
 * calls back into the test, so a state that lasts a few milliseconds (offline before the next
 * retry) is not missed by polling.
 */
async function recordStatus(page: Page): Promise<StatusLog> {
  const history: string[] = []
  const waiters = new Set<() => void>()
  await page.exposeBinding('__e2eStatus', (_source, text: string) => {
    history.push(text)
    for (const wake of [...waiters]) wake()
  })
  await page.addInitScript(() => {
    let last: string | null = null
    const check = () => {
      const text = document.querySelector('[data-testid="status"]')?.textContent ?? null
      if (text !== null && text !== last) {
        last = text
        void (window as unknown as { __e2eStatus(text: string): Promise<void> }).__e2eStatus(text)
      }
    }
    new MutationObserver(check).observe(document, { subtree: true, childList: true, characterData: true })
  })
  return {
    history: () => [...history],
    reached(status, options = {}) {
      const from = options.from ?? Math.max(0, history.length - 1)
      const timeout = options.timeout ?? BACK_TIMEOUT
      const seen = () => history.slice(from).includes(status)
      if (seen()) return Promise.resolve()
      return new Promise<void>((resolve, reject) => {
        const wake = () => {
          if (!seen()) return
          waiters.delete(wake)
          clearTimeout(timer)
          resolve()
        }
        const timer = setTimeout(() => {
          waiters.delete(wake)
          reject(new Error(`status '${status}' not shown within ${timeout} ms; history: ${history.slice(from).join(' → ')}`))
        }, timeout)
        waiters.add(wake)
      })
    },
  }
}

/**
 * Opens the demo at `url` in a new page of `context`, recording it from the start, and waits
 * for `ready`. `before` runs after recording starts and before the page loads (init scripts).
 */
export async function openRecordedTab(context: BrowserContext, url: string, before?: (page: Page) => Promise<unknown>): Promise<Tab> {
  const page = await context.newPage()
  const traffic = recordSocketTraffic(page)
  const statuses = await recordStatus(page)
  await before?.(page)
  await page.goto(url)
  await expect(page.getByTestId('status')).toHaveText('ready', { timeout: BACK_TIMEOUT })
  return { page, traffic, statuses }
}

/** Signs in with the page's form (an HTTP form post that regenerates the session). */
export async function signIn(page: Page, name: string): Promise<void> {
  await page.getByTestId('signin-name').fill(name)
  await page.getByTestId('signin-submit').click()
  await expect(page.getByTestId('user-name')).toHaveText(name, { timeout: BACK_TIMEOUT })
  await expect(page.getByTestId('status')).toHaveText('ready', { timeout: BACK_TIMEOUT })
}

/** The server's view of the context's cookie, over plain HTTP (SS_TEST only). */
export async function cookieSession(page: Page, baseUrl: string): Promise<CookieSession> {
  const response = await page.request.get(`${baseUrl}/__test/session`)
  expect(response.ok()).toBe(true)
  return (await response.json()) as CookieSession
}

/** The session and tab the server holds a socket in (RPC `test.whoami`, SS_TEST only). */
export interface Whoami {
  sessionId: string
  tabId: string
}

/**
 * Asks the server, through the page's own client (`window.client`, SS_TEST only), which
 * session and tab it holds the page's socket in. A call made while the tab is not ready waits
 * in the client's outbox and is answered after the next register.
 */
export async function serverView(page: Page): Promise<Whoami> {
  await page.waitForFunction(() => (window as { client?: unknown }).client !== undefined, null, { timeout: BACK_TIMEOUT })
  return page.evaluate(() => (window as unknown as { client: { call(method: string): Promise<Whoami> } }).client.call('test.whoami'))
}

/** The tab ids the page's tab list shows. */
export async function listedTabs(page: Page): Promise<string[]> {
  const ids = await page.getByTestId('tab-item').evaluateAll((items) => items.map((item) => item.getAttribute('data-tab-id') ?? ''))
  return ids.sort()
}

/** Waits until the page's tab list shows exactly `tabIds` (any order). */
export async function expectListedTabs(page: Page, tabIds: string[]): Promise<void> {
  await expect.poll(() => listedTabs(page), { timeout: BACK_TIMEOUT, intervals: [100, 200] }).toEqual([...tabIds].sort())
}

/** The tab id the page shows for itself. */
export async function tabIdOf(page: Page): Promise<string> {
  const text = (await page.getByTestId('tab-id').textContent()) ?? ''
  expect(text).not.toBe('')
  return text
}

/** The counter the page shows, as a number. */
export async function counterOf(page: Page): Promise<number> {
  return Number(await page.getByTestId('counter').textContent())
}

/** The link token the SDK keeps in IndexedDB, or null (a Playwright page is an engine page here). */
export { storedToken } from '../engines/demo-tab.js'

/**
 * Asserts that the page opens no Socket.IO request or WebSocket during `ms`: a bounded
 * observation window for "no reconnect loop".
 */
export async function expectNoSocketActivity(page: Page, ms: number): Promise<void> {
  const seen = await Promise.race([
    page.waitForEvent('request', { predicate: (request) => isSocketIo(request.url()), timeout: ms }).then(
      (request) => `request ${request.method()} ${request.url()}`,
      () => null,
    ),
    page.waitForEvent('websocket', { predicate: (ws) => isSocketIo(ws.url()), timeout: ms }).then(
      (ws) => `WebSocket ${ws.url()}`,
      () => null,
    ),
  ])
  expect(seen, 'no socket traffic expected').toBeNull()
}

/** How long an ended tab is watched for reconnect attempts: several of the client's first backoff steps (0.5–2 s). */
export const QUIET_MS = 3_000

/**
 * The tab ended and stays ended: the badge says `ended` with `lastEvent`, nothing followed
 * `ended` in its status history, and it opened no socket request or WebSocket during an
 * observation window of `QUIET_MS`.
 */
export async function expectEndedForGood(tab: Tab, lastEvent: string): Promise<void> {
  await expect(tab.page.getByTestId('status')).toHaveText('ended', { timeout: BACK_TIMEOUT })
  await expect(tab.page.getByTestId('last-event')).toHaveText(lastEvent)
  await expect(tab.page.getByTestId('ended-banner')).toBeVisible()
  await expect(tab.page.getByTestId('tab-item')).toHaveCount(0)
  await expectNoSocketActivity(tab.page, QUIET_MS)
  await expect(tab.page.getByTestId('status')).toHaveText('ended')
  const history = tab.statuses.history()
  expect(history.slice(history.indexOf('ended'))).toEqual(['ended'])
}

/** The environment that makes the demo log every register it handles (see `serverRegisters`). */
export const LOG_REGISTERS = { DEBUG: 'session-socket:register', DEBUG_COLORS: '0' }

/** How many registers the demo has handled so far: its `session-socket:register` debug lines (start it with `LOG_REGISTERS`). */
export function serverRegisters(demo: DemoProcess): number {
  // Without escape codes, whatever colours the test runner asked for.
  const plain = demo.output().replace(/\u001b\[[0-9;]*m/g, '')
  return plain.match(/session-socket:register\s+register tab=/g)?.length ?? 0
}
