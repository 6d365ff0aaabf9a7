import type { ConnectionState, EndReason, RegisterReason, Status } from '@session-socket/browser'

/** What the story reads from the client: a SessionSocket has all of it. */
export interface StorySource {
  readonly state: ConnectionState
  readonly status: Status
  /** The underlying socket.io-client socket, for its disconnect reason. */
  readonly socket: {
    on(event: 'disconnect', listener: (reason: string) => void): unknown
    off(event: 'disconnect', listener: (reason: string) => void): unknown
  }
  on(event: string, listener: (...args: any[]) => void): () => void
}

/** The page's connectivity, injectable for tests. */
export interface StoryPage {
  online(): boolean
  /** Subscribes to the browser going offline; returns the unsubscribe function. */
  onOffline(listener: () => void): () => void
}

const browserPage: StoryPage = {
  online: () => navigator.onLine,
  onOffline(listener) {
    window.addEventListener('offline', listener)
    return () => window.removeEventListener('offline', listener)
  },
}

/** The client's `ready` payload. */
interface ReadyReply {
  restored: boolean
  reason: RegisterReason | null
  /** The register on the way set the session cookie again. */
  cookieRestored: boolean
}

/** Why the socket went away last, as far as the page can tell. */
type Cause = 'network' | 'server-restart' | 'rejoin' | 'server-closed'

const FIRST_READY: Record<RegisterReason, string> = {
  'no-token': 'connected: new link for this browser',
  'unknown-token': 'connected: the old link was unknown, new link',
  'expired-token': 'connected: the old link had expired, new link',
  'revoked-token': 'connected: the old link was revoked, new link',
  'session-ended': 'connected: the old session was gone, new session',
  'cookie-session': "connected: linked to this browser's session cookie",
}

const ENDED: Record<EndReason, string> = {
  logout: 'ended: signed out in another tab',
  expired: 'ended: the session expired',
  revoked: 'ended: the session was ended by the server',
}

/**
 * Tells, in one line, what happened to the connection last: "restored after cookie loss",
 * "reconnected after network loss", "ended: signed out in another tab"… Built from the
 * client's public events (`ready` says `cookieRestored`), the underlying socket's disconnect
 * reason, the page's online/offline events, two app events (`server:shutdown`,
 * `signout:everywhere`) and the page's own `restoreCookie()` calls.
 */
export class ConnectionStory {
  #text = 'connecting…'
  #cause: Cause | undefined
  #everReady = false
  #shutdownNotice = false
  #selfSignOut: 'logout' | 'everywhere' | undefined
  #everywhere = false
  readonly #listeners = new Set<() => void>()
  readonly #off: Array<() => void> = []
  readonly #page: StoryPage

  constructor(client: StorySource, page: StoryPage = browserPage) {
    this.#page = page
    const socket = client.socket
    const onDisconnect = (reason: string) => this.#onDisconnect(reason)
    socket.on('disconnect', onDisconnect)
    this.#off.push(() => socket.off('disconnect', onDisconnect))
    this.#off.push(client.on('status', (state: ConnectionState) => this.#onStatus(state)))
    this.#off.push(client.on('ready', (reply: ReadyReply) => this.#onReady(reply.restored, reply.reason, reply.cookieRestored)))
    this.#off.push(client.on('ended', (reason: EndReason) => this.#onEnded(reason)))
    this.#off.push(client.on('server:shutdown', () => (this.#shutdownNotice = true)))
    this.#off.push(client.on('signout:everywhere', () => (this.#everywhere = true)))
    this.#off.push(
      page.onOffline(() => {
        this.#cause = 'network'
        if (client.status !== 'ended' && client.status !== 'closed') this.#set('network lost: the browser is offline')
      }),
    )
    if (client.state.status === 'ready') this.#onReady(client.state.restored, client.state.reason, false)
    else this.#onStatus(client.state)
  }

  get text(): string {
    return this.#text
  }

  /** For useSyncExternalStore. */
  subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  getSnapshot = (): string => this.#text

  /**
   * Call when `restoreCookie()` put the session cookie back while the socket stayed connected
   * (an HTTP request had found no session): no `ready` event says so then.
   */
  cookieRestored(): void {
    this.#set('restored after cookie loss')
  }

  /** Call before this tab signs out, so its own ending reads "you signed out". */
  signingOut(kind: 'logout' | 'everywhere'): void {
    this.#selfSignOut = kind
  }

  dispose(): void {
    for (const off of this.#off) off()
    this.#listeners.clear()
  }

  #set(text: string): void {
    if (text === this.#text) return
    this.#text = text
    for (const listener of [...this.#listeners]) listener()
  }

  #onDisconnect(reason: string): void {
    if (!this.#page.online()) this.#cause = 'network'
    // The client disconnects itself to rejoin after a sign-in elsewhere (and on pagehide).
    else if (reason === 'io client disconnect') this.#cause = 'rejoin'
    else if (reason === 'io server disconnect') this.#cause = 'server-closed'
    else this.#cause = this.#shutdownNotice ? 'server-restart' : 'network'
    this.#shutdownNotice = false
  }

  #onStatus(state: ConnectionState): void {
    switch (state.status) {
      case 'offline': {
        const retry = `retrying in ${(state.retryIn / 1000).toFixed(1)} s`
        if (state.error) this.#set(`cannot connect (${state.error.code}), ${retry}`)
        else if (this.#cause === 'server-restart') this.#set(`server restarting, ${retry}`)
        else if (this.#cause === 'network' || this.#cause === undefined) this.#set(`connection lost, ${retry}`)
        break
      }
      case 'rejoining':
        this.#cause = 'rejoin'
        this.#set('rejoining: the session changed (a sign-in)')
        break
      case 'closed':
        this.#set(state.error?.code === 'CLOSED' ? 'closed: this tab connected again elsewhere' : `closed${state.error ? `: ${state.error.message}` : ''}`)
        break
      default:
        break
    }
  }

  #onReady(restored: boolean, reason: RegisterReason | null, cookieRestored: boolean): void {
    const first = !this.#everReady
    this.#everReady = true
    const cause = this.#cause
    this.#cause = undefined
    // A restore on a restored link means the cookie had gone (deleted, expired, stripped, or
    // signed with a secret the server no longer has) while the session lived on.
    if (cookieRestored && restored) return this.#set('restored after cookie loss')
    if (first) return this.#set(restored ? 'connected: session restored by the link token' : FIRST_READY[reason ?? 'no-token'])
    if (cause === 'network') return this.#set('reconnected after network loss')
    if (cause === 'server-restart') return this.#set('reconnected after server restart')
    if (cause === 'rejoin') return this.#set('rejoined: the session changed (sign-in in another tab)')
    this.#set(restored ? 'reconnected' : `reconnected (${reason ?? 'new link'})`)
  }

  #onEnded(reason: EndReason): void {
    if (reason === 'logout' && this.#selfSignOut === 'everywhere') return this.#set('ended: you signed out everywhere')
    if (reason === 'logout' && this.#selfSignOut === 'logout') return this.#set('ended: you signed out')
    if (reason === 'logout' && this.#everywhere) return this.#set('ended: signed out everywhere from another tab or browser')
    this.#set(ENDED[reason])
  }
}
