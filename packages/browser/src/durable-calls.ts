import { createStore, del, entries, set, type UseStore } from 'idb-keyval'
import type { Logger } from './session-socket.js'

/** A durable call as kept across page reloads. */
export interface DurableCall {
  id: string
  method: string
  params: unknown
  /** When `call()` made it (ms since epoch). */
  createdAt: number
  /** Whether it was ever sent: a sent call older than the server's result memory may have run. */
  sent: boolean
}

/** Where durable calls wait, per tab id, until answered. */
export interface DurableCallStorage {
  list(tabId: string): Promise<DurableCall[]>
  put(tabId: string, call: DurableCall): Promise<void>
  delete(tabId: string, id: string): Promise<void>
}

/**
 * Keeps durable calls in memory: they survive reconnects, not reloads. For Node and tests.
 *
 * @example
 * const s = createSessionSocket({ durableCallStorage: memoryDurableCallStorage() })
 */
export function memoryDurableCallStorage(): DurableCallStorage {
  const byTab = new Map<string, Map<string, DurableCall>>()
  return {
    async list(tabId) {
      return [...(byTab.get(tabId)?.values() ?? [])].map((call) => ({ ...call }))
    },
    async put(tabId, call) {
      let calls = byTab.get(tabId)
      if (!calls) byTab.set(tabId, (calls = new Map()))
      calls.set(call.id, { ...call })
    },
    async delete(tabId, id) {
      byTab.get(tabId)?.delete(id)
    },
  }
}

/**
 * Keeps durable calls in IndexedDB (database `session-socket-calls`), keyed by tab id, so a
 * reloaded tab resumes its own. Falls back to memory, with one warning, where IndexedDB fails.
 *
 * @example
 * const s = createSessionSocket({ durableCallStorage: idbDurableCallStorage({ logger: console.log }) })
 */
export function idbDurableCallStorage(options: { database?: string; logger?: Logger } = {}): DurableCallStorage {
  const fallback = memoryDurableCallStorage()
  let store: UseStore | null = null
  let failed = false
  const fail = (err: unknown) => {
    if (!failed) options.logger?.('warn', 'IndexedDB is unavailable: durable calls will not survive a reload', err)
    failed = true
  }
  try {
    store = typeof indexedDB === 'undefined' ? null : createStore(options.database ?? 'session-socket-calls', 'calls')
  } catch (err) {
    fail(err)
  }
  if (!store) fail(new Error('no indexedDB'))
  const key = (tabId: string, id: string) => `${tabId}/${id}`
  return {
    async list(tabId) {
      if (failed || !store) return fallback.list(tabId)
      try {
        const all = await entries<string, DurableCall>(store)
        return all
          .filter(([k]) => typeof k === 'string' && k.startsWith(`${tabId}/`))
          .map(([, call]) => call)
          .sort((a, b) => a.createdAt - b.createdAt)
      } catch (err) {
        fail(err)
        return fallback.list(tabId)
      }
    },
    async put(tabId, call) {
      if (failed || !store) return fallback.put(tabId, call)
      try {
        await set(key(tabId, call.id), call, store)
      } catch (err) {
        fail(err)
        await fallback.put(tabId, call)
      }
    },
    async delete(tabId, id) {
      await fallback.delete(tabId, id)
      if (failed || !store) return
      try {
        await del(key(tabId, id), store)
      } catch (err) {
        fail(err)
      }
    },
  }
}
