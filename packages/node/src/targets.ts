import { SessionSocketError, type AnyEvents, type EventMap } from '@session-socket/protocol'
import { guardAppEvents } from './app-events.js'
import type { DurableEvents, DurableSendResult } from './durable.js'
import type { LinkStore } from './link-store.js'
import { sessionRoom, tabRoom, userRoom, type SessionNamespace } from './rooms.js'
import type { SessionSocketServer } from './session-socket-server.js'
import type { Users } from './users.js'

/**
 * Sends an event that every targeted tab gets exactly once, in order, even if it is away now.
 * Typed by the app's event map, as the plain emitters are.
 */
export interface DurableEmitter<AppEvents extends EventMap = AnyEvents> {
  /**
   * Keeps the event for each targeted tab (within the durable window) and emits it to those
   * connected. Resolves with each tab's sequence number and the tabs whose quota was full.
   */
  emit<E extends keyof AppEvents & string>(event: E, ...args: Parameters<AppEvents[E]>): Promise<DurableSendResult>
}

/** `{ durable: true }`: see {@link DurableEmitter}. */
export interface DurableFlag {
  durable: true
  /**
   * Names this event (e.g. `invoice:42:paid`), so that a retry of a send that failed part way
   * (a store outage in the middle of a session's tabs) reaches each tab once: a tab that already
   * got the event of this key keeps it under its number. A key stays known as long as its event
   * (the durable window), acknowledged or not. @default undefined (every send is a new event)
   */
  key?: string
}

/** The emit targets of the server object: a session, a tab, a user; plain or durable. */
export type Targets<AppEvents extends EventMap = AnyEvents> = Pick<SessionSocketServer<AppEvents>, 'toSession' | 'toTab' | 'toUser'>

/**
 * `toSession`, `toTab` and `toUser` for one server: a room of the namespace, or with
 * `{ durable: true }` the tabs the event is kept for.
 *
 * @example
 * const { toSession } = createTargets({ nsp, links, now: Date.now, durable, users })
 * await toSession(sessionId, { durable: true }).emit('invoice', { id })
 */
export function createTargets<AppEvents extends EventMap = AnyEvents>(deps: { nsp: SessionNamespace; links: LinkStore; now: () => number; durable: DurableEvents; users: Users }): Targets<AppEvents> {
  const { nsp, links, now, durable, users } = deps

  function durableEmitter(targets: () => Promise<Iterable<string>>, key: string | undefined): DurableEmitter {
    return { emit: async (event, ...args) => durable.send(await targets(), event, args, key) }
  }

  /** The tabs of these sessions: live now on any node, or seen within the durable window. */
  async function tabsOfSessions(sessionIds: Iterable<string>): Promise<Set<string>> {
    const tabs = new Set<string>()
    for (const sessionId of sessionIds) {
      for (const tabId of await links.sessionTabs(sessionId, now())) tabs.add(tabId)
      for (const socket of await nsp.in(sessionRoom(sessionId)).fetchSockets()) tabs.add(socket.data.tabId)
    }
    return tabs
  }

  return {
    toSession: ((sessionId: string, flag?: DurableFlag) =>
      flag?.durable ? durableEmitter(() => tabsOfSessions([sessionId]), flag.key) : guardAppEvents(nsp.to(sessionRoom(sessionId)), 'ss.toSession(…).emit')) as Targets<AppEvents>['toSession'],
    toTab: ((tabId: string, flag?: DurableFlag) =>
      flag?.durable
        ? {
            // One tab: a full quota is this send's failure, as a typed error.
            async emit(event: string, ...args: unknown[]) {
              const result = await durable.send([tabId], event, args, flag.key)
              if (result.refused.length > 0) throw new SessionSocketError('QUOTA_EXCEEDED', `tab ${tabId} already holds as many unacknowledged durable events as it may`)
              return result
            },
          }
        : guardAppEvents(nsp.to(tabRoom(tabId)), 'ss.toTab(…).emit')) as Targets<AppEvents>['toTab'],
    toUser: ((userId: string | number, flag?: DurableFlag) =>
      flag?.durable
        ? durableEmitter(async () => {
            // Also a browser of the user that is away now: its tabs seen within the window get
            // the event when back.
            return tabsOfSessions(await users.userSessionIds(String(userId)))
          }, flag.key)
        : guardAppEvents(nsp.to(userRoom(String(userId))), 'ss.toUser(…).emit')) as Targets<AppEvents>['toUser'],
  }
}
