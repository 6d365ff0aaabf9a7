import type { CallResults } from './link-store/call-results.js'
import type { EventStreams } from './link-store/event-streams.js'
import type { RestoreCodes } from './link-store/restore-codes.js'
import type { TokenLinks } from './link-store/token-links.js'

export type { CallClaim, CallResults } from './link-store/call-results.js'
export type { EventQuota, EventRead, EventStreams, NewDurableEvent, StoredEvent, TabSeen } from './link-store/event-streams.js'
export type { RestoreCodeRecord, RestoreCodes } from './link-store/restore-codes.js'
export type { LinkRecord, TokenLinks } from './link-store/token-links.js'

/**
 * Where session-socket keeps token links, restore codes, recent call results and durable event
 * streams: the four capabilities in one store, plus housekeeping.
 *
 * Every store passes the same suite, `test/stores/contract.ts`. TTLs (`expiresAt`, `ttlMs`) may
 * be enforced lazily, but an expired entry is never returned as live: `takeRestoreCode` returns
 * null for an expired code, `claimCall` treats an expired result as `new`.
 *
 * @example
 * const ss = createSessionSocketServer(io, { session, store: new MemoryLinkStore() })
 */
export interface LinkStore extends TokenLinks, RestoreCodes, CallResults, EventStreams {
  /** Deletes what has expired (links, codes, results, tabs, streams); returns how many entries went. */
  sweep(now: number): Promise<number>
  /** Releases connections and timers. */
  close(): Promise<void>
}
