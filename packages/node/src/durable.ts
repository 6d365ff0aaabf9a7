import createDebug from 'debug'
import type { Namespace } from 'socket.io'
import { EVENTS, SessionSocketError, checkJsonValue, type DurableEventPayload } from '@session-socket/protocol'
import { checkAppEvent } from './app-events.js'
import type { EventQuota, LinkStore, StoredEvent, TabSeen } from './link-store.js'
import { tabRoom, type SessionNamespace } from './rooms.js'
import { recordDurableEvents } from './telemetry.js'

const debug = createDebug('session-socket:durable')

/** Durable delivery settings. */
export interface DurableOptions {
  /** How long an event waits for a tab that is away, and how long a tab stays targeted by session-wide sends after it was last seen (ms). @default 600000 */
  window: number
  /** Most unacknowledged events kept per tab. @default 1000 */
  maxEvents: number
  /** Most bytes of unacknowledged events kept per tab. @default 1048576 */
  maxBytes: number
}

export const DEFAULT_DURABLE: DurableOptions = { window: 600_000, maxEvents: 1_000, maxBytes: 1_048_576 }

/** Longest event key (`{ durable: true, key }`). */
const MAX_KEY = 256

/**
 * Most tabs one `recordTabs` call carries. A bigger batch saves little more (the fixed cost of
 * a transaction or round trip is already shared) but blocks SQLite's writer, or Redis, longer.
 */
const MAX_BATCH = 512

/**
 * A batch started this soon after the previous one was written (ms) waits until this long after
 * it: in a reconnect storm the calls of one turn are one or two tabs, and a store write's fixed
 * cost (SQLite's BEGIN IMMEDIATE and COMMIT, a Redis round trip) is most of a tab's. A lone
 * reconnect still writes at the end of its turn.
 */
const GATHER_MS = 4

/** The `seen` calls of one event-loop turn, written by one `recordTabs` call. */
interface SeenBatch {
  tabs: TabSeen[]
  /** Settles with the store call; `lastSeqs[i]` belongs to `tabs[i]`. */
  written: Promise<number[]>
  write: () => void
}

/** What a durable send did, per targeted tab. */
export interface DurableSendResult {
  /** Sequence number given to the event, by tab id. */
  seqs: Record<string, number>
  /** Tabs whose quota was full: the event was not kept for them (QUOTA_EXCEEDED). */
  refused: string[]
}

/** Where a registering tab stands in its durable stream. */
export interface StreamPosition {
  seq: number
  gap: boolean
  replay: StoredEvent[]
}

/**
 * Durable server → tab events: kept per tab in the link store with a sequence number,
 * emitted live to the tab's room, replayed after register, forgotten once acknowledged.
 */
export class DurableEvents {
  readonly #links: LinkStore
  readonly #nsp: Namespace
  readonly #now: () => number
  readonly #options: DurableOptions
  readonly #quota: EventQuota
  #batch: SeenBatch | undefined
  /** performance.now() when the last batch was handed to the store. */
  #lastWriteAt = -Infinity

  constructor(links: LinkStore, nsp: Namespace, now: () => number, options: DurableOptions) {
    this.#links = links
    this.#nsp = nsp
    this.#now = now
    this.#options = options
    this.#quota = { maxEvents: options.maxEvents, maxBytes: options.maxBytes }
  }

  /**
   * The tab was seen (register, disconnect, keep-alive): session-wide sends reach it for the
   * window. Calls made in the same event-loop turn (a reconnect storm, a mass disconnect, the
   * keep-alive sweep) are written together by one `recordTabs` at the end of the turn
   * (`setImmediate`), or GATHER_MS after the previous batch when that one was written less than
   * GATHER_MS ago, or as soon as MAX_BATCH are waiting; each call settles with its batch.
   * Resolves with the tab's last sequence number once recorded.
   */
  seen(sessionId: string, tabId: string): Promise<number> {
    const batch = this.#batch ?? this.#startBatch()
    const index = batch.tabs.push({ sessionId, tabId }) - 1
    if (batch.tabs.length >= MAX_BATCH) batch.write()
    return batch.written.then((lastSeqs) => lastSeqs[index]!)
  }

  #startBatch(): SeenBatch {
    let write!: () => void
    const started = new Promise<void>((resolve) => (write = resolve))
    const batch: SeenBatch = {
      tabs: [],
      written: started.then(() => this.#links.recordTabs(batch.tabs, this.#now(), this.#options.window)),
      write: () => {
        // Later calls start a new batch: this one's list is about to be read.
        if (this.#batch === batch) {
          this.#batch = undefined
          this.#lastWriteAt = performance.now()
        }
        write()
      },
    }
    this.#batch = batch
    const wait = this.#lastWriteAt + GATHER_MS - performance.now()
    if (wait > 0) setTimeout(batch.write, wait)
    else setImmediate(batch.write)
    return batch
  }

