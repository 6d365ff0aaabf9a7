import type { Logger } from './options.js'
import type { Locks } from './page-lifecycle.js'
import type { TokenStorage } from './token-storage.js'

/** Longest a tab holds the mint lock waiting for its register reply (ms). */
const MINT_LOCK_TIMEOUT = 10_000

/** The tab's link token in its storage, as register uses it. */
export interface LinkToken {
  /**
   * The token to register with, read afresh for every connection (another tab may have
   * stored a new one). Without a token, waits for the browser-wide mint lock and reads again.
   */
  read(): Promise<string | null>
  /** Stores the token of a register reply (unless storage has it already) and lets go of the mint lock. */
  store(token: string): Promise<void>
  /** Lets go of the mint lock (the connection failed or the client stopped); nothing if not held. */
  release(): void
  /** Deletes the token (the session ended), unless another tab has stored a newer one. */
  forget(): void
}

/**
 * The link token over `storage`. A tab without a token registers under the mint lock (Web
 * Locks), so two tabs opened at the same moment do not mint two tokens and split the browser
 * into two sessions: the second reads the token the first stored. The lock is released on the
 * register reply or a failed connection, and after `timeout` ms at the latest, so a tab that
 * never hears back cannot hold the others up. Storage failures are logged, never thrown.
 *
 * @example
 * const token = createLinkToken(idbTokenStorage(), navigator.locks, console.log)
 * socket.auth = async (cb) => cb({ token: await token.read() })
 * socket.on(EVENTS.REGISTERED, (reply) => token.store(reply.token))
 */
export function createLinkToken(storage: TokenStorage, locks: Locks | null, log: Logger, timeout = MINT_LOCK_TIMEOUT): LinkToken {
  let release: (() => void) | undefined
  const get = async () => {
    try {
      return await storage.get()
    } catch (err) {
      log('warn', 'token storage failed; registering without a token', err)
      return null
    }
  }
  return {
    async read() {
      const token = await get()
      if (token !== null || !locks || release) return token
      await new Promise<void>((acquired) => {
        locks
          .request('session-socket:mint', () => {
            acquired()
            return new Promise<void>((done) => {
              const timer = setTimeout(done, timeout)
              release = () => {
                clearTimeout(timer)
                release = undefined
                done()
              }
            })
          })
          .catch((err: unknown) => {
            log('warn', 'Web Locks request failed', err)
            acquired()
          })
      })
      return get()
    },
    async store(token) {
      try {
        if ((await storage.get()) !== token) await storage.set(token)
      } catch (err) {
        log('warn', 'could not store the link token', err)
      }
      release?.()
    },
    release: () => release?.(),
    forget() {
      storage
        .get()
        .then((stored) => (stored ? storage.delete(stored) : undefined))
        .catch(() => {})
    },
  }
}
