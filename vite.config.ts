import { defineConfig } from 'vitest/config'

const src = (pkg: string, file = 'index.ts') => new URL(`./packages/${pkg}/src/${file}`, import.meta.url).pathname

// Tests import packages by their public names; these aliases resolve them to source so
// `vitest` needs no build. The library builds live in each package's own config.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@session-socket\/protocol$/, replacement: src('protocol') },
      { find: /^@session-socket\/node$/, replacement: src('node') },
      { find: /^@session-socket\/node\/sqlite$/, replacement: src('node', 'stores/sqlite.ts') },
      { find: /^@session-socket\/node\/redis$/, replacement: src('node', 'stores/redis.ts') },
      { find: /^@session-socket\/browser$/, replacement: src('browser') },
      { find: /^@session-socket\/browser\/react$/, replacement: src('browser', 'react/index.ts') },
      { find: /^@session-socket\/browser\/durable$/, replacement: src('browser', 'durable.ts') },
      // Test helpers both packages' tests use (a real app server, a browser's cookie jar, tabs,
      // redis-server): a private folder, not a package, named like one.
      { find: /^@session-socket\/test-helpers\/([\w-]+)$/, replacement: new URL('./test-helpers/$1.ts', import.meta.url).pathname },
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.{ts,tsx}', 'demo/test/**/*.test.ts', 'packaging/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
    // Memory checks (bad-input) call gc() before measuring.
    execArgv: ['--expose-gc'],
  },
})
