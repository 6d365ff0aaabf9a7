import { describe, expect, it } from 'vitest'
import { defaultBackoff, memoryTabIdStorage, memoryTokenStorage, type Logger } from '@session-socket/browser'
import { resolveOptions } from '../src/options.js'
import { fakePage } from './helpers/fake-page.js'

const auth = () => {}

describe('resolveOptions', () => {
  it('should apply every default the options document', () => {
    const options = resolveOptions({}, auth)
    expect(options).toMatchObject({ path: '/session-socket', maxQueue: 100, callTimeout: 30_000, backoff: defaultBackoff, restoreTimeout: 10_000 })
    // Outside a browser: storage in memory, no page, no Web Locks.
    expect(options.page).toBeNull()
    expect(options.locks).toBeNull()
    expect(options.tokenStorage).toBeDefined()
    expect(options.tabIdStorage).toBeDefined()
  })

  it('should keep what the application gives, null included', () => {
    const tokenStorage = memoryTokenStorage()
    const tabIdStorage = memoryTabIdStorage()
    const page = fakePage()
    const backoff = () => 5
    const options = resolveOptions({ path: '/auth/ss', maxQueue: 3, callTimeout: 50, backoff, restoreTimeout: 7, tokenStorage, tabIdStorage, page, locks: null }, auth)
    expect(options).toMatchObject({ path: '/auth/ss', maxQueue: 3, callTimeout: 50, backoff, restoreTimeout: 7, tokenStorage, tabIdStorage, page, locks: null })
    expect(resolveOptions({ page: null }, auth).page).toBeNull()
  })

  it.each(['session-socket', '/session-socket/', ''])('should refuse path %j with the fix in the message', (path) => {
    expect(() => resolveOptions({ path }, auth)).toThrow(new TypeError(`path must start with "/" and not end with one, e.g. '/session-socket' (got '${path}')`))
  })

  it('should log through the logger, and be silent without one', () => {
    const lines: string[] = []
    const logger: Logger = (level, message) => lines.push(`${level}: ${message}`)
    resolveOptions({ logger }, auth).log('warn', 'storage is blocked')
    expect(lines).toEqual(['warn: storage is blocked'])
    expect(() => resolveOptions({}, auth).log('warn', 'nobody listens')).not.toThrow()
  })

  it("should lay the application's socket options over ours, but keep connecting, reconnecting, its own Manager and auth to the client", () => {
    const options = resolveOptions({ socketOptions: { transports: ['websocket'], timeout: 2000, autoConnect: true, reconnection: true, auth: { token: 'x' } } }, auth)
    expect(options.socketOptions).toEqual({ withCredentials: true, transports: ['websocket'], timeout: 2000, autoConnect: false, forceNew: true, reconnection: false, auth })
    expect(resolveOptions({}, auth).socketOptions).toEqual({ withCredentials: true, timeout: 10_000, autoConnect: false, forceNew: true, reconnection: false, auth })
  })
})
