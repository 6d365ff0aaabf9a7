/** Runs `fn` after every earlier task of the same key has settled. */
export type KeyedLock = <T>(key: string, fn: () => Promise<T>) => Promise<T>

/**
 * One queue per key, in this process: enough to keep two increments of one session from both
 * reading the same old value. (Across nodes the store would need its own atomic increment.)
 *
 * @example
 * const lock = createKeyedLock()
 * await lock(sessionId, async () => save(await load(sessionId) + 1))
 */
export function createKeyedLock(): KeyedLock {
  const tails = new Map<string, Promise<unknown>>()
  return (key, fn) => {
    const previous = tails.get(key) ?? Promise.resolve()
    const run = previous.then(fn, fn)
    const tail = run.catch(() => undefined)
    tails.set(key, tail)
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key)
    })
    return run
  }
}
