import { test as base } from '@playwright/test'
import { launchChromium } from './chromium-engine.js'
import type { Engine, EngineContext, EngineName } from './driver.js'
import { launchFirefox } from './firefox-engine.js'
import { launchWebKit } from './webkit-engine.js'

export type { Engine, EngineContext, EngineName, EnginePage } from './driver.js'

/** The option a Playwright project sets to pick the engine of its scenarios. */
export interface EngineOptions {
  engineName: EngineName
}

interface EngineWorkerFixtures extends EngineOptions {
  /** The worker's browser of `engineName`, launched once per worker. */
  engine: Engine
}

interface EngineTestFixtures {
  /** A fresh browser profile (cookie jar, storage) for the test, closed after it. */
  profile: EngineContext
  /** Opens another fresh profile (another browser of the same engine), closed after the test. */
  newProfile: () => Promise<EngineContext>
}

/**
 * Playwright Test with a browser of the project's engine: a scenario written against
 * `profile` (and `newProfile`) runs unchanged in Chromium, Firefox and WebKit, once per
 * project.
 *
 * @example
 * test('should reach ready', async ({ profile }) => {
 *   const page = await profile.newPage()
 *   await page.goto(url)
 * })
 */
export const test = base.extend<EngineTestFixtures, EngineWorkerFixtures>({
  engineName: ['chromium', { option: true, scope: 'worker' }],
  engine: [
    async ({ engineName, playwright, launchOptions }, use) => {
      const engine =
        engineName === 'chromium' ? await launchChromium(playwright.chromium, launchOptions) : engineName === 'firefox' ? await launchFirefox() : await launchWebKit()
      await use(engine)
      await engine.close()
    },
    { scope: 'worker', timeout: 60_000 },
  ],
  profile: async ({ engine }, use) => {
    const context = await engine.newContext()
    await use(context)
    await context.close()
  },
  newProfile: async ({ engine }, use) => {
    const opened: EngineContext[] = []
    await use(async () => {
      const context = await engine.newContext()
      opened.push(context)
      return context
    })
    await Promise.all(opened.map((context) => context.close()))
  },
})

export { expect } from '@playwright/test'
