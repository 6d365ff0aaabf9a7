// From the core entry, not its modules: dist/durable.js then imports it from '@session-socket/browser'.
import { SessionSocketError, type MethodMap, type MethodParams, type MethodResult } from './index.js'
import { idbKeyValueStore, type IdbStoreOptions, type KeyValueStore } from './idb-store.js'
import type { SessionSocket } from './session-socket.js'

/** A durable call as kept across page reloads. */
export interface DurableCall {
  id: string
  method: string
  params: unknown
  /** When it was made (ms since epoch; strictly increasing within a page, so calls keep their order). */
  createdAt: number
  /** Whether the tab was ready while it waited, so it may have been sent (and may have run). */
  sent: boolean
}

/** Where durable calls wait, per tab id, until answered. */
export interface DurableCallStorage {
  list(tabId: string): Promise<DurableCall[]>
  put(tabId: string, call: DurableCall): Promise<void>
  delete(tabId: string, id: string): Promise<void>
}

/**
 * Keeps durable calls in IndexedDB (database `session-socket-calls`, keyed `<tabId>/<id>`), so
 * a reloaded tab resumes its own; in memory where IndexedDB fails (one warning).
 *
 * @example
 * const durable = createDurableCalls(s, { storage: idbDurableCallStorage({ logger: console.log }) })
 */
export function idbDurableCallStorage(options: IdbStoreOptions & { kv?: KeyValueStore } = {}): DurableCallStorage {
  const kv = options.kv ?? idbKeyValueStore(options)
  return {
    list: async (tabId) =>
      (await kv.entries<DurableCall>())
        .filter(([key]) => key.startsWith(`${tabId}/`))
        .map(([, call]) => call)
        .sort((a, b) => a.createdAt - b.createdAt),
    put: (tabId, call) => kv.set(`${tabId}/${call.id}`, call),
    delete: (tabId, id) => kv.del(`${tabId}/${id}`),
  }
}

/**
 * Keeps durable calls in memory: they survive reconnects, not reloads. For Node and tests.
 *
 * @example
 * const durable = createDurableCalls(s, { storage: memoryDurableCallStorage() })
 */
export function memoryDurableCallStorage(): DurableCallStorage {
  const calls = new Map<string, DurableCall>()
  return {
    list: async (tabId) => [...calls].filter(([key]) => key.startsWith(`${tabId}/`)).map(([, call]) => ({ ...call })),
    put: async (tabId, call) => void calls.set(`${tabId}/${call.id}`, { ...call }),
    delete: async (tabId, id) => void calls.delete(`${tabId}/${id}`),
  }
}

/** The answer of a durable call: also for calls an earlier load of this tab made. */
export interface DurableSettled {
  id: string
  method: string
  params: unknown
  ok: boolean
  result?: unknown
  error?: SessionSocketError
}

/** Options of {@link createDurableCalls}. */
export interface DurableCallsOptions {
  /** Where calls wait until answered. @default idbDurableCallStorage() in browsers, memoryDurableCallStorage() elsewhere */
  storage?: DurableCallStorage
  /**
   * A call that may have been sent before a reload and is older than this (ms) is not sent
   * again: the server's memory of its answer (`resultTtl`, 10 min by default) may be gone, so
   * it could run twice. It settles with TIMEOUT instead. @default 600000
   */
  ttl?: number
}

/** What {@link createDurableCalls} returns. */
export interface DurableCalls<M extends object = MethodMap> {
  /**
   * Like `s.call`, but kept in storage until answered: it survives a reload of the tab (the
   * reloaded page sends it again with the same id, and the server runs it once). No timeout
   * unless given.
   */
  call<K extends keyof M & string>(method: K, params?: MethodParams<M, K>, options?: { timeout?: number; signal?: AbortSignal }): Promise<MethodResult<M, K>>
  /** The calls still waiting, oldest first (an earlier load's included). */
  list(): Promise<DurableCall[]>
  /** Cancels a waiting call: it fails with CANCELLED and is not sent again (if it was sent, the server may still run it). */
  cancel(id: string): Promise<boolean>
  /** Every answer, the calls of an earlier load of this tab included. Returns a function that removes the listener. */
  onSettled(listener: (settled: DurableSettled) => void): () => void
}

