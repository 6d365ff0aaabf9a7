import { nanoid } from 'nanoid'
import { EVENTS, SessionSocketError } from '@session-socket/protocol'
import { sessionRoom, tabRoom, type SessionNamespace } from './rooms.js'
import type { TabInfo } from './socket-data.js'

/**
 * Where a registering tab goes, across nodes: the same tab id in the same session is the tab
 * reconnecting (its old socket is replaced); a tab id live in another session gets a new id.
 * Returns the tab id to use.
 */
export async function placeTab(nsp: SessionNamespace, sessionId: string, tabId: string): Promise<string> {
  let holders: Awaited<ReturnType<SessionNamespace['fetchSockets']>>
  try {
    holders = await nsp.in(tabRoom(tabId)).fetchSockets()
  } catch (err) {
    // The adapter could not hear from every node (Redis away, a node frozen past the
    // adapter's requestsTimeout). Registering blind could leave two sockets for one tab, or
    // share a tab id between sessions; refusing as INTERNAL would end the tab for good.
    throw new SessionSocketError('STORE_UNAVAILABLE', 'the other nodes did not answer', { retryAfter: 1000, cause: err })
  }
  let foreign = false
  for (const holder of holders) {
    if (holder.data.sessionId === sessionId) {
      holder.emit(EVENTS.REPLACED)
      holder.disconnect(true)
    } else {
      foreign = true
    }
  }
  return foreign ? nanoid() : tabId
}

/** The live tabs of a session, on every node. */
export async function listTabs(nsp: SessionNamespace, sessionId: string): Promise<TabInfo[]> {
  const sockets = await nsp.in(sessionRoom(sessionId)).fetchSockets()
  return sockets.map((socket) => ({ tabId: socket.data.tabId, since: socket.data.since, socketId: socket.id }))
}
