import { createSessionSocket, memoryTabIdStorage, memoryTokenStorage, type SessionSocket, type SessionSocketOptions, type TokenStorage, type TabIdStorage } from '@session-socket/browser'
import type { ConnectionState } from '@session-socket/browser'

/** One simulated browser profile: a token storage shared by its tabs. */
export interface Browser {
  tokens: TokenStorage
  /** Opens a tab (its own tab id storage unless given). */
  open(options?: Partial<SessionSocketOptions>): SessionSocket
}

const opened = new Set<SessionSocket>()

export function makeBrowser(url: string, defaults: Partial<SessionSocketOptions> = {}): Browser {
  const tokens = memoryTokenStorage()
  return {
    tokens,
    open(options = {}) {
      const tabIdStorage: TabIdStorage = options.tabIdStorage ?? memoryTabIdStorage()
      const s = createSessionSocket({
        url,
        tokenStorage: tokens,
        tabIdStorage,
        backoff: () => 50,
        ...defaults,
        ...options,
        socketOptions: { transports: ['websocket'], ...defaults.socketOptions, ...options.socketOptions },
      })
      opened.add(s)
      return s
    },
  }
}

/** Closes every client opened by makeBrowser (call in afterEach). */
export function closeAllClients(): void {
  for (const s of opened) s.close()
  opened.clear()
}

/** Resolves when the client reaches `status` (default 'ready'); rejects after `timeout` ms. */
export function waitForStatus(s: SessionSocket, status: ConnectionState['status'] = 'ready', timeout = 5000): Promise<ConnectionState> {
  if (s.status === status) return Promise.resolve(s.state)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`status stayed ${s.status}, wanted ${status}`))
    }, timeout)
    const off = s.on('status', (state) => {
      if (state.status !== status) return
      clearTimeout(timer)
      off()
      resolve(state)
    })
  })
}

/** Resolves with the next value `predicate` accepts among the client's status changes. */
export function nextStatus(s: SessionSocket, predicate: (state: ConnectionState) => boolean, timeout = 5000): Promise<ConnectionState> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`no matching status; last ${s.status}`))
    }, timeout)
    const off = s.on('status', (state) => {
      if (!predicate(state)) return
      clearTimeout(timer)
      off()
      resolve(state)
    })
  })
}
