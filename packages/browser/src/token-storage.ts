/**
 * Where the browser keeps its link token. Read afresh at every register, never cached
 * across reconnects, so a token minted by another tab is picked up.
 */
export interface TokenStorage {
  get(): Promise<string | null>
  set(token: string): Promise<void>
  /** Deletes the token, but only if it is still `expected` (another tab may have a newer one). */
  delete(expected: string): Promise<void>
}

/**
 * Keeps the token in memory: for Node, tests, and browsers where IndexedDB is unavailable.
 * Tabs do not share it.
 *
 * @example
 * const s = createSessionSocket({ url, tokenStorage: memoryTokenStorage() })
 */
export function memoryTokenStorage(initial: string | null = null): TokenStorage {
  let token = initial
  return {
    async get() {
      return token
    },
    async set(value) {
      token = value
    },
    async delete(expected) {
      if (token === expected) token = null
    },
  }
}