  /**
   * Where a registering tab stands, after recording it seen (a tab without a stream gets one
   * there, so it knows where its numbering starts). The stream's end comes with the record: a
   * fresh page, or a tab that missed nothing (the common reconnect), needs no read.
   */
  async enter(sessionId: string, tabId: string, afterSeq: number | undefined): Promise<StreamPosition> {
    const lastSeq = await this.seen(sessionId, tabId)
    if (afterSeq === undefined) return { seq: lastSeq, gap: false, replay: [] }
    if (afterSeq === lastSeq) return { seq: afterSeq, gap: false, replay: [] }
    return this.position(tabId, afterSeq)
  }

  /**
   * Where a registering tab stands. `afterSeq` undefined (a fresh page): at the stream's end,
   * nothing replayed. Otherwise the events after it, and whether some are gone.
   */
  async position(tabId: string, afterSeq: number | undefined): Promise<StreamPosition> {
    const read = await this.#links.readEvents(tabId, afterSeq ?? 0, this.#now())
    if (afterSeq === undefined) return { seq: read.lastSeq, gap: false, replay: [] }
    if (!read.gap) return { seq: afterSeq, gap: false, replay: read.events }
    // The tab resumes just before the oldest event still kept (or at the end).
    const first = read.events[0]
    return { seq: first ? first.seq - 1 : read.lastSeq, gap: true, replay: read.events }
  }

  /** Sends replayed events to one socket, in order. */
  replay(emit: (payload: DurableEventPayload) => void, events: StoredEvent[]): void {
    recordDurableEvents('replayed', events.length)
    for (const event of events) emit({ seq: event.seq, e: event.event, a: event.args })
  }

  ack(tabId: string, seq: number): Promise<void> {
    return this.#links.ackEvents(tabId, seq)
  }

  /**
   * Keeps the event for each tab, then emits it to the tabs that are connected (any node). With
   * `key`, a tab that already has the event of that key (an earlier try of this send that failed
   * part way) keeps its copy and number: a retry with the same key reaches every tab once.
   */
  async send(tabIds: Iterable<string>, event: string, args: unknown[], key?: string): Promise<DurableSendResult> {
    checkAppEvent('durable emit', event)
    if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY)) {
      throw new TypeError(`durable emit '${event}': key must be a string of 1 to ${MAX_KEY} characters naming this event (got ${JSON.stringify(key)})`)
    }
    const problem = checkJsonValue(args)
    if (problem) throw new TypeError(`durable emit '${event}': arguments must be plain JSON data (${problem.replace(/^params/, 'args')})`)
    const bytes = Buffer.byteLength(JSON.stringify([event, args]))
    const expiresAt = this.#now() + this.#options.window
    const result: DurableSendResult = { seqs: {}, refused: [] }
    for (const tabId of new Set(tabIds)) {
      try {
        const seq = await this.#links.appendEvent(tabId, { event, args, bytes, key }, expiresAt, this.#quota, this.#now())
        result.seqs[tabId] = seq
        recordDurableEvents('kept')
        // A tab that had it already (a retried key) drops this copy by its seq.
        this.#nsp.to(tabRoom(tabId)).emit(EVENTS.EVENT, { seq, e: event, a: args })
      } catch (err) {
        if (err instanceof SessionSocketError && err.code === 'QUOTA_EXCEEDED') {
          debug('durable event refused for a tab: quota full')
          recordDurableEvents('refused')
          result.refused.push(tabId)
          continue
        }
        throw err
      }
    }
    return result
  }
}

/**
 * Every half window (at least every second), records every registered tab of this node as
 * seen. A connected tab that neither reconnects nor gets events keeps its durable stream (and
 * so its numbering) alive: otherwise the next event would start a new stream and read as a
 * gap. The calls of one pass are one turn: `seen` writes them in batches (`recordTabs`).
 *
 * @example
 * const timer = keepStreamsAlive(nsp, durable, DEFAULT_DURABLE.window)
 * clearInterval(timer) // on close
 */
export function keepStreamsAlive(nsp: SessionNamespace, durable: DurableEvents, window: number): NodeJS.Timeout {
  const timer = setInterval(() => {
    for (const socket of nsp.sockets.values()) {
      const data = socket.data
      if (data.sessionId === undefined || data.tabId === undefined) continue
      durable.seen(data.sessionId, data.tabId).catch((err) => debug('keeping a stream alive failed: %s', (err as Error).message))
    }
  }, Math.max(1_000, window / 2))
  timer.unref()
  return timer
}
