// @vitest-environment jsdom
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Logger, TabIdStorage } from '@session-socket/browser'
import { fakeLocks } from './helpers/fake-locks.js'

/**
 * A sessionStorage of one tab. Each test "document" imports the module afresh (vi.resetModules),
 * as a reload or a new tab runs the SDK afresh; the tabs of a test share the real
 * BroadcastChannel, as tabs of one browser do.
 */
class TabStorage implements Storage {
  readonly #items = new Map<string, string>()
  constructor(copyOf?: TabStorage) {
    if (copyOf) for (const [key, value] of copyOf.#items) this.#items.set(key, value)
  }
  get length() {
    return this.#items.size
  }
  key(index: number) {
    return [...this.#items.keys()][index] ?? null
  }
  getItem(key: string) {
    return this.#items.get(key) ?? null
  }
  setItem(key: string, value: string) {
    this.#items.set(key, String(value))
  }
  removeItem(key: string) {
    this.#items.delete(key)
  }
  clear() {
    this.#items.clear()
  }
}

/** Runs the SDK in a new document of a tab whose sessionStorage is `storage`. */
async function loadDocument(storage: Storage, options: { claimTimeout?: number; logger?: Logger } = {}): Promise<TabIdStorage> {
  vi.resetModules()
  const { sessionStorageTabId } = await import('../src/session-storage-tab-id.js')
  return sessionStorageTabId({ storage, channel: channelName, ...options })
}

/** Leaves the document as the browser does on reload, navigation or close. */
function unload() {
  window.dispatchEvent(new Event('pagehide'))
}

let channelName = ''
let tests = 0

afterEach(() => {
  // Documents of earlier tests stop answering claims: their pagehide closes their channel.
  unload()
  channelName = `session-socket:tabs:test-${++tests}`
})
channelName = `session-socket:tabs:test-${++tests}`

describe('sessionStorageTabId', () => {
  it('should mint an id for a new tab and store it', async () => {
    const storage = new TabStorage()
    const tab = await loadDocument(storage)
    const id = await tab.get()
    expect(id).toMatch(/^[A-Za-z0-9_-]{16}$/)
    expect(storage.getItem('session-socket:tab-id')).toBe(id)
  })

  it('should keep the tab id across a reload, without waiting for other tabs', async () => {
    const storage = new TabStorage()
    const id = await (await loadDocument(storage)).get()
    unload()
    const reloaded = await loadDocument(storage, { claimTimeout: 5_000 })
    const started = Date.now()
    expect(await reloaded.get()).toBe(id)
    expect(Date.now() - started).toBeLessThan(1_000)
  })

  it('should take a new id in a duplicated tab while the original is open', async () => {
    const original = new TabStorage()
    const id = await (await loadDocument(original)).get()
    // Chromium's "Duplicate tab" copies sessionStorage into the new tab.
    const copy = new TabStorage(original)
    const lines: string[] = []
    const duplicate = await loadDocument(copy, { claimTimeout: 5_000, logger: (_level, message) => lines.push(message) })
    const started = Date.now()
    const duplicateId = await duplicate.get()
    // The answer arrives well before the timeout.
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(duplicateId).not.toBe(id)
    expect(copy.getItem('session-socket:tab-id')).toBe(duplicateId)
    expect(original.getItem('session-socket:tab-id')).toBe(id)
    expect(lines.join('\n')).toMatch(/duplicated tab/)
  })

  it('should keep a copied id that no open tab holds, after a bounded wait', async () => {
    const storage = new TabStorage()
    // An id without the unload marker, and no document holding it: a tab whose pagehide never ran.
    storage.setItem('session-socket:tab-id', 'orphan-tab-id-123')
    const tab = await loadDocument(storage, { claimTimeout: 40 })
    expect(await tab.get()).toBe('orphan-tab-id-123')
  })

  it('should answer claims for the id the server assigned, once set', async () => {
    const original = new TabStorage()
    const tab = await loadDocument(original)
    await tab.get()
    tab.set('assigned-by-server-1')
    const duplicate = await loadDocument(new TabStorage(original), { claimTimeout: 5_000 })
    const duplicateId = await duplicate.get()
    expect(duplicateId).not.toBe('assigned-by-server-1')
  })

  it('should give every client of one document the same id', async () => {
    vi.resetModules()
    const { sessionStorageTabId } = await import('../src/session-storage-tab-id.js')
    const storage = new TabStorage()
    const first = sessionStorageTabId({ storage, channel: channelName })
    const second = sessionStorageTabId({ storage, channel: channelName })
    expect(second).toBe(first)
    expect(await second.get()).toBe(await first.get())
  })

  it('should fall back to memory with one warning when sessionStorage is blocked', async () => {
    const blocked = new TabStorage()
    blocked.getItem = () => {
      throw new DOMException('Access is denied for this document.', 'SecurityError')
    }
    const warnings: string[] = []
    const tab = await loadDocument(blocked, { logger: (level, message) => level === 'warn' && warnings.push(message) })
    const id = await tab.get()
    expect(id).toBeNull()
    tab.set('minted-by-client-1')
    expect(await tab.get()).toBe('minted-by-client-1')
    expect(warnings).toEqual([expect.stringMatching(/sessionStorage is unavailable/)])
  })
})

describe('sessionStorageTabId with Web Locks', () => {
  afterEach(() => {
    vi.unstubAllGlobals()
  })

  it('should take a new id in a copy while the original holds its lock, however busy the original is', async () => {
    const locks = fakeLocks()
    vi.stubGlobal('navigator', { locks })
    const original = new TabStorage()
    const first = await (await loadDocument(original, { claimTimeout: 0 })).get()
    expect(locks.held.has(`session-socket:tab:${first}`)).toBe(true)
    // No BroadcastChannel answer can come in 0 ms: only the lock tells the copy apart.
    const copy = await (await loadDocument(new TabStorage(original), { claimTimeout: 0 })).get()
    expect(copy).not.toBe(first)
    expect(locks.held.has(`session-socket:tab:${copy}`)).toBe(true)
  })

  it('should keep a copied id whose tab is gone, at once', async () => {
    const locks = fakeLocks()
    vi.stubGlobal('navigator', { locks })
    const storage = new TabStorage()
    storage.setItem('session-socket:tab-id', 'left-behind')
    const tab = await loadDocument(storage, { claimTimeout: 10_000 })
    expect(await tab.get()).toBe('left-behind')
  })

  it('should let go of its lock on pagehide (back/forward cache) and take it again on pageshow', async () => {
    const locks = fakeLocks()
    vi.stubGlobal('navigator', { locks })
    const tab = await loadDocument(new TabStorage())
    const id = await tab.get()
    window.dispatchEvent(new Event('pagehide'))
    await new Promise((resolve) => setTimeout(resolve, 0))
    expect(locks.held.has(`session-socket:tab:${id}`)).toBe(false)
    window.dispatchEvent(new Event('pageshow'))
    await new Promise((resolve) => setTimeout(resolve, 0))
    expect(locks.held.has(`session-socket:tab:${id}`)).toBe(true)
  })
})
