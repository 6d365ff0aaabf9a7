import { nanoid } from 'nanoid'
import { EVENTS, SessionSocketError } from '@session-socket/protocol'
import type { EventStreams } from './link-store.js'
import { sessionRoom, tabRoom, type SessionNamespace } from './rooms.js'
import type { TabInfo } from './socket-data.js'

/**
 * What `placeTab` reads to know who used a tab id lately, when the tab is not connected.
 *
 * @example
 * const tabId = await placeTab(nsp, sessionId, request.tabId, { streams: links, now: Date.now() })
 */
export interface RecentTabs {
  streams: EventStreams
  now: number
  /** The session the registering browser proved it held before (its token's), if another. */
  previousSessionId?: string | undefined
}

/**
 * Where a registering tab goes, across nodes: the same tab id in the same session is the tab
 * reconnecting (its old socket is replaced); a tab id live in another session gets a new id.
 * With `recent`, so does a tab id another session used lately (its durable stream still lives):
 * recorded call replies and durable events are kept by tab id, so a tab id is never handed to a
 * session that cannot prove it is the one that used it (the session itself, or the one its
 * token was linked to before a sign-in). Returns the tab id to use.
 */
export async function placeTab(nsp: SessionNamespace, sessionId: string, tabId: string, recent?: RecentTabs): Promise<string> {
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
  let own = false
  for (const holder of holders) {
    if (holder.data.sessionId === sessionId) {
      own = true
      holder.emit(EVENTS.REPLACED)
      holder.disconnect(true)
    } else {
      foreign = true
    }
  }
  if (foreign) return nanoid()
  if (own || !recent) return tabId
  return (await usedElsewhere(sessionId, tabId, recent)) ? nanoid() : tabId
}

/** True when a session other than `sessionId` (and the browser's previous one) used `tabId` lately. */
async function usedElsewhere(sessionId: string, tabId: string, recent: RecentTabs): Promise<boolean> {
  const { streams, now, previousSessionId } = recent
  if ((await streams.sessionTabs(sessionId, now)).includes(tabId)) return false
  if (previousSessionId !== undefined && previousSessionId !== sessionId && (await streams.sessionTabs(previousSessionId, now)).includes(tabId)) return false
  // A tab id nobody used has no stream: every registered tab gets one for the durable window.
  // Read past any seq: only the stream's end is wanted, none of its events.
  const { lastSeq } = await streams.readEvents(tabId, Number.MAX_SAFE_INTEGER, now)
  return lastSeq > 0
}

/** The live tabs of a session, on every node. */
export async function listTabs(nsp: SessionNamespace, sessionId: string): Promise<TabInfo[]> {
  const sockets = await nsp.in(sessionRoom(sessionId)).fetchSockets()
  return sockets.map((socket) => ({ tabId: socket.data.tabId, since: socket.data.since, socketId: socket.id }))
}
