import { expect, type BrowserContext, type Cookie, type Page } from '@playwright/test'
import type { ConnectionState } from '@session-socket/browser'

/** The demo's session cookie. */
export const COOKIE_NAME = 'demo.sid'

/** Reconnects wait for backoff, a restart, a busy machine: bounded, but generous. */
export const RECONNECT = { timeout: 20_000 }

/** `GET /__test/session` (SS_TEST only): the server's view of a request's cookie. */
export interface ServerSession {
  /** null when the cookie names no stored session (or no cookie came). */
  sessionId: string | null
  count: number
  userId: string | null
}

/** What `test.whoami` answers: the server's view of a tab's socket. */
export interface Whoami {
  sessionId: string
  tabId: string
}

/** The demo page's client as SS_TEST exposes it (`window.client`), reduced to what specs use. */
interface PageClient {
  status: ConnectionState['status']
  socket: { id: string | undefined }
  call(method: string, params?: unknown): Promise<unknown>
  on(event: 'status', listener: (state: ConnectionState) => void): () => void
}

type TestWindow = Window & { client?: PageClient; statusTrail?: string[] }

/** Opens the demo in a new tab of `context` and waits until its socket is ready. */
export async function openTab(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage()
  await page.goto(url)
  await expect(page.getByTestId('status')).toHaveText('ready', RECONNECT)
  return page
}

/** Signs in over the page's HTML form (POST /login, regenerate, redirect). */
export async function signIn(page: Page, name: string): Promise<void> {
  await page.getByTestId('signin-name').fill(name)
  await page.getByTestId('signin-submit').click()
  await expect(page.getByTestId('user-name')).toHaveText(name, RECONNECT)
  await expect(page.getByTestId('status')).toHaveText('ready', RECONNECT)
}

/**
 * `GET /__test/session` as the page's own `fetch` (its origin, its cookie jar, through
 * whatever proxy the page was loaded from): the session plain HTTP requests of the page see.
 */
export function httpSession(page: Page): Promise<ServerSession> {
  return page.evaluate(async () => {
    const response = await fetch('/__test/session', { headers: { Accept: 'application/json' } })
    if (!response.ok) throw new Error(`GET /__test/session answered ${response.status}`)
    return (await response.json()) as ServerSession
  })
}

/** Waits for the page to expose its client (SS_TEST: after `/api/me` answered). */
async function pageClient(page: Page): Promise<void> {
  await page.waitForFunction(() => (window as TestWindow).client !== undefined, null, { timeout: 10_000 })
}

/** RPC `test.whoami` through the page's socket: the session and tab the server holds it in. */
export async function whoami(page: Page): Promise<Whoami> {
  await pageClient(page)
  return page.evaluate(() => (window as TestWindow).client!.call('test.whoami') as Promise<Whoami>)
}

/** The Engine.IO session id of the page's socket: it changes on every reconnect. */
export async function socketId(page: Page): Promise<string | undefined> {
  await pageClient(page)
  return page.evaluate(() => (window as TestWindow).client!.socket.id)
}

/** Starts recording every status the page's client goes through; read with `statusTrail`. */
export async function recordStatuses(page: Page): Promise<void> {
  await pageClient(page)
  await page.evaluate(() => {
    const w = window as TestWindow
    w.statusTrail = []
    w.client!.on('status', (state) => w.statusTrail!.push(state.status))
  })
}

/** Statuses since `recordStatuses`. */
export function statusTrail(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as TestWindow).statusTrail ?? [])
}

/**
 * The cookie that names the browser's session, if any: session-socket's provisional cookie
 * (`demo.sid.ss`, which the SDK sets instead of the session cookie and the server reads while the
 * session cookie is missing or unusable) when the browser holds one, else the session cookie.
 */
export async function sessionCookie(context: BrowserContext): Promise<Cookie | undefined> {
  const cookies = await context.cookies()
  return cookies.find((cookie) => cookie.name === `${COOKIE_NAME}.ss`) ?? cookies.find((cookie) => cookie.name === COOKIE_NAME)
}

/**
 * The session id an express-session cookie value names (`s:<id>.<signature>`, URL-encoded),
 * without checking the signature.
 */
export function cookieSessionId(value: string): string {
  const decoded = decodeURIComponent(value)
  if (!decoded.startsWith('s:')) throw new Error(`not a signed express-session cookie: ${value}`)
  return decoded.slice(2, decoded.lastIndexOf('.'))
}

/** Clicks "+1 over the socket" and waits until the page shows `expected`. */
export async function incrementOverRpc(page: Page, expected: number): Promise<void> {
  await page.getByTestId('counter-rpc').click()
  await expect(page.getByTestId('counter')).toHaveText(String(expected), RECONNECT)
}
