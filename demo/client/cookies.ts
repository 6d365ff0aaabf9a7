import type { CookieRestoreResult } from '@session-socket/browser'

/** What the page reads from the client: a SessionSocket has all of it. */
export interface CookieSource {
  on(event: 'ready', listener: (reply: { cookieRestored: boolean }) => void): () => void
  restoreCookie(): Promise<CookieRestoreResult>
}

/**
 * Whether the session cookie sticks in this browser: `null` until known, `false` when the
 * server set it and the browser never sent it back (cookies blocked, or a proxy that strips
 * Set-Cookie). Then HTTP requests carry no session, so sign-in and sign-out go over the socket.
 *
 * It is found out only when a register had to restore the cookie (`ready` with
 * `cookieRestored`): a first visit, a lost cookie, or every load behind such a proxy. Then
 * `restoreCookie()` does it once more and checks the browser kept it.
 */
export class CookieWatch {
  #sticks: boolean | null = null
  readonly #listeners = new Set<() => void>()
  readonly #off: () => void

  constructor(readonly client: CookieSource) {
    this.#off = client.on('ready', ({ cookieRestored }) => {
      if (cookieRestored && this.#sticks !== true) void this.check()
    })
  }

  /** For useSyncExternalStore. */
  subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  getSnapshot = (): boolean | null => this.#sticks

  /** Restores the cookie and records whether the browser kept it; resolves with the result. */
  async check(): Promise<CookieRestoreResult> {
    const result = await this.client.restoreCookie()
    this.record(result)
    return result
  }

  /** Records what a `restoreCookie()` of the page found. */
  record(result: CookieRestoreResult): void {
    if (result.kept) this.#set(true)
    else if (result.reason === 'not-stored') this.#set(false)
  }

  dispose(): void {
    this.#off()
    this.#listeners.clear()
  }

  #set(sticks: boolean): void {
    if (sticks === this.#sticks) return
    this.#sticks = sticks
    for (const listener of [...this.#listeners]) listener()
  }
}
