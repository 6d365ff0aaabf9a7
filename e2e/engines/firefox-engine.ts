import puppeteer, { type Browser, type BrowserContext, type Page } from 'puppeteer-core'
import { pollInPage, unexpired, type Engine, type EngineContext, type EnginePage, type PageFunction } from './driver.js'

/** Debian's Firefox ESR. */
export const FIREFOX_PATH = '/usr/bin/firefox-esr'

/**
 * Firefox (Gecko) through Puppeteer over WebDriver BiDi, straight to the browser's own BiDi
 * endpoint (there is no geckodriver on Debian). A profile is a BiDi user context: its own
 * cookie jar and storage in the one browser process.
 *
 * @example
 * const engine = await launchFirefox()
 * const context = await engine.newContext()
 */
export async function launchFirefox(): Promise<Engine> {
  const browser: Browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX_PATH,
    headless: true,
  })
  return {
    name: 'firefox',
    newContext: async () => wrapContext(await browser.createBrowserContext()),
    close: () => browser.close(),
  }
}

function wrapContext(context: BrowserContext): EngineContext {
  const forHost = async (url: string) => {
    const host = new URL(url).hostname
    return (await context.cookies()).filter((cookie) => cookie.domain.replace(/^\./, '') === host)
  }
  return {
    // A window per tab: tabs of one window hide each other (visibilityState 'hidden'), and the
    // SDK rightly reconnects a hidden tab more slowly.
    newPage: async () => wrapPage(await context.newPage({ type: 'window' })),
    async cookies(url) {
      return unexpired((await forHost(url)).map((cookie) => ({ name: cookie.name, value: cookie.value, httpOnly: cookie.httpOnly ?? false, ...(cookie.expires > 0 ? { expires: cookie.expires } : {}) })))
    },
    async clearCookies(url) {
      const cookies = await forHost(url)
      if (cookies.length > 0) await context.deleteCookie(...cookies)
    },
    async expireCookie(url, name, inMs) {
      const cookie = (await forHost(url)).find((c) => c.name === name)
      if (!cookie) throw new Error(`no cookie ${name} for ${url}`)
      const { value, domain, path, httpOnly, sameSite } = cookie
      // BiDi takes whole seconds only.
      await context.setCookie({ name, value, domain, path, httpOnly, sameSite, expires: Math.ceil((Date.now() + inMs) / 1000) })
    },
    close: () => context.close(),
  }
}

function wrapPage(page: Page): EnginePage {
  const evaluate = <R, A>(fn: PageFunction<A, R>, arg?: A) => page.evaluate(fn as (arg: unknown) => R | Promise<R>, arg as unknown) as Promise<R>
  return {
    goto: async (url) => void (await page.goto(url, { waitUntil: 'load' })),
    reload: async () => void (await page.reload({ waitUntil: 'load' })),
    evaluate,
    waitFor: (fn, arg, options) => pollInPage(evaluate, fn, arg, options),
    close: () => page.close(),
  }
}
