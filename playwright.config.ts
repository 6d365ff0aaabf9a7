import { defineConfig } from '@playwright/test'
import type { EngineOptions } from './e2e/engines/engine-test.js'

// WebdriverIO's client logs every session it opens at `info`; read once, when its modules load.
process.env.WDIO_LOG_LEVEL ??= 'warn'

// Real browsers from Debian (no browser download on these machines); see shared/TOOLING.md.
// Specs run built output: `npm run build` first. e2e/scenarios run in every engine (one
// project each); the other specs are Chromium-only (Playwright's own page API).
export default defineConfig<EngineOptions>({
  testDir: 'e2e',
  workers: 2,
  retries: 0,
  reporter: 'list',
  timeout: 30_000,
  expect: { timeout: 5_000 },
  forbidOnly: Boolean(process.env.CI),
  use: {
    browserName: 'chromium',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    },
  },
  projects: [
    { name: 'chromium', use: { engineName: 'chromium' } },
    // Firefox ESR over WebDriver BiDi (Puppeteer); WebKitGTK's MiniBrowser over classic WebDriver, under Xvfb.
    { name: 'firefox', testMatch: 'scenarios/**/*.spec.ts', use: { engineName: 'firefox' } },
    { name: 'webkit', testMatch: 'scenarios/**/*.spec.ts', use: { engineName: 'webkit' } },
  ],
})
