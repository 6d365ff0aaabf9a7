import type { EngineContext, EnginePage } from './driver.js'

/*
 * The demo page (React at `/`, `<script>` at `/plain.html`) driven through the engine seam
 * only: its DOM by `data-testid`, its client as SS_TEST exposes it (`window.client`), and the
 * server's view through the page's own fetch. Clicks are DOM clicks (`element.click()`), the
 * same in every engine.
 */

/** Longest wait for a tab to be `ready` again after a disruption ends (busy machine, backoff). */
export const BACK_TIMEOUT = 30_000

/** The demo's session cookie. */
export const COOKIE_NAME = 'demo.sid'
/** The cookie the SDK sets in place of a missing session cookie (it never sets `demo.sid` itself). */
export const PROVISIONAL_COOKIE = `${COOKIE_NAME}.ss`

/** The server's view of a request's cookie (`GET /__test/session`). */
export interface ServerSession {
  sessionId: string | null
  count: number
  userId: string | null
}

/** What `test.whoami` answers: the server's view of a tab's socket. */
export interface Whoami {
  sessionId: string
  tabId: string
}

/** The text of the element `[data-testid=id]`, or null when there is none. */
export function textOf(page: EnginePage, id: string): Promise<string | null> {
  return page.evaluate((testId) => document.querySelector(`[data-testid="${testId}"]`)?.textContent ?? null, id)
}

/** Waits until `[data-testid=id]` shows `expected` (a string, or a RegExp source matched against it). */
export async function waitText(page: EnginePage, id: string, expected: string | RegExp, timeout = BACK_TIMEOUT): Promise<void> {
  const want = typeof expected === 'string' ? { exact: expected } : { pattern: expected.source }
  try {
    await page.waitFor(
      ([testId, w]) => {
        const text = document.querySelector(`[data-testid="${testId}"]`)?.textContent
        if (text === undefined || text === null) return false
        return w.exact !== undefined ? text === w.exact : new RegExp(w.pattern!).test(text)
      },
      [id, want] as [string, { exact?: string; pattern?: string }],
      { timeout },
    )
  } catch (err) {
    const now = await textOf(page, id).catch(() => '(page unreachable)')
    // What the page's client says about itself (SS_TEST), for a status that never came.
    const client = await page
      .evaluate(() => {
        const c = (window as unknown as { client?: { state: { error?: { code?: string; message?: string } } } }).client
        const lastEvent = document.querySelector('[data-testid="last-event"]')?.textContent
        return JSON.stringify({ lastEvent, state: c?.state, error: c?.state.error && { code: c.state.error.code, message: c.state.error.message } })
      })
      .catch(() => '(page unreachable)')
    throw new Error(`[data-testid=${id}] did not show ${JSON.stringify(String(expected))} within ${timeout} ms; it shows ${JSON.stringify(now)}; page: ${client}`, { cause: err })
  }
}

/** Clicks `[data-testid=id]`; throws when it is missing or disabled (a click would do nothing). */
export async function click(page: EnginePage, id: string): Promise<void> {
  const outcome = await page.evaluate((testId) => {
    const element = document.querySelector<HTMLButtonElement>(`[data-testid="${testId}"]`)
    if (!element) return 'missing'
    if (element.disabled) return 'disabled'
    element.click()
    return 'clicked'
  }, id)
  if (outcome !== 'clicked') throw new Error(`cannot click [data-testid=${id}]: ${outcome}`)
}

/** Opens `url` in a new tab of `context` and waits until its badge says `ready`. */
export async function openDemoTab(context: EngineContext, url: string): Promise<EnginePage> {
  const page = await context.newPage()
  await page.goto(url)
  await waitText(page, 'status', 'ready')
  return page
}

/** Signs in with the page's form (an HTTP form post that regenerates the session and redirects). */
export async function signIn(page: EnginePage, name: string): Promise<void> {
  await page.evaluate((value) => {
    const input = document.querySelector<HTMLInputElement>('[data-testid="signin-name"]')!
    input.value = value
    // After this evaluation returns: the submit navigates away from the document it runs in.
    setTimeout(() => input.form!.requestSubmit(), 0)
  }, name)
  await waitText(page, 'user-name', name)
  await waitText(page, 'status', 'ready')
}

