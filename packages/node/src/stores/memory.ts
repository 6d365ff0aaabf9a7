import { SessionSocketError, streamBase, type CallReply } from '@session-socket/protocol'
import { MemoryCallResults } from './memory-call-results.js'
import type { CallClaim, EventQuota, EventRead, LinkRecord, LinkStore, NewDurableEvent, RestoreCodeRecord, StoredEvent, TabSeen } from '../link-store.js'

interface TabStream {
  lastSeq: number
  bytes: number
  events: Array<StoredEvent & { bytes: number }>
  /** The stream (its sequence counter included) is forgotten after this. */
  expiresAt: number
  /** The keys of the events appended with one, until each event's expiry: acknowledged events' too. */
  keys?: Map<string, { seq: number; expiresAt: number }>
}

function add(index: Map<string, Set<string>>, key: string, hash: string): void {
  let set = index.get(key)
  if (!set) index.set(key, (set = new Set()))
  set.add(hash)
}

function remove(index: Map<string, Set<string>>, key: string, hash: string): void {
  const set = index.get(key)
  set?.delete(hash)
  if (set && set.size === 0) index.delete(key)
}

/** Options of {@link MemoryLinkStore}. */
export interface MemoryLinkStoreOptions {
  /**
   * Call replies kept for resends, for `resultTtl` each: the latest `maxResults` are always
   * kept, older ones may be forgotten early (a resend of one of those runs the call again), and
   * at most twice as many are in memory. The SQLite and Redis stores keep every reply for its
   * TTL. @default 100000
   */
  maxResults?: number
}

/**
 * Keeps links in this process's memory: the default for one process and for tests.
 * Everything is lost when the process exits; use the SQLite or Redis store to keep
 * tabs identified across restarts. Call replies are kept for `resultTtl`, but only the latest
 * `maxResults` (100,000) surely: a busy process stays bounded.
 *
 * @example
 * const ss = createSessionSocketServer(io, { session, store: new MemoryLinkStore() })
 */
export class MemoryLinkStore implements LinkStore {
  readonly #links = new Map<string, LinkRecord>()
  readonly #bySession = new Map<string, Set<string>>()
  readonly #byUser = new Map<string, Set<string>>()
  readonly #codes = new Map<string, RestoreCodeRecord>()
  readonly #calls: MemoryCallResults
  readonly #tabsBySession = new Map<string, Map<string, number>>()
  readonly #streams = new Map<string, TabStream>()

  async getLink(tokenHash: string): Promise<LinkRecord | null> {
    const record = this.#links.get(tokenHash)
    return record ? { ...record } : null
  }

  async putLink(tokenHash: string, record: LinkRecord): Promise<void> {
    this.#unindex(tokenHash)
    const copy = { ...record }
    if (copy.userId === undefined) delete copy.userId
    this.#links.set(tokenHash, copy)
    this.#index(tokenHash)
  }

  async touchLink(tokenHash: string, sessionId: string, lastSeenAt: number): Promise<void> {
    const record = this.#links.get(tokenHash)
    if (!record) return
    this.#unindex(tokenHash)
    record.sessionId = sessionId
    record.lastSeenAt = lastSeenAt
    this.#index(tokenHash)
  }

  async revokeLink(tokenHash: string, revokedAt: number): Promise<void> {
    const record = this.#links.get(tokenHash)
    if (record && record.revokedAt === undefined) record.revokedAt = revokedAt
  }

  async revokeSession(sessionId: string, revokedAt: number): Promise<number> {
    let count = 0
    for (const hash of this.#bySession.get(sessionId) ?? []) {
      const record = this.#links.get(hash)
      if (record && record.revokedAt === undefined) {
        record.revokedAt = revokedAt
        count++
      }
    }
    return count
  }

