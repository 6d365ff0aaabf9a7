import { browserLocks } from './page-lifecycle.js'
import type { Logger } from './options.js'
import { memoryTabIdStorage, mintTabId, type TabIdStorage } from './tab-id.js'

/**
 * What the tab id needs of a Web Storage (`sessionStorage` is one). Declared here, not as DOM's
 * `Storage`, so the package's types compile without the DOM lib (a server-rendered app's Node tsconfig).
 *
 * @example
 * const storage: TabIdWebStorage = window.sessionStorage
 */
export interface TabIdWebStorage {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

/** Options of {@link sessionStorageTabId}. */
export interface SessionStorageTabIdOptions {
  /** sessionStorage key of the tab id; the unload marker lives at `${key}:unloaded`. @default 'session-socket:tab-id' */
  key?: string
  /** BroadcastChannel on which tabs claim ids. @default 'session-socket:tabs' */
  channel?: string
  /** How long a tab whose id may be a copy waits for another tab to claim it (ms): long enough for an original under load to answer, paid only by a tab opened from copied sessionStorage without Web Locks. @default 250 */
  claimTimeout?: number
  /** The Storage to use. @default globalThis.sessionStorage */
  storage?: TabIdWebStorage
  /** Receives a warning when sessionStorage is unusable, and a debug line on a duplicated tab. @default undefined (silent) */
  logger?: Logger
}

/** A message on the tabs channel. */
type TabMessage = { type: 'claim'; id: string } | { type: 'mine'; id: string }

/** One instance per storage and key in a document: two instances would answer each other's claims. */
const instances = new WeakMap<TabIdWebStorage, Map<string, TabIdStorage>>()

/**
 * Keeps the tab id in sessionStorage, so it survives a reload of the tab but not the tab.
 *
 * Chromium's "Duplicate tab" copies sessionStorage into the new tab, so a stored id may belong
 * to a tab that is still open. An id read back after this tab's own `pagehide` (the marker is
 * set then) is a reload and is used at once. Every live tab holds a Web Lock named after its
 * id, so an id without the marker is a copy exactly when that lock is held (a busy original
 * still holds it). Where Web Locks are missing (plain-http pages), the id is claimed over
 * BroadcastChannel instead, and is a copy if a live tab answers "mine" within `claimTimeout`.
 * Without sessionStorage it logs one warning and keeps the id in memory.
 *
 * @example
 * const s = createSessionSocket({ tabIdStorage: sessionStorageTabId() })
 */
export function sessionStorageTabId(options: SessionStorageTabIdOptions = {}): TabIdStorage {
  const key = options.key ?? 'session-socket:tab-id'
  let storage: TabIdWebStorage | undefined
  try {
    // Reading the property itself throws where storage is blocked (SecurityError).
    storage = options.storage ?? globalThis.sessionStorage
  } catch (err) {
    return unavailable(options, err)
  }
  if (!storage) return unavailable(options, new Error('no sessionStorage'))
  let byKey = instances.get(storage)
  if (!byKey) instances.set(storage, (byKey = new Map()))
  let instance = byKey.get(key)
  if (!instance) {
    instance = createInstance(storage, key, options)
    byKey.set(key, instance)
  }
  return instance
}

function unavailable(options: SessionStorageTabIdOptions, err: unknown): TabIdStorage {
  options.logger?.('warn', 'sessionStorage is unavailable: the tab id is kept in memory, so a reload counts as a new tab', err)
  return memoryTabIdStorage()
}

function createInstance(storage: TabIdWebStorage, key: string, options: SessionStorageTabIdOptions): TabIdStorage {
  const markerKey = `${key}:unloaded`
  const claimTimeout = options.claimTimeout ?? 250
  let stored: string | null
  let reloaded: boolean
  try {
    stored = storage.getItem(key)
    reloaded = storage.getItem(markerKey) !== null
    storage.removeItem(markerKey)
  } catch (err) {
    return unavailable(options, err)
  }

  /** The id this document holds and answers claims for; null until settled. */
  let current: string | null = null
  /** The id being claimed, and what to call when another tab says it is theirs. */
  let asking: { id: string; taken: () => void } | undefined
  let channel: BroadcastChannel | null = null

  const write = (id: string) => {
    try {
      storage.setItem(key, id)
    } catch (err) {
      options.logger?.('warn', 'could not write the tab id to sessionStorage', err)
    }
  }
  const openChannel = () => {
    if (channel || typeof BroadcastChannel !== 'function') return
    channel = new BroadcastChannel(options.channel ?? 'session-socket:tabs')
    channel.onmessage = (event: MessageEvent<TabMessage>) => {
      const message = event.data
      if (typeof message !== 'object' || message === null || typeof message.id !== 'string') return
      if (message.type === 'claim' && message.id === current) channel?.postMessage({ type: 'mine', id: current } satisfies TabMessage)
      else if (message.type === 'mine' && message.id === asking?.id) asking.taken()
    }
  }
  openChannel()

  if (typeof addEventListener === 'function') {
    addEventListener('pagehide', () => {
      // Whatever loads next in this tab with this marker is this tab: a reload, a navigation
      // back, or a restored closed tab, never a live copy.
      if (current !== null) write(current)
      try {
        storage.setItem(markerKey, '1')
      } catch {
        // Blocked storage was reported when the id was written.
      }
      // An open BroadcastChannel or a held Web Lock can keep the page out of the back/forward cache.
      channel?.close()
      channel = null
      releaseLock?.()
      releaseLock = undefined
    })
    addEventListener('pageshow', () => {
      try {
        storage.removeItem(markerKey)
      } catch {
        // As above.
      }
      openChannel()
      if (current !== null && locks) void hold(current)
    })
  }

  const locks = browserLocks()
  const lockName = (id: string) => `session-socket:tab:${id}`
  let releaseLock: (() => void) | undefined
  /**
   * Takes this document's id lock and keeps it until released. With `ifAvailable`, resolves
   * false at once when another tab holds it (this tab is a copy); otherwise it waits (behind a
   * reloading predecessor) and resolves true.
   */
  const hold = (id: string, ifAvailable = false) =>
    new Promise<boolean>((resolve) => {
      releaseLock?.()
      locks!
        .request(lockName(id), { ifAvailable }, (lock) => {
          resolve(!!lock)
          if (!lock) return undefined
          return new Promise<void>((release) => (releaseLock = release))
        })
        .catch(() => resolve(true))
      if (!ifAvailable) resolve(true)
    })
  const settle = (id: string): string => {
    if (locks) void hold(id)
    return (current = id)
  }
  const fresh = (copyOf: string): string => {
    const id = mintTabId()
    options.logger?.('debug', `tab id ${copyOf} belongs to another open tab (duplicated tab): using ${id}`)
    write(id)
    return settle(id)
  }

  const ready: Promise<string> = (() => {
    if (stored === null) {
      // Minted here rather than by the client, so every client of this document shares it.
      const minted = mintTabId()
      write(minted)
      return Promise.resolve(settle(minted))
    }
    if (reloaded) return Promise.resolve(settle(stored))
    const id = stored
    if (locks) return hold(id, true).then((mine) => (mine ? (current = id) : fresh(id)))
    if (!channel) return Promise.resolve(settle(id))
    return new Promise<string>((resolve) => {
      const timer = setTimeout(() => {
        asking = undefined
        resolve(settle(id))
      }, claimTimeout)
      asking = {
        id,
        taken: () => {
          clearTimeout(timer)
          asking = undefined
          resolve(fresh(id))
        },
      }
      channel!.postMessage({ type: 'claim', id } satisfies TabMessage)
    })
  })()

  return {
    get: () => current ?? ready,
    set(tabId) {
      if (tabId !== current && locks) void hold(tabId)
      current = tabId
      write(tabId)
    },
  }
}
