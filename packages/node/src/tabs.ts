import type { Namespace } from 'socket.io'
import { nanoid } from 'nanoid'
import { EVENTS, SessionSocketError } from '@session-socket/protocol'
import type { SocketData, TabInfo } from './socket-data.js'

/**
 * Where a registering tab goes, across nodes: the same tab id in the same session is the tab
 * reconnecting (its old socket is replaced); a tab id live in another session gets a new id.
 * Returns the tab id to use.
 */
export async function placeTab(nsp: Namespace, sessionId: string, tabId: string): Promise<string> {
  let holders: Awaited<ReturnType<Namespace['fetchSockets']>>
  try {
    holders = await nsp.in(`tab:${tabId}`).fetchSockets()
  } catch (err) {
    // The adapter could not hear from every node (Redis away, a node frozen past the
    // adapter's requestsTimeout). Registering blind could leave two sockets for one tab, or
    // share a tab id between sessions; refusing as INTERNAL would end the tab for good.
    throw new SessionSocketError('STORE_UNAVAILABLE', 'the other nodes did not answer', { retryAfter: 1000, cause: err })
  }
  let foreign = false
  for (const holder of holders) {
    if ((holder.data as SocketData).sessionId === sessionId) {
      holder.emit(EVENTS.REPLACED)
      holder.disconnect(true)
    } else {
      foreign = true
    }
  }
  return foreign ? nanoid() : tabId
}

/** The live tabs of a session, on every node. */
export async function listTabs(nsp: Namespace, sessionId: string): Promise<TabInfo[]> {
  const sockets = await nsp.in(`session:${sessionId}`).fetchSockets()
  return sockets.map((socket) => {
    const data = socket.data as SocketData
    return { tabId: data.tabId, since: data.since, socketId: socket.id }
  })
}
