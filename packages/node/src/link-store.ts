import type { CallReply } from '@session-socket/protocol'

/**
 * What the server keeps for one link token. The token itself is never stored: records
 * are keyed by `sha256(token)` in base64url (see `hashSecret`).
 */
export interface LinkRecord {
  /** The express-session id the token is linked to. */
  sessionId: string
  /** When the token was minted (ms since epoch). */
  createdAt: number
  /** Last successful register with this token (ms since epoch). */
  lastSeenAt: number
  /** Absolute expiry (ms since epoch): the token is refused after this, whatever its use. */
  expiresAt: number
  /** Set when the token was revoked (logout, session destroyed); kept until `expiresAt` so the reason can be told. */
  revokedAt?: number
  /**
   * Set when rotation replaced this token by a successor (ms since epoch). It is still accepted
   * within the rotation grace window (tabs racing the rotation); presented later, it is reuse.
   */
  replacedAt?: number
  /**
   * The user of the session as `identify` last named it, so that `endUser` reaches the session
   * even when none of its tabs is connected. Absent when unknown or anonymous.
   */
  userId?: string
}

/** A one-time restore code, bound to one session. */
export interface RestoreCodeRecord {
  sessionId: string
  expiresAt: number
}

/** One durable event as stored for one tab. */
export interface StoredEvent {
  /** Per-tab sequence number: 1, 2, 3… with no holes. */
  seq: number
  /** Event name and arguments, as the app emitted them (JSON). */
  event: string
  args: unknown[]
  /** When it stops being replayable (ms since epoch). */
  expiresAt: number
}

/**
 * Where a new stream's numbering starts: whole seconds since the epoch × 1,000,000. A tab
 * holding a number of an older (forgotten) stream sees the new stream's numbers in another
 * million block and knows events may have been lost, instead of taking them for duplicates.
 */
export function streamBase(now: number): number {
  return Math.floor(now / 1000) * 1_000_000
}

/** Bounds on one tab's stored durable events. */
export interface EventQuota {
  /** Most events kept for one tab. */
  maxEvents: number
  /** Most bytes (of `JSON.stringify([event, args])`) kept for one tab. */
  maxBytes: number
}

/** What `readEvents` returns. */
export interface EventRead {
  /** The last sequence number ever given to this tab (0 if none). */
  lastSeq: number
  /** Stored, unexpired events with `seq > afterSeq`, in order. */
  events: StoredEvent[]
  /**
   * True when some event in `(afterSeq, lastSeq]` is no longer stored (expired, or never
   * acknowledged before the store forgot it): the tab must be told about the gap.
   */
  gap: boolean
}

/** One entry of `recordTabs`: a tab of a session was seen. */
export interface TabSeen {
  sessionId: string
  tabId: string
}

/** State of one call id in the results memory. */
export type CallClaim =
  | { state: 'new' }
  | { state: 'pending' }
  | { state: 'done'; reply: CallReply }

/**
 * Where session-socket keeps token links, restore codes and recent call results.
 *
 * Contract (every store passes the same suite, `test/stores/contract.ts`):
 * - `getLink` returns the record as stored, revoked or past `expiresAt` included, or null
 *   when never stored or already swept. Callers decide what an expired record means.
 * - `revokeSession`, `relinkSession` and `setSessionUser` act on every link of the session at once.
 * - `touchLink` and `relinkSession` keep a link's `userId`; `userSessions` follows the link.
 * - `takeRestoreCode` is atomic: of two concurrent takes of one code, exactly one gets it.
 * - `claimCall` is atomic: of two concurrent claims of one key, exactly one gets `new`.
 * - TTLs (`expiresAt`, `ttlMs`) may be enforced lazily, but an expired entry is never returned
 *   as live: `takeRestoreCode` returns null for an expired code, `claimCall` treats an
 *   expired result as `new`.
 */
