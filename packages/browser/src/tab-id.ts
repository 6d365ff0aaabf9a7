import { nanoid } from 'nanoid'

/**
 * Where a tab keeps its id: per tab, surviving a reload of that tab. `get` may be async
 * (e.g. to ask other tabs whether the id is a copy); the client awaits it before registering.
 */
export interface TabIdStorage {
  get(): string | null | Promise<string | null>
  set(tabId: string): void
}

/**
 * Keeps the tab id in memory (Node, tests).
 *
 * @example
 * const s = createSessionSocket({ url, tabIdStorage: memoryTabIdStorage() })
 */
export function memoryTabIdStorage(initial: string | null = null): TabIdStorage {
  let tabId = initial
  return {
    get: () => tabId,
    set: (value) => {
      tabId = value
    },
  }
}

/** A fresh tab id. */
export function mintTabId(): string {
  return nanoid(16)
}