  async setSessionUser(sessionId: string, userId: string | null): Promise<number> {
    let count = 0
    // A copy: re-indexing takes each hash out of the session's set and puts it back.
    for (const hash of [...(this.#bySession.get(sessionId) ?? [])]) {
      const record = this.#links.get(hash)
      if (!record || record.userId === (userId ?? undefined)) continue
      this.#unindex(hash)
      if (userId === null) delete record.userId
      else record.userId = userId
      this.#index(hash)
      count++
    }
    return count
  }

  async userSessions(userId: string, now: number): Promise<string[]> {
    const sessions = new Set<string>()
    for (const hash of this.#byUser.get(userId) ?? []) {
      const record = this.#links.get(hash)
      if (record && record.expiresAt > now) sessions.add(record.sessionId)
    }
    return [...sessions]
  }

  async putRestoreCode(codeHash: string, record: RestoreCodeRecord): Promise<void> {
    this.#codes.set(codeHash, { ...record })
  }

  async takeRestoreCode(codeHash: string, now: number): Promise<RestoreCodeRecord | null> {
    const record = this.#codes.get(codeHash)
    if (!record) return null
    this.#codes.delete(codeHash)
    return record.expiresAt > now ? record : null
  }

  constructor(options: MemoryLinkStoreOptions = {}) {
    this.#calls = new MemoryCallResults(options.maxResults ?? 100_000)
  }

  /*
   * The call results answer at once, not with a promise (the synchronous fast path of
   * CallResults). Declared with the promise too, so that a subclass may answer later.
   */
  claimCall(key: string, ttlMs: number, now: number, owner?: string): CallClaim | Promise<CallClaim> {
    return this.#calls.claim(key, ttlMs, now, owner)
  }

  finishCall(key: string, reply: CallReply, ttlMs: number, now: number): void | Promise<void> {
    this.#calls.finish(key, reply, ttlMs, now)
  }

  releaseCall(key: string): void | Promise<void> {
    this.#calls.release(key)
  }

  async recordTabs(tabs: readonly TabSeen[], now: number, windowMs: number): Promise<number[]> {
    return tabs.map(({ sessionId, tabId }) => {
      let seen = this.#tabsBySession.get(sessionId)
      if (!seen) this.#tabsBySession.set(sessionId, (seen = new Map()))
      seen.set(tabId, now + windowMs)
      const stream = this.#streams.get(tabId)
      if (stream && stream.expiresAt > now) {
        stream.expiresAt = Math.max(stream.expiresAt, now + windowMs)
        return stream.lastSeq
      }
      // An expired stream's events are gone with it: a new, empty one starts in a later block.
      this.#streams.set(tabId, { lastSeq: streamBase(now), bytes: 0, events: [], expiresAt: now + windowMs })
      return streamBase(now)
    })
  }

  async sessionTabs(sessionId: string, now: number): Promise<string[]> {
    const tabs = this.#tabsBySession.get(sessionId)
    return tabs ? [...tabs].filter(([, until]) => until > now).map(([tabId]) => tabId) : []
  }

  async appendEvent(tabId: string, event: NewDurableEvent, expiresAt: number, quota: EventQuota, now: number): Promise<number> {
    const live = this.#streams.get(tabId)
    // A refused event must leave nothing behind, not even a new, empty stream.
    const stream: TabStream = live && live.expiresAt > now ? live : { lastSeq: streamBase(now), bytes: 0, events: [], expiresAt }
    const known = event.key === undefined ? undefined : stream.keys?.get(event.key)
    if (known && known.expiresAt > now) return known.seq
    this.#dropExpired(stream, now)
    if (stream.events.length + 1 > quota.maxEvents || stream.bytes + event.bytes > quota.maxBytes) {
      throw new SessionSocketError('QUOTA_EXCEEDED', `tab ${tabId} already holds ${stream.events.length} unacknowledged durable events (${stream.bytes} bytes)`)
    }
    this.#streams.set(tabId, stream)
    const seq = ++stream.lastSeq
    stream.events.push({ seq, event: event.event, args: event.args, expiresAt, bytes: event.bytes })
    stream.bytes += event.bytes
    stream.expiresAt = Math.max(stream.expiresAt, expiresAt)
    if (event.key !== undefined) {
      stream.keys ??= new Map()
      // Bounded like the events: past twice the quota, the expired keys go.
      if (stream.keys.size >= 2 * quota.maxEvents) for (const [key, entry] of stream.keys) if (entry.expiresAt <= now) stream.keys.delete(key)
      stream.keys.set(event.key, { seq, expiresAt })
    }
    return seq
  }

  async readEvents(tabId: string, afterSeq: number, now: number): Promise<EventRead> {
    const stream = this.#streams.get(tabId)
    if (!stream || stream.expiresAt <= now) return { lastSeq: 0, events: [], gap: afterSeq > 0 }
    this.#dropExpired(stream, now)
    const events = stream.events.filter((e) => e.seq > afterSeq).map(({ bytes: _bytes, ...e }) => ({ ...e, args: [...e.args] }))
    const gap = afterSeq > stream.lastSeq || (afterSeq < stream.lastSeq && events[0]?.seq !== afterSeq + 1)
    return { lastSeq: stream.lastSeq, events, gap }
  }

  async ackEvents(tabId: string, uptoSeq: number): Promise<void> {
    const stream = this.#streams.get(tabId)
    if (!stream) return
    while (stream.events[0] && stream.events[0].seq <= uptoSeq) stream.bytes -= stream.events.shift()!.bytes
  }

  #dropExpired(stream: TabStream, now: number): void {
    while (stream.events[0] && stream.events[0].expiresAt <= now) stream.bytes -= stream.events.shift()!.bytes
  }

  async sweep(now: number): Promise<number> {
    let count = 0
    for (const [tabId, stream] of this.#streams) {
      if (stream.expiresAt <= now) {
        this.#streams.delete(tabId)
        count++
      }
    }
    for (const [sessionId, tabs] of this.#tabsBySession) {
      for (const [tabId, until] of tabs) if (until <= now) tabs.delete(tabId)
      if (tabs.size === 0) this.#tabsBySession.delete(sessionId)
    }
    for (const [hash, record] of this.#links) {
      if (record.expiresAt <= now) {
        this.#unindex(hash)
        this.#links.delete(hash)
        count++
      }
    }
    for (const [hash, record] of this.#codes) {
      if (record.expiresAt <= now) {
        this.#codes.delete(hash)
        count++
      }
    }
    count += this.#calls.sweep(now)
    return count
  }

  async close(): Promise<void> {}

  /** Adds a stored link to its session's index and its user's. */
  #index(hash: string): void {
    const record = this.#links.get(hash)
    if (!record) return
    add(this.#bySession, record.sessionId, hash)
    if (record.userId !== undefined) add(this.#byUser, record.userId, hash)
  }

  /** Takes a stored link out of the indexes, before its session or user changes or it goes. */
  #unindex(hash: string): void {
    const record = this.#links.get(hash)
    if (!record) return
    remove(this.#bySession, record.sessionId, hash)
    if (record.userId !== undefined) remove(this.#byUser, record.userId, hash)
  }
}