/** RPC `test.whoami` through the page's own client: the session and tab the server holds its socket in. */
export async function whoami(page: EnginePage): Promise<Whoami> {
  await page.waitFor(() => (window as { client?: unknown }).client !== undefined, undefined, { timeout: BACK_TIMEOUT, message: 'window.client' })
  return page.evaluate(() => (window as unknown as { client: { call(method: string): Promise<Whoami> } }).client.call('test.whoami'))
}

/** `GET /__test/session` with the page's own fetch (its cookie jar, its origin): the session plain HTTP sees. */
export function httpSession(page: EnginePage): Promise<ServerSession> {
  return page.evaluate(async () => {
    const response = await fetch('/__test/session', { headers: { Accept: 'application/json' } })
    if (!response.ok) throw new Error(`GET /__test/session answered ${response.status}`)
    return (await response.json()) as ServerSession
  })
}

/** The tab id the page shows for itself. */
export async function tabIdOf(page: EnginePage): Promise<string> {
  const id = await textOf(page, 'tab-id')
  if (!id) throw new Error('the page shows no tab id')
  return id
}

/** The tab ids the page's tab list shows, sorted. */
export function listedTabs(page: EnginePage): Promise<string[]> {
  return page.evaluate(() => [...document.querySelectorAll('[data-testid="tab-item"]')].map((item) => item.getAttribute('data-tab-id') ?? '').sort())
}

/** Waits until the page's tab list shows exactly `tabIds`. */
export async function waitListedTabs(page: EnginePage, tabIds: string[]): Promise<void> {
  await page.waitFor(
    (want) => JSON.stringify([...document.querySelectorAll('[data-testid="tab-item"]')].map((item) => item.getAttribute('data-tab-id') ?? '').sort()) === want,
    JSON.stringify([...tabIds].sort()),
    { timeout: BACK_TIMEOUT, message: `tab list ${tabIds.join(', ')}` },
  )
}

/**
 * Starts recording, in the page, every status its client goes through from now on (until the
 * next load); read it with `statusTrail`.
 */
export async function recordStatuses(page: EnginePage): Promise<void> {
  await page.waitFor(() => (window as { client?: unknown }).client !== undefined, undefined, { timeout: BACK_TIMEOUT, message: 'window.client' })
  await page.evaluate(() => {
    const w = window as unknown as { statusTrail: string[]; client: { on(event: 'status', listener: (state: { status: string }) => void): void } }
    w.statusTrail = []
    w.client.on('status', (state) => w.statusTrail.push(state.status))
  })
}

/** The statuses since `recordStatuses`. */
export function statusTrail(page: EnginePage): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { statusTrail?: string[] }).statusTrail ?? [])
}

/** The link token the SDK keeps in IndexedDB (database 'session-socket', store 'tokens', key 'token'), or null. */
export function storedToken(page: Pick<EnginePage, 'evaluate'>): Promise<string | null> {
  return page.evaluate(
    () =>
      new Promise<string | null>((resolve, reject) => {
        const open = indexedDB.open('session-socket')
        open.onerror = () => reject(open.error)
        open.onsuccess = () => {
          const db = open.result
          if (!db.objectStoreNames.contains('tokens')) {
            db.close()
            return resolve(null)
          }
          const get = db.transaction('tokens', 'readonly').objectStore('tokens').get('token')
          get.onerror = () => reject(get.error)
          get.onsuccess = () => {
            db.close()
            resolve(typeof get.result === 'string' ? get.result : null)
          }
        }
      }),
  )
}

/** The session id an express-session cookie value names (`s:<id>.<signature>`, URL-encoded). */
export function cookieSessionId(value: string): string {
  const decoded = decodeURIComponent(value)
  if (!decoded.startsWith('s:')) throw new Error(`not a signed express-session cookie: ${value}`)
  return decoded.slice(2, decoded.lastIndexOf('.'))
}
