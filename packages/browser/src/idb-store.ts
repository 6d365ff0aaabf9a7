import { createStore, del, entries, get, set, update, type UseStore } from 'idb-keyval'
import type { Logger } from './options.js'

/** A small key-value store: IndexedDB, or memory once IndexedDB has failed. */
export interface KeyValueStore {
  get<T>(key: string): Promise<T | undefined>
  set(key: string, value: unknown): Promise<void>
  del(key: string): Promise<void>
  /** Replaces a value in one transaction (so another tab cannot write in between). */
  update<T>(key: string, change: (value: T | undefined) => T | undefined): Promise<void>
  entries<T>(): Promise<Array<[string, T]>>
}

/** Options of {@link idbKeyValueStore}. */
export interface IdbStoreOptions {
  /** IndexedDB database name. @default 'session-socket-calls' */
  database?: string
  /** Object store inside that database. @default 'calls' */
  store?: string
  /** Longest an IndexedDB operation may take before falling back to memory (ms). @default 3000 */
  timeout?: number
  /** Receives the one warning when IndexedDB is unusable. @default undefined (silent) */
  logger?: Logger
}

/**
 * idb-keyval with a way out: where IndexedDB is missing or fails (private mode, blocked
 * storage, a hung open) it logs one warning and serves everything from memory for the life of
 * the page, starting from what IndexedDB last returned, instead of failing.
 */
export function idbKeyValueStore(options: IdbStoreOptions = {}): KeyValueStore {
  const timeout = options.timeout ?? 3_000
  /** What IndexedDB last returned or accepted, by key: the memory copy once it fails. */
  const known = new Map<string, unknown>()
  let store: UseStore | undefined
  let failed = false
  const fail = (err: unknown) => {
    if (!failed) {
      failed = true
      options.logger?.('warn', 'IndexedDB is unavailable (private mode or blocked storage?): durable calls are kept in memory and will not survive a reload', err)
    }
  }
  try {
    // Opens the database at once (createStore calls indexedDB.open): the first register does
    // not wait for it, and a throw here is the "unavailable" case.
    store = createStore(options.database ?? 'session-socket-calls', options.store ?? 'calls')
  } catch (err) {
    fail(err)
  }

  async function run<T>(op: (store: UseStore) => Promise<T>, onMemory: () => T): Promise<T> {
    if (failed || !store) {
      fail(new Error('no IndexedDB store'))
      return onMemory()
    }
    let timer: ReturnType<typeof setTimeout> | undefined
    try {
      return await Promise.race([
        op(store),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`IndexedDB did not answer in ${timeout} ms`)), timeout))),
      ])
    } catch (err) {
      fail(err)
      return onMemory()
    } finally {
      clearTimeout(timer)
    }
  }

  const remember = (key: string, value: unknown) => (value === undefined ? known.delete(key) : known.set(key, value))
  return {
    get: <T>(key: string) =>
      run(
        async (s) => {
          const value = await get<T>(key, s)
          remember(key, value)
          return value
        },
        () => known.get(key) as T | undefined,
      ),
    set: (key, value) =>
      run(
        async (s) => {
          await set(key, value, s)
          remember(key, value)
        },
        () => void remember(key, value),
      ),
    del: (key) =>
      run(
        async (s) => {
          await del(key, s)
          known.delete(key)
        },
        () => void known.delete(key),
      ),
    update: <T>(key: string, change: (value: T | undefined) => T | undefined) =>
      run(
        async (s) => {
          let next: T | undefined
          await update<T | undefined>(key, (value) => (next = change(value)), s)
          remember(key, next)
        },
        () => void remember(key, change(known.get(key) as T | undefined)),
      ),
    entries: <T>() =>
      run(
        async (s) => (await entries<string, T>(s)).filter(([key]) => typeof key === 'string'),
        () => [...known] as Array<[string, T]>,
      ),
  }
}
