import type { Browser, BrowserContext, LaunchOptions, Page } from '@playwright/test'
import type { chromium as ChromiumType } from '@playwright/test'
import { pollInPage, unexpired, type Engine, type EngineContext, type EngineCookie, type EnginePage, type PageFunction } from './driver.js'

/**
 * Chromium through Playwright: a context per profile, a page per tab.
 *
 * @example
 * const engine = await launchChromium(playwright.chromium, launchOptions)
 * const context = await engine.newContext()
 */
export async function launchChromium(chromium: typeof ChromiumType, launchOptions: LaunchOptions): Promise<Engine> {
  const browser: Browser = await chromium.launch(launchOptions)
  return {
    name: 'chromium',
    newContext: async () => wrapContext(await browser.newContext()),
    close: () => browser.close(),
  }
}

function wrapContext(context: BrowserContext): EngineContext {
  return {
    newPage: async () => wrapPage(await context.newPage()),
    async cookies(url) {
      return unexpired((await context.cookies(url)).map(
        (cookie): EngineCookie => ({ name: cookie.name, value: cookie.value, httpOnly: cookie.httpOnly, ...(cookie.expires > 0 ? { expires: cookie.expires } : {}) }),
      ))
    },
    async clearCookies(url) {
      await context.clearCookies({ domain: new URL(url).hostname })
    },
    async expireCookie(url, name, inMs) {
      const cookie = (await context.cookies(url)).find((c) => c.name === name)
      if (!cookie) throw new Error(`no cookie ${name} for ${url}`)
      await context.addCookies([{ ...cookie, expires: (Date.now() + inMs) / 1000 }])
    },
    close: () => context.close(),
  }
}

function wrapPage(page: Page): EnginePage {
  // The driver serialises `fn` and `arg` as it does for any page function; the seam types them once.
  const evaluate = <R, A>(fn: PageFunction<A, R>, arg?: A) => page.evaluate(fn as (arg: unknown) => R | Promise<R>, arg as unknown)
  return {
    goto: async (url) => void (await page.goto(url)),
    reload: async () => void (await page.reload()),
    evaluate,
    waitFor: (fn, arg, options) => pollInPage(evaluate, fn, arg, options),
    close: () => page.close(),
  }
}
