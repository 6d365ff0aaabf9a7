import { createStore, promisifyRequest, type UseStore } from 'idb-keyval'
import type { Logger } from './options.js'
import { memoryTokenStorage, type TokenStorage } from './token-storage.js'

/** Options of {@link idbTokenStorage}. */
export interface IdbTokenStorageOptions {
  /** IndexedDB database name. @default 'session-socket' */
  database?: string
  /** Object store inside that database. @default 'tokens' */
  store?: string
  /** Key of the token in that store. @default 'token' */
  key?: string
  /** Longest an IndexedDB operation may take before falling back to memory (ms). @default 3000 */
  timeout?: number
  /** Receives the one warning when IndexedDB is unusable. @default undefined (silent) */
  logger?: Logger
}

/**
 * Keeps the link token in IndexedDB (through idb-keyval, in its own database), so every tab
 * of the browser profile shares it and it survives reloads and restarts. Where IndexedDB is
 * missing or fails (private mode, blocked storage, a hung open), it logs one warning and keeps
 * the token in memory for the life of the page instead of failing.
 *
 * @example
 * const s = createSessionSocket({ tokenStorage: idbTokenStorage({ logger: console.log }) })
 */
export function idbTokenStorage(options: IdbTokenStorageOptions = {}): TokenStorage {
  const key = options.key ?? 'token'
  const timeout = options.timeout ?? 3_000
  let store: UseStore | undefined
  let memory: TokenStorage | undefined
  /** Last value IndexedDB returned or accepted, carried over if it fails later. */
  let lastKnown: string | null = null

  const fallBack = (err: unknown): TokenStorage => {
    if (!memory) {
      memory = memoryTokenStorage(lastKnown)
      store = undefined
      options.logger?.(
        'warn',
        'IndexedDB is unavailable (private mode or blocked storage?): the link token is kept in memory, so other tabs and reloads will not share this session link',
        err,
      )
    }
    return memory
  }

  try {
    // Opens the database at once (idb-keyval's createStore calls indexedDB.open), so the
    // first register does not wait for it; a throw here is the "unavailable" case.
    store = createStore(options.database ?? 'session-socket', options.store ?? 'tokens')
  } catch (err) {
    fallBack(err)
  }

  /** Runs `op` against IndexedDB, or against memory once IndexedDB has failed. */
  async function run<T>(op: (store: UseStore) => Promise<T>, onMemory: (memory: TokenStorage) => Promise<T>): Promise<T> {
    if (memory || !store) return onMemory(memory ?? fallBack(new Error('no IndexedDB store')))
    let timer: ReturnType<typeof setTimeout> | undefined
    try {
      return await Promise.race([
        op(store),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`IndexedDB did not answer in ${timeout} ms`)), timeout)
        }),
      ])
    } catch (err) {
      return onMemory(fallBack(err))
    } finally {
      clearTimeout(timer)
    }
  }

  // Reads and writes go through the store directly, as delete does: idb-keyval's get and set
  // would bring its default store (a database of its own) into the bundle, never used here.
  return {
    get: () =>
      run(
        async (s) => (lastKnown = (await s('readonly', (objectStore) => promisifyRequest<string | undefined>(objectStore.get(key)))) ?? null),
        (m) => m.get(),
      ),
    set: (token) =>
      run(
        async (s) => {
          await s('readwrite', (objectStore) => {
            objectStore.put(token, key)
            return promisifyRequest(objectStore.transaction)
          })
          lastKnown = token
        },
        (m) => m.set(token),
      ),
    delete: (expected) =>
      run(
        // Read and delete in one readwrite transaction: another tab may store a newer token
        // between a separate read and delete.
        (s) =>
          s('readwrite', (objectStore) => {
            const request = objectStore.get(key)
            request.onsuccess = () => {
              if (request.result === expected) objectStore.delete(key)
            }
            return promisifyRequest(objectStore.transaction).then(() => {
              if (lastKnown === expected) lastKnown = null
            })
          }),
        (m) => m.delete(expected),
      ),
  }
}