let lastCreatedAt = 0
const newId = () => Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-'[b & 63]).join('')

/**
 * Durable calls for a client: calls made while offline (or any time) that must not be lost to
 * a reload. Create it once per page, right after the client: it sends again, in order, the
 * calls an earlier load of this tab left unanswered.
 *
 * @example
 * const s = createSessionSocket()
 * const durable = createDurableCalls(s)
 * durable.onSettled(({ id, ok, result }) => markDone(id, ok, result))
 * await durable.call('order.place', { sku: 'A-1' })
 */
export function createDurableCalls<M extends object = MethodMap>(s: SessionSocket<M, any>, options: DurableCallsOptions = {}): DurableCalls<M> {
  const storage = options.storage ?? (typeof indexedDB === 'undefined' ? memoryDurableCallStorage() : idbDurableCallStorage())
  const ttl = options.ttl ?? 600_000
  const waiting = new Map<string, { record: DurableCall; controller: AbortController }>()
  const listeners = new Set<(settled: DurableSettled) => void>()
  const tabId = s.whenTabId()

  const markSent = () => {
    for (const { record } of waiting.values()) {
      if (record.sent) continue
      record.sent = true
      void tabId.then((id) => storage.put(id, record)).catch(() => {})
    }
  }
  s.on('ready', markSent)

  function run(record: DurableCall, options: { timeout?: number; signal?: AbortSignal } = {}): Promise<any> {
    const controller = new AbortController()
    options.signal?.addEventListener('abort', () => controller.abort(), { once: true })
    waiting.set(record.id, { record, controller })
    const settle = (outcome: { ok: true; result: unknown } | { ok: false; error: SessionSocketError }) => {
      waiting.delete(record.id)
      void tabId.then((id) => storage.delete(id, record.id)).catch(() => {})
      for (const listener of [...listeners]) listener({ id: record.id, method: record.method, params: record.params, ...outcome })
    }
    if (s.status === 'ready') markSent()
    const sent = (s as SessionSocket<MethodMap>).call(record.method, record.params, { id: record.id, timeout: options.timeout ?? Infinity, signal: controller.signal })
    sent.then(
      (result) => settle({ ok: true, result }),
      (error: SessionSocketError) => settle({ ok: false, error }),
    )
    return sent
  }

  // The calls an earlier load of this tab left unanswered, oldest first.
  const resumed = tabId
    .then((id) => storage.list(id))
    .then(
      (stored) => {
        for (const record of stored) {
          if (waiting.has(record.id)) continue
          if (record.sent && Date.now() - record.createdAt > ttl) {
            void tabId.then((id) => storage.delete(id, record.id))
            const error = new SessionSocketError('TIMEOUT', `'${record.method}' was sent before a reload and not answered within ${ttl} ms; it may or may not have run`)
            for (const listener of [...listeners]) listener({ id: record.id, method: record.method, params: record.params, ok: false, error })
            continue
          }
          run(record).catch(() => {})
        }
      },
      () => undefined,
    )

  const api: DurableCalls<M> = {
    call(method, params, callOptions) {
      lastCreatedAt = Math.max(Date.now(), lastCreatedAt + 1)
      const record: DurableCall = { id: newId(), method, params, createdAt: lastCreatedAt, sent: false }
      // Stored before it can be sent, so a reload in between cannot lose it.
      return tabId
        .then((id) => storage.put(id, record))
        .then(() => run(record, callOptions))
    },
    async list() {
      await resumed
      return [...waiting.values()].map(({ record }) => ({ ...record })).sort((a, b) => a.createdAt - b.createdAt)
    },
    async cancel(id) {
      await resumed
      const entry = waiting.get(id)
      if (!entry) return false
      entry.controller.abort()
      return true
    },
    onSettled(listener) {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
  }
  // `s.call(method, params, { durable: true })` comes here from now on.
  s.durableCalls = { call: (method, params, options) => api.call(method as keyof M & string, params as never, options) }
  return api
}
