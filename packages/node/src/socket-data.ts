/** What session-socket keeps in `socket.data` of a registered socket (visible to fetchSockets on every node). */
export interface SocketData {
  sessionId: string
  tabId: string
  /** When this tab's socket registered (ms since epoch). */
  since: number
  tokenHash: string
  userId?: string
}

/** One live tab of a session, as `ss.tabs()` lists it. */
export interface TabInfo {
  tabId: string
  since: number
  socketId: string
}
