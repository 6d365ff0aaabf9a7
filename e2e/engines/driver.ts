/*
 * One way to drive a real browser, whatever the engine: the scenarios in e2e/scenarios talk to
 * this seam only, so the same file runs in Chromium (Playwright), Firefox (Puppeteer over
 * WebDriver BiDi) and WebKit (WebKitWebDriver over classic WebDriver).
 */

/** The three engines the scenarios run in. */
export type EngineName = 'chromium' | 'firefox' | 'webkit'

export const ENGINE_NAMES: readonly EngineName[] = ['chromium', 'firefox', 'webkit']

/** A cookie as every engine reports it. */
export interface EngineCookie {
  name: string
  value: string
  httpOnly: boolean
  /** Seconds since the epoch; undefined for a session cookie. */
  expires?: number
}

/** A function run in the page: its argument and result travel as JSON. */
export type PageFunction<A, R> = (arg: A) => R | Promise<R>

/** A tab. */
export interface EnginePage {
  /** Navigates and waits for the `load` event. */
  goto(url: string): Promise<void>
  /** Reloads and waits for the `load` event. */
  reload(): Promise<void>
  /** Runs `fn(arg)` in the page and resolves with its (awaited) result. */
  evaluate<R, A = undefined>(fn: PageFunction<A, R>, arg?: A): Promise<R>
  /** Resolves once `fn(arg)` returns something truthy in the page; navigations in between are waited out. */
  waitFor<A = undefined>(fn: PageFunction<A, unknown>, arg?: A, options?: { timeout?: number; message?: string }): Promise<void>
  close(): Promise<void>
}

/** A browser profile of its own: cookie jar, IndexedDB, Web Locks and BroadcastChannel shared by its tabs only. */
export interface EngineContext {
  newPage(): Promise<EnginePage>
  /** The cookies the profile holds for `url`'s host and would still send (expired ones left out). */
  cookies(url: string): Promise<EngineCookie[]>
  /** Deletes every cookie of the profile for `url`'s host. */
  clearCookies(url: string): Promise<void>
  /** Rewrites cookie `name` of `url`'s host to expire `inMs` from now: the browser then drops it by itself. */
  expireCookie(url: string, name: string, inMs: number): Promise<void>
  close(): Promise<void>
}

/** A running browser of one engine; one per test worker. */
export interface Engine {
  readonly name: EngineName
  newContext(): Promise<EngineContext>
  close(): Promise<void>
}

/**
 * Leaves out cookies past their expiry: Firefox's BiDi storage still lists an expired cookie
 * until it purges it, though it no longer sends it.
 */
export function unexpired(cookies: EngineCookie[]): EngineCookie[] {
  const now = Date.now() / 1000
  return cookies.filter((cookie) => cookie.expires === undefined || cookie.expires > now)
}

/** Longest wait of `waitFor` unless told. */
export const WAIT_TIMEOUT = 20_000

/**
 * `waitFor` on top of `evaluate`, for drivers without a wait of their own that outlives a
 * navigation: asks every 50 ms, and a failed evaluation (the page is between documents) counts
 * as "not yet".
 */
export async function pollInPage<A>(
  evaluate: (fn: PageFunction<A, unknown>, arg?: A) => Promise<unknown>,
  fn: PageFunction<A, unknown>,
  arg: A | undefined,
  options: { timeout?: number; message?: string } = {},
): Promise<void> {
  const timeout = options.timeout ?? WAIT_TIMEOUT
  const deadline = Date.now() + timeout
  let last: unknown
  for (;;) {
    try {
      last = await evaluate(fn, arg)
      if (last) return
    } catch (err) {
      last = err
    }
    if (Date.now() >= deadline) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const seen = last instanceof Error ? last.message : JSON.stringify(last)
  throw new Error(`${options.message ?? 'condition'} not met within ${timeout} ms (last: ${seen}): ${String(fn).slice(0, 200)}`)
}

/** Path on the page's origin that no app serves: a same-origin document that runs no SDK. */
const BLANK_PATH = '/__e2e/blank-document'

/**
 * Opens a copy of `original` in `context`, as a browser's "Duplicate tab" does: the new tab
 * starts with a copy of the original's sessionStorage (tab id included) before the page's own
 * scripts run, then loads the same URL. Done the same way in every engine: the copy first
 * loads a same-origin document that runs no script, takes the sessionStorage entries there,
 * and navigates on (sessionStorage belongs to the tab and origin, so it survives that).
 * `beforeLoad` runs in the copy after the entries are in and before the app loads.
 */
export async function openDuplicate(context: EngineContext, original: EnginePage, beforeLoad?: (copy: EnginePage) => Promise<unknown>): Promise<EnginePage> {
  const { href, origin, entries } = await original.evaluate(() => ({
    href: location.href,
    origin: location.origin,
    entries: Object.entries(sessionStorage),
  }))
  const copy = await context.newPage()
  await copy.goto(origin + BLANK_PATH)
  await copy.evaluate((pairs) => {
    for (const [key, value] of pairs) sessionStorage.setItem(key, value)
  }, entries)
  await beforeLoad?.(copy)
  await copy.goto(href)
  return copy
}