export interface LinkStore {
  getLink(tokenHash: string): Promise<LinkRecord | null>
  /** Stores a new link (overwrites a record with the same hash). */
  putLink(tokenHash: string, record: LinkRecord): Promise<void>
  /** Points one token at another session and records `lastSeenAt`. No-op if unknown. */
  touchLink(tokenHash: string, sessionId: string, lastSeenAt: number): Promise<void>
  /** Marks one token revoked. No-op if unknown. */
  revokeLink(tokenHash: string, revokedAt: number): Promise<void>
  /** Marks every live token of the session revoked; returns how many. */
  revokeSession(sessionId: string, revokedAt: number): Promise<number>
  /** Moves every live token of `fromSessionId` to `toSessionId`; returns how many. */
  relinkSession(fromSessionId: string, toSessionId: string): Promise<number>
  /**
   * Names the user of every link of the session, revoked ones included (`null`: no user);
   * returns how many links changed.
   */
  setSessionUser(sessionId: string, userId: string | null): Promise<number>
  /**
   * The sessions that have an unexpired link (`expiresAt > now`) naming this user, each once.
   * Revoked links count: their session may still be alive over HTTP.
   */
  userSessions(userId: string, now: number): Promise<string[]>

  putRestoreCode(codeHash: string, record: RestoreCodeRecord): Promise<void>
  /** Returns and deletes the code in one step; null if unknown, taken or expired. */
  takeRestoreCode(codeHash: string, now: number): Promise<RestoreCodeRecord | null>

  /** Claims a call key for execution, or reports it pending or done. */
  claimCall(key: string, ttlMs: number, now: number): Promise<CallClaim>
  /** Stores the reply of a claimed call for `ttlMs`. */
  finishCall(key: string, reply: CallReply, ttlMs: number, now: number): Promise<void>
  /** Forgets a claim whose call never ran to completion (so a resend runs it). */
  releaseCall(key: string): Promise<void>

  /**
   * Remembers, for each entry, that `tabId` belongs to `sessionId` and was seen at `now`, for
   * `windowMs`, so durable events for the session reach it while it is away. Keeps each tab's
   * stream alive for the window, and starts one at `streamBase(now)` (no events) if it has none:
   * the tab then knows where its stream begins, so a later stream's numbers show a gap.
   *
   * One call is one write for the whole batch (one transaction, one round trip): a reconnect
   * storm records thousands of tabs. Each entry is applied atomically; a tab may appear more
   * than once. Resolves with each entry's last sequence number after recording, in order (what
   * `readEvents(tabId, …).lastSeq` would answer at that instant).
   */
  recordTabs(tabs: readonly TabSeen[], now: number, windowMs: number): Promise<number[]>
  /** Tabs of the session seen within their window. */
  sessionTabs(sessionId: string, now: number): Promise<string[]>
  /**
   * Appends one durable event for a tab and returns its sequence number. Atomic: concurrent
   * appends for one tab get consecutive numbers. A tab with no live stream (never had one, or
   * it expired) starts a new one at `streamBase(now) + 1`, so numbers of a new stream never
   * continue an old one (see `streamBase`). Rejects with SessionSocketError QUOTA_EXCEEDED
   * (nothing stored, no number used) when the tab's unacknowledged events would exceed `quota`.
   */
  appendEvent(tabId: string, event: { event: string; args: unknown[]; bytes: number }, expiresAt: number, quota: EventQuota, now: number): Promise<number>
  /** The tab's events after `afterSeq` (see EventRead). */
  readEvents(tabId: string, afterSeq: number, now: number): Promise<EventRead>
  /** Forgets the tab's events with `seq <= uptoSeq` (the tab applied them). */
  ackEvents(tabId: string, uptoSeq: number): Promise<void>

  /** Deletes expired links, codes and results; returns how many rows went. */
  sweep(now: number): Promise<number>
  /** Releases connections and timers. */
  close(): Promise<void>
}
