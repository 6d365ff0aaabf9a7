import type { CookieRestoreResult } from '@session-socket/browser'

/** What the page reads from the client: a SessionSocket has all of it. */
export interface CookieSource {
  restoreCookie(): Promise<CookieRestoreResult>
}

/**
 * Whether the session cookie sticks in this browser: `null` until known, `false` when the
 * server set it and the browser never sent it back (cookies blocked, or a proxy that strips
 * Set-Cookie). Then HTTP requests carry no session, so sign-in and sign-out go over the socket.
 *
 * Found out by the page's own `restoreCookie()` calls, which check the browser kept the cookie:
 * after an HTTP request found no session, and before the first sign-in (`check()`), never on
 * its own, so it never races a sign-in's cookie.
 */
export class CookieWatch {
  #sticks: boolean | null = null
  readonly #listeners = new Set<() => void>()

  constructor(readonly client: CookieSource) {}

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

  #set(sticks: boolean): void {
    if (sticks === this.#sticks) return
    this.#sticks = sticks
    for (const listener of [...this.#listeners]) listener()
  }
}
