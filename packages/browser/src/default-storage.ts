import { idbTokenStorage } from './idb-token-storage.js'
import { sessionStorageTabId } from './session-storage-tab-id.js'
import type { Logger } from './options.js'
import { memoryTabIdStorage, type TabIdStorage } from './tab-id.js'
import { memoryTokenStorage, type TokenStorage } from './token-storage.js'

/** True in a page or a worker: where IndexedDB is expected, even if it turns out blocked. */
const inBrowser = (): boolean => typeof window !== 'undefined' || typeof indexedDB !== 'undefined'

/**
 * The token storage a client uses when given none: IndexedDB in a browser (memory, with one
 * warning, if it is blocked), memory elsewhere (Node, tests).
 *
 * @example
 * const s = createSessionSocket({ tokenStorage: defaultTokenStorage(console.log) })
 */
export function defaultTokenStorage(logger?: Logger): TokenStorage {
  return inBrowser() ? idbTokenStorage({ logger }) : memoryTokenStorage()
}

/**
 * The tab id storage a client uses when given none: sessionStorage in a page (memory, with
 * one warning, if it is blocked), memory elsewhere.
 *
 * @example
 * const s = createSessionSocket({ tabIdStorage: defaultTabIdStorage(console.log) })
 */
export function defaultTabIdStorage(logger?: Logger): TabIdStorage {
  return typeof window !== 'undefined' ? sessionStorageTabId({ logger }) : memoryTabIdStorage()
}

