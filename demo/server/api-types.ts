// What the demo's server and page say to each other: imported by both (types only).

/** `GET /api/me` and the `app.state` method. */
export interface AppState {
  user: { id: string; name: string } | null
  count: number
  /** SS_TEST=1: the page shows the server's session id for e2e tests. */
  test: boolean
}

/** One live tab of the session, as the `tabs` event and `tabs.list` give it. */
export interface TabView {
  tabId: string
  /** When this tab's socket registered (ms since epoch). */
  since: number
}

/** The `counter` event, sent to every tab of the session after either path changed it. */
export interface CounterEvent {
  count: number
  via: 'http' | 'rpc'
  /** The tab that called, for RPC. */
  tabId?: string
}

/** The RPC methods of the demo server (a type alias, so that it fits `MethodMap`). */
export type DemoMethods = {
  'app.state': () => AppState
  'tabs.list': () => TabView[]
  'counter.increment': () => { count: number }
  'user.signOutEverywhere': () => { ended: boolean }
  /** Sign-in over the socket, for when cookies never reach the browser: the session is regenerated in the call. */
  'user.signIn': (params: { name: string }) => AppState
  /** Sign-out over the socket: destroys the session, which ends every tab of it. */
  'user.signOut': () => { ended: boolean }
  /** Only with SS_TEST=1. */
  'test.whoami': () => { sessionId: string; tabId: string }
}
