/** What the page tells the client about itself. */
export type PageEvent = 'online' | 'offline' | 'visible' | 'hidden' | 'pagehide' | 'pageshow'

/**
 * The page around the client: visibility, connectivity and bfcache. Injectable so that the
 * core runs (and is tested) without a browser.
 */
export interface PageLifecycle {
  hidden(): boolean
  subscribe(listener: (event: PageEvent) => void): () => void
}

/**
 * The real page: `online`/`offline` and `pagehide`/`pageshow` on window,
 * `visibilitychange` on document. Null outside a browser.
 *
 * @example
 * const s = createSessionSocket({ page: browserPageLifecycle() })
 */
export function browserPageLifecycle(): PageLifecycle | null {
  if (typeof window === 'undefined' || typeof document === 'undefined' || typeof window.addEventListener !== 'function') return null
  return {
    hidden: () => document.visibilityState === 'hidden',
    subscribe(listener) {
      const onEvent = (event: Event) =>
        listener(event.type === 'visibilitychange' ? (document.visibilityState === 'hidden' ? 'hidden' : 'visible') : (event.type as PageEvent))
      const targets: Array<[EventTarget, string[]]> = [
        [window, ['online', 'offline', 'pagehide', 'pageshow']],
        [document, ['visibilitychange']],
      ]
      const each = (method: 'addEventListener' | 'removeEventListener') => {
        for (const [target, events] of targets) for (const event of events) target[method](event, onEvent)
      }
      each('addEventListener')
      return () => each('removeEventListener')
    },
  }
}

/** The part of the Web Locks API the client uses. */
export interface Locks {
  request(name: string, callback: (lock: unknown) => Promise<void> | undefined): Promise<unknown>
  request(name: string, options: { ifAvailable?: boolean }, callback: (lock: unknown) => Promise<void> | undefined): Promise<unknown>
}

/** `navigator.locks` where the browser has it (secure contexts), else null. */
export function browserLocks(): Locks | null {
  const locks = (globalThis as { navigator?: { locks?: Locks } }).navigator?.locks
  return locks && typeof locks.request === 'function' ? locks : null
}
