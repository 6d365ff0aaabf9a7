/** A LockManager as browsers have it, for the tabs of one test: exclusive locks by name. */
export function fakeLocks() {
  const held = new Set<string>()
  const waiting = new Map<string, Array<() => void>>()
  const grant = async (name: string, callback: (lock: unknown) => Promise<void> | undefined) => {
    held.add(name)
    try {
      await callback({ name })
    } finally {
      held.delete(name)
      waiting.get(name)?.shift()?.()
    }
  }
  return {
    held,
    request(name: string, optionsOrCallback: unknown, maybeCallback?: unknown): Promise<unknown> {
      const options = (typeof optionsOrCallback === 'function' ? {} : optionsOrCallback) as { ifAvailable?: boolean }
      const callback = (typeof optionsOrCallback === 'function' ? optionsOrCallback : maybeCallback) as (lock: unknown) => Promise<void> | undefined
      if (!held.has(name)) return grant(name, callback)
      if (options.ifAvailable) return Promise.resolve(callback(null))
      return new Promise<void>((resolve) => {
        const queue = waiting.get(name) ?? []
        queue.push(() => void grant(name, callback).then(resolve))
        waiting.set(name, queue)
      })
    },
  }
}
