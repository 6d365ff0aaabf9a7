/**
 * One durable event as stored for one tab.
 *
 * @example
 * const stored: StoredEvent = { seq: streamBase(now) + 1, event: 'order:shipped', args: [{ id: 7 }], expiresAt: now + 600_000 }
 */
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
 * Bounds on one tab's stored durable events.
 *
 * @example
 * const quota: EventQuota = { maxEvents: 1000, maxBytes: 1_048_576 }
 */
export interface EventQuota {
  /** Most events kept for one tab. */
  maxEvents: number
  /** Most bytes (of `JSON.stringify([event, args])`) kept for one tab. */
  maxBytes: number
}

/**
 * What `readEvents` returns.
 *
 * @example
 * const { events, gap } = await streams.readEvents(tabId, lastApplied, Date.now())
 */
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

/**
 * What `appendEvent` stores: the event as the app emitted it, its size, and the app's key for it.
 *
 * @example
 * const event: NewDurableEvent = { event: 'invoice:paid', args: [{ id: 42 }], bytes: 28, key: 'invoice-42' }
 */
export interface NewDurableEvent {
  event: string
  args: unknown[]
  /** `JSON.stringify([event, args])` in bytes, counted against the tab's quota. */
  bytes: number
  /** The app's name for this event (`{ durable: true, key }`): the same key is appended to a tab once within the event's life. */
  key?: string | undefined
}

/**
 * One entry of `recordTabs`: a tab of a session was seen.
 *
 * @example
 * await streams.recordTabs([{ sessionId, tabId }], Date.now(), 600_000)
 */
export interface TabSeen {
  sessionId: string
  tabId: string
}

/**
 * Durable events: each tab's numbered stream of events waiting for it, and the tabs of each
 * session, so that an event for a session reaches its tabs that are away.
 *
 * Contract (`test/stores/contract.ts`, "durable events", and `test/stores/durable-events.ts`):
 * numbers are per tab, consecutive under concurrent appends, and a new stream never continues
 * an old one's numbers; a refused append stores nothing and uses no number.
 *
 * @example
 * const seq = await streams.appendEvent(tabId, { event: 'news', args: [1], bytes: 10 }, now + 600_000, quota, now)
 * const { events } = await streams.readEvents(tabId, seq - 1, now) // [{ seq, event: 'news', args: [1], … }]
 * await streams.ackEvents(tabId, seq)
 */
export interface EventStreams {
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
   *
   * With `event.key`, the append is idempotent for the tab: while an event appended for it with
   * that key has not expired (acknowledged or not), appending the key again stores nothing, checks
   * no quota and returns that event's number. A retried send thus reaches each tab once.
   */
  appendEvent(tabId: string, event: NewDurableEvent, expiresAt: number, quota: EventQuota, now: number): Promise<number>
  /** The tab's events after `afterSeq` (see EventRead). */
  readEvents(tabId: string, afterSeq: number, now: number): Promise<EventRead>
  /** Forgets the tab's events with `seq <= uptoSeq` (the tab applied them). */
  ackEvents(tabId: string, uptoSeq: number): Promise<void>
}
