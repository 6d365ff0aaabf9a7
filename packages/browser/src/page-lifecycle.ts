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
      const online = () => listener('online')
      const offline = () => listener('offline')
      const pagehide = () => listener('pagehide')
      const pageshow = () => listener('pageshow')
      const visibility = () => listener(document.visibilityState === 'hidden' ? 'hidden' : 'visible')
      window.addEventListener('online', online)
      window.addEventListener('offline', offline)
      window.addEventListener('pagehide', pagehide)
      window.addEventListener('pageshow', pageshow)
      document.addEventListener('visibilitychange', visibility)
      return () => {
        window.removeEventListener('online', online)
        window.removeEventListener('offline', offline)
        window.removeEventListener('pagehide', pagehide)
        window.removeEventListener('pageshow', pageshow)
        document.removeEventListener('visibilitychange', visibility)
      }
    },
  }
}

/** The part of the Web Locks API the client uses. */
export interface Locks {
  request(name: string, callback: () => Promise<void>): Promise<unknown>
}

/** `navigator.locks` where the browser has it (secure contexts), else null. */
export function browserLocks(): Locks | null {
  const locks = (globalThis as { navigator?: { locks?: Locks } }).navigator?.locks
  return locks && typeof locks.request === 'function' ? locks : null
}
