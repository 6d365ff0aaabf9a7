import Database from 'better-sqlite3'
import createDebug from 'debug'
import { SessionSocketError, streamBase, type CallReply } from '@session-socket/protocol'
import type {
  CallClaim,
  EventQuota,
  EventRead,
  LinkRecord,
  LinkStore,
  NewDurableEvent,
  RestoreCodeRecord,
  StoredEvent,
  TabSeen,
} from '../link-store.js'

const debug = createDebug('session-socket:sqlite')

/** Options shared by both ways of giving the store its database. */
interface SqliteLinkStoreCommonOptions {
  /**
   * How often expired links, restore codes, call results, tabs and durable events are deleted,
   * in ms. `0` disables the timer (call `sweep` yourself then).
   * @default 60000
   */
  sweepIntervalMs?: number
}

/** Options of {@link SqliteLinkStore}: a file path the store opens, or a database you own. */
export type SqliteLinkStoreOptions =
  | (SqliteLinkStoreCommonOptions & {
      /** File the store opens (and creates); `close()` closes it. */
      path: string
    })
  | (SqliteLinkStoreCommonOptions & {
      /**
       * An open better-sqlite3 database, e.g. the one your session store uses. `close()` leaves
       * it open. The store switches it to WAL and raises `synchronous` to NORMAL if it was OFF.
       */
      database: Database.Database
    })

interface LinkRow {
  session_id: string
  created_at: number
  last_seen_at: number
  expires_at: number
  revoked_at: number | null
  replaced_at: number | null
  successor: string | null
  predecessor: string | null
  user_id: string | null
}

interface CodeRow {
  session_id: string
  expires_at: number
}

interface CallRow {
  reply: string | null
  expires_at: number
  owner: string | null
}

interface StreamRow {
  last_seq: number
  expires_at: number
}

interface EventRow {
  seq: number
  event: string
  args_json: string
  expires_at: number
}

interface QuotaRow {
  n: number
  bytes: number
}

interface EventsQuery {
  tabId: string
  afterSeq: number
  now: number
}


/**
 * 1: links, restore codes, call results, durable events (replaced_at added in place).
 * 2: ss_links.user_id and its index, for `userSessions` (endUser); ss_links.successor and
 *    predecessor (rotation's reuse detection) added in place: code that does not know them
 *    leaves them alone.
 */
const SCHEMA_VERSION = 2

/*
 * Tables are prefixed `ss_` so one file can also hold the express-session table. `PRAGMA
 * user_version` is left alone for the same reason: it belongs to the whole file, not to us.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS ss_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ss_links (
  token_hash TEXT PRIMARY KEY,
  session_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER,
  replaced_at INTEGER,
  user_id TEXT,
  successor TEXT,
  predecessor TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ss_links_session_id ON ss_links (session_id);
CREATE INDEX IF NOT EXISTS ss_links_expires_at ON ss_links (expires_at);
CREATE TABLE IF NOT EXISTS ss_restore_codes (
  code_hash TEXT PRIMARY KEY,
  session_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ss_restore_codes_expires_at ON ss_restore_codes (expires_at);
CREATE TABLE IF NOT EXISTS ss_calls (
  call_key TEXT PRIMARY KEY,
  reply TEXT,
  expires_at INTEGER NOT NULL,
  owner TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ss_calls_expires_at ON ss_calls (expires_at);
CREATE TABLE IF NOT EXISTS ss_tabs (
  session_id TEXT NOT NULL,
  tab_id TEXT NOT NULL,
  seen_until INTEGER NOT NULL,
  PRIMARY KEY (session_id, tab_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ss_tabs_seen_until ON ss_tabs (seen_until);
CREATE TABLE IF NOT EXISTS ss_streams (
  tab_id TEXT PRIMARY KEY,
  last_seq INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ss_streams_expires_at ON ss_streams (expires_at);
-- A rowid table: args_json can be kilobytes, too wide for a WITHOUT ROWID b-tree.
CREATE TABLE IF NOT EXISTS ss_events (
  tab_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  event TEXT NOT NULL,
  args_json TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (tab_id, seq)
);
CREATE INDEX IF NOT EXISTS ss_events_expires_at ON ss_events (expires_at);
-- The keys of events appended with one (appendEvent's event.key), kept until the event expires.
-- A table older versions ignore: no schema version of its own.
CREATE TABLE IF NOT EXISTS ss_event_keys (
  tab_id TEXT NOT NULL,
  key TEXT NOT NULL,
  seq INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (tab_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ss_event_keys_expires_at ON ss_event_keys (expires_at);
`

/*
 * Result codes that say "the database cannot be used right now" rather than "this code is
 * wrong": another process holds the write lock, the disk failed or is full, the file went away.
 * They become STORE_UNAVAILABLE so callers answer "retry later" instead of "internal error".
 */
const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|PROTOCOL|NOMEM|READONLY)/

/*
 * Runs `fn` synchronously and turns SQLite failures of availability into the typed error.
 * Anything else (a constraint or schema error) is a bug and is rethrown as is.
 */
function guard<T>(op: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    // better-sqlite3's TypeError for a database its owner closed (a database passed in) is the same shutdown.
    if ((err instanceof Database.SqliteError && UNAVAILABLE_CODES.test(err.code)) || (err instanceof TypeError && err.message === 'The database connection is not open')) {
      debug('%s failed: %s %s', op, (err as { code?: string }).code, err.message)
      throw new SessionSocketError('STORE_UNAVAILABLE', 'link store unavailable', { retryAfter: 1000, cause: err })
    }
    throw err
  }
}

function toLinkRecord(row: LinkRow): LinkRecord {
  const record: LinkRecord = {
    sessionId: row.session_id,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    expiresAt: row.expires_at,
  }
  if (row.revoked_at !== null) record.revokedAt = row.revoked_at
  if (row.replaced_at !== null) record.replacedAt = row.replaced_at
  if (row.successor !== null) record.successor = row.successor
  if (row.predecessor !== null) record.predecessor = row.predecessor
  if (row.user_id !== null) record.userId = row.user_id
  return record
}

/**
 * Keeps links in a SQLite file through better-sqlite3, so tabs stay identified across server
 * restarts of a single host (several processes on one host may share the file). The file may be
 * the one your express-session store uses: every table here is prefixed `ss_`. Durable events
 * wait for their tab in `ss_events`, numbered per tab by `ss_streams`; `ss_tabs` lists the tabs
 * of each session.
 *
 * better-sqlite3 is synchronous: each call blocks the event loop for the duration of one
 * statement or transaction (a `recordTabs` batch is one transaction for all its tabs, the longest
 * block), and up to the 2 s busy timeout when another process holds the write lock, after which
 * the call rejects with STORE_UNAVAILABLE.
 *
 * @example
 * import { SqliteLinkStore } from '@session-socket/node/sqlite'
 * const store = new SqliteLinkStore({ path: './data/app.db' })
 * const ss = createSessionSocketServer(io, { session, store })
 */
export class SqliteLinkStore implements LinkStore {
  readonly #db: Database.Database
  readonly #ownsDb: boolean
  readonly #timer: ReturnType<typeof setInterval> | undefined
  #closed = false

  readonly #getLink: Database.Statement<[string], LinkRow>
  readonly #putLink: Database.Statement<[string, string, number, number, number, number | null, number | null, string | null, string | null, string | null]>
  readonly #touchLink: Database.Statement<[string, number, string]>
  readonly #revokeLink: Database.Statement<[number, string]>
  readonly #revokeSession: Database.Statement<[number, string]>
  readonly #setSessionUser: Database.Statement<[string | null, string, string | null]>
  readonly #userSessions: Database.Statement<[string, number], { session_id: string }>
  readonly #putCode: Database.Statement<[string, string, number]>
  readonly #takeCode: Database.Statement<[string], CodeRow>
  readonly #getCall: Database.Statement<[string], CallRow>
  readonly #putCall: Database.Statement<[string, string | null, number]>
  readonly #putClaim: Database.Statement<[string, number, string | null]>
  readonly #deleteCall: Database.Statement<[string]>
  readonly #sweepLinks: Database.Statement<[number]>
  readonly #sweepCodes: Database.Statement<[number]>
  readonly #sweepCalls: Database.Statement<[number]>
  readonly #putTab: Database.Statement<[string, string, number]>
  readonly #extendStream: Database.Statement<[number, string, number], { last_seq: number }>
  readonly #sessionTabs: Database.Statement<[string, number], { tab_id: string }>
  readonly #getStream: Database.Statement<[string], StreamRow>
  readonly #putStream: Database.Statement<[string, number, number]>
  readonly #eventQuota: Database.Statement<[string, number], QuotaRow>
  readonly #dropEvents: Database.Statement<[string]>
  readonly #putEvent: Database.Statement<[string, number, string, string, number, number]>
  readonly #readEvents: Database.Statement<[EventsQuery], EventRow>
  readonly #ackEvents: Database.Statement<[string, number]>
  readonly #sweepTabs: Database.Statement<[number]>
  readonly #sweepStreams: Database.Statement<[number]>
  readonly #sweepEvents: Database.Statement<[number]>
  readonly #getKey: Database.Statement<[string, string, number], { seq: number }>
  readonly #putKey: Database.Statement<[string, string, number, number]>
  readonly #dropKeys: Database.Statement<[string]>
  readonly #sweepKeys: Database.Statement<[number]>
  readonly #claim: (key: string, ttlMs: number, now: number, owner: string | undefined) => CallClaim
  readonly #recordTabs: (tabs: readonly TabSeen[], now: number, windowMs: number) => number[]
  readonly #append: (tabId: string, event: NewDurableEvent, expiresAt: number, quota: EventQuota, now: number) => number
  readonly #read: (tabId: string, afterSeq: number, now: number) => EventRead
  readonly #sweep: (now: number) => number

  constructor(options: SqliteLinkStoreOptions) {
    const sweepIntervalMs = options.sweepIntervalMs ?? 60_000
    if ('database' in options) {
      this.#db = options.database
      this.#ownsDb = false
    } else {
      /*
       * better-sqlite3 waits for a lock by blocking the thread; 2 s bounds how long one busy
       * writer in another process can freeze this one before the call fails as unavailable.
       */
      this.#db = new Database(options.path, { timeout: 2000 })
      this.#ownsDb = true
    }
    const db = this.#db

    /*
     * WAL: readers never block the writer, and a commit is one append to the -wal file.
     * synchronous=NORMAL in WAL mode does not fsync on every commit, but the commit is in the
     * OS page cache once the statement returns, so it survives kill -9 of this process (the
     * case that matters: a deploy, a crash, an OOM kill). Only an OS crash or power loss can
     * drop the last commits, which FULL (SQLite's default) would cover at the price of one
     * fsync per write. A database you pass in keeps its own setting unless it is OFF.
     *
     * No STORE_UNAVAILABLE conversion while opening: a wrong path or a locked file at startup
     * is a configuration error and should fail loudly with SQLite's own message.
     */
    if (!db.memory) db.pragma('journal_mode = WAL')
    if (this.#ownsDb || Number(db.pragma('synchronous', { simple: true })) < 1) db.pragma('synchronous = NORMAL')
    db.exec(SCHEMA)
    // Under the write lock, so two processes opening one older file at once migrate it once.
    const migrate = db.transaction(() => {
      const version = db.prepare<[], { value: string }>(`SELECT value FROM ss_meta WHERE key = 'schema_version'`).get()
      if (version !== undefined && Number(version.value) > SCHEMA_VERSION) {
        throw new Error(`ss_ tables have schema version ${version.value}; this session-socket knows ${SCHEMA_VERSION}`)
      }
      const columns = new Set(db.prepare<[], { name: string }>('PRAGMA table_info(ss_links)').all().map((column) => column.name))
      // Files made before token rotation existed lack replaced_at; version 1 files lack user_id; older files lack successor and predecessor.
      if (!columns.has('replaced_at')) db.exec('ALTER TABLE ss_links ADD COLUMN replaced_at INTEGER')
      if (!columns.has('user_id')) db.exec('ALTER TABLE ss_links ADD COLUMN user_id TEXT')
      if (!columns.has('successor')) db.exec('ALTER TABLE ss_links ADD COLUMN successor TEXT')
      if (!columns.has('predecessor')) db.exec('ALTER TABLE ss_links ADD COLUMN predecessor TEXT')
      // Who holds a pending claim (claimCall's owner). Older versions leave it NULL: no schema version of its own.
      const callColumns = new Set(db.prepare<[], { name: string }>('PRAGMA table_info(ss_calls)').all().map((column) => column.name))
      if (!callColumns.has('owner')) db.exec('ALTER TABLE ss_calls ADD COLUMN owner TEXT')
      // Partial: most links of most apps name no user, and `user_id = ?` only looks for one.
      db.exec('CREATE INDEX IF NOT EXISTS ss_links_user_id ON ss_links (user_id) WHERE user_id IS NOT NULL')
      if (version?.value !== String(SCHEMA_VERSION)) {
        db.prepare(`INSERT OR REPLACE INTO ss_meta (key, value) VALUES ('schema_version', ?)`).run(String(SCHEMA_VERSION))
      }
    })
    try {
      migrate.immediate()
    } catch (err) {
      if (this.#ownsDb) db.close()
      throw err
    }

    this.#getLink = db.prepare(
      'SELECT session_id, created_at, last_seen_at, expires_at, revoked_at, replaced_at, successor, predecessor, user_id FROM ss_links WHERE token_hash = ?',
    )
    this.#putLink = db.prepare(
      `INSERT OR REPLACE INTO ss_links (token_hash, session_id, created_at, last_seen_at, expires_at, revoked_at, replaced_at, user_id, successor, predecessor)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    this.#touchLink = db.prepare('UPDATE ss_links SET session_id = ?, last_seen_at = ? WHERE token_hash = ?')
    this.#revokeLink = db.prepare('UPDATE ss_links SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL')
    this.#revokeSession = db.prepare(
      'UPDATE ss_links SET revoked_at = ? WHERE session_id = ? AND revoked_at IS NULL',
    )
    this.#setSessionUser = db.prepare('UPDATE ss_links SET user_id = ? WHERE session_id = ? AND user_id IS NOT ?')
    this.#userSessions = db.prepare('SELECT DISTINCT session_id FROM ss_links WHERE user_id = ? AND expires_at > ?')
    this.#putCode = db.prepare(
      'INSERT OR REPLACE INTO ss_restore_codes (code_hash, session_id, expires_at) VALUES (?, ?, ?)',
    )
    // One statement reads and deletes, so two takers (even in two processes) cannot both get it.
    this.#takeCode = db.prepare(
      'DELETE FROM ss_restore_codes WHERE code_hash = ? RETURNING session_id, expires_at',
    )
    this.#getCall = db.prepare('SELECT reply, expires_at, owner FROM ss_calls WHERE call_key = ?')
    this.#putCall = db.prepare('INSERT OR REPLACE INTO ss_calls (call_key, reply, expires_at) VALUES (?, ?, ?)')
    this.#putClaim = db.prepare('INSERT OR REPLACE INTO ss_calls (call_key, reply, expires_at, owner) VALUES (?, NULL, ?, ?)')
    this.#deleteCall = db.prepare('DELETE FROM ss_calls WHERE call_key = ?')
    this.#sweepLinks = db.prepare('DELETE FROM ss_links WHERE expires_at <= ?')
    this.#sweepCodes = db.prepare('DELETE FROM ss_restore_codes WHERE expires_at <= ?')
    this.#sweepCalls = db.prepare('DELETE FROM ss_calls WHERE expires_at <= ?')
    this.#putTab = db.prepare(
      `INSERT INTO ss_tabs (session_id, tab_id, seen_until) VALUES (?, ?, ?)
       ON CONFLICT (session_id, tab_id) DO UPDATE SET seen_until = excluded.seen_until`,
    )
    // Only a live stream is extended: an expired one is forgotten, swept or not.
    this.#extendStream = db.prepare(
      'UPDATE ss_streams SET expires_at = max(expires_at, ?) WHERE tab_id = ? AND expires_at > ? RETURNING last_seq',
    )
    this.#sessionTabs = db.prepare('SELECT tab_id FROM ss_tabs WHERE session_id = ? AND seen_until > ? ORDER BY tab_id')
    this.#getStream = db.prepare('SELECT last_seq, expires_at FROM ss_streams WHERE tab_id = ?')
    this.#putStream = db.prepare(
      `INSERT INTO ss_streams (tab_id, last_seq, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (tab_id) DO UPDATE SET last_seq = excluded.last_seq, expires_at = excluded.expires_at`,
    )
    /*
     * Counted, not kept as running totals: a total would have to follow every ack, every expiry
     * and every sweep, while this reads one tab's range of the primary key, which the quota
     * itself keeps short.
     */
    this.#eventQuota = db.prepare(
      'SELECT count(*) AS n, total(bytes) AS bytes FROM ss_events WHERE tab_id = ? AND expires_at > ?',
    )
    this.#dropEvents = db.prepare('DELETE FROM ss_events WHERE tab_id = ?')
    this.#putEvent = db.prepare(
      'INSERT INTO ss_events (tab_id, seq, event, args_json, bytes, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
    )
    this.#readEvents = db.prepare(
      `SELECT seq, event, args_json, expires_at FROM ss_events
       WHERE tab_id = @tabId AND seq > @afterSeq AND expires_at > @now ORDER BY seq`,
    )
    this.#ackEvents = db.prepare('DELETE FROM ss_events WHERE tab_id = ? AND seq <= ?')
    this.#sweepTabs = db.prepare('DELETE FROM ss_tabs WHERE seen_until <= ?')
    this.#sweepStreams = db.prepare('DELETE FROM ss_streams WHERE expires_at <= ?')
    this.#sweepEvents = db.prepare('DELETE FROM ss_events WHERE expires_at <= ?')
    this.#getKey = db.prepare('SELECT seq FROM ss_event_keys WHERE tab_id = ? AND key = ? AND expires_at > ?')
    this.#putKey = db.prepare('INSERT OR REPLACE INTO ss_event_keys (tab_id, key, seq, expires_at) VALUES (?, ?, ?, ?)')
    this.#dropKeys = db.prepare('DELETE FROM ss_event_keys WHERE tab_id = ?')
    this.#sweepKeys = db.prepare('DELETE FROM ss_event_keys WHERE expires_at <= ?')

    /*
     * BEGIN IMMEDIATE takes the write lock before the read, so another process sharing the file
     * cannot read the same "absent" row in between and also answer `new`.
     */
    const claim = db.transaction((key: string, ttlMs: number, now: number, owner: string | undefined): CallClaim => {
      const row = this.#getCall.get(key)
      // A pending claim is its owner's to take again.
      if (row !== undefined && row.expires_at > now && (row.reply !== null || owner === undefined || row.owner !== owner)) {
        return row.reply === null ? { state: 'pending' } : { state: 'done', reply: JSON.parse(row.reply) as CallReply }
      }
      this.#putClaim.run(key, now + ttlMs, owner ?? null)
      return { state: 'new' }
    })
    this.#claim = (key, ttlMs, now, owner) => claim.immediate(key, ttlMs, now, owner)

    /*
     * One write transaction for the whole batch: BEGIN IMMEDIATE and COMMIT (the WAL append)
     * cost more than the two statements per tab, so a reconnect storm pays them once per batch.
     */
    const recordTabs = db.transaction((tabs: readonly TabSeen[], now: number, windowMs: number): number[] =>
      tabs.map(({ sessionId, tabId }) => {
        this.#putTab.run(sessionId, tabId, now + windowMs)
        // A tab seen again keeps its sequence counter for the window, even with no event pending;
        // a tab without a live stream gets a new, empty one in a later block.
        const live = this.#extendStream.get(now + windowMs, tabId, now)
        if (live !== undefined) return live.last_seq
        this.#dropEvents.run(tabId)
        this.#dropKeys.run(tabId)
        this.#putStream.run(tabId, streamBase(now), now + windowMs)
        return streamBase(now)
      }),
    )
    this.#recordTabs = (tabs, now, windowMs) => recordTabs.immediate(tabs, now, windowMs)

    /*
     * BEGIN IMMEDIATE again: the quota check, the counter increment and the insert happen under
     * the write lock, so two processes appending for one tab get consecutive numbers and cannot
     * both squeeze into the last free slot. Throwing rolls the whole step back: no number used.
     */
    const append = db.transaction((tabId: string, event: NewDurableEvent, expiresAt: number, quota: EventQuota, now: number): number => {
      const stream = this.#getStream.get(tabId)
      const live = stream !== undefined && stream.expires_at > now
      const known = live && event.key !== undefined ? this.#getKey.get(tabId, event.key, now) : undefined
      if (known !== undefined) return known.seq
      // A forgotten stream starts over in a new block; whatever it still held expired with it.
      if (!live) {
        this.#dropEvents.run(tabId)
        this.#dropKeys.run(tabId)
      }
      const held = live ? this.#eventQuota.get(tabId, now)! : { n: 0, bytes: 0 }
      if (held.n + 1 > quota.maxEvents || held.bytes + event.bytes > quota.maxBytes) {
        throw new SessionSocketError(
          'QUOTA_EXCEEDED',
          `tab ${tabId} already holds ${held.n} unacknowledged durable events (${held.bytes} bytes)`,
        )
      }
      const seq = (live ? stream.last_seq : streamBase(now)) + 1
      this.#putStream.run(tabId, seq, live ? Math.max(stream.expires_at, expiresAt) : expiresAt)
      this.#putEvent.run(tabId, seq, event.event, JSON.stringify(event.args), event.bytes, expiresAt)
      if (event.key !== undefined) this.#putKey.run(tabId, event.key, seq, expiresAt)
      return seq
    })
    this.#append = (tabId, event, expiresAt, quota, now) => append.immediate(tabId, event, expiresAt, quota, now)

    // A plain (deferred) transaction: both reads see one snapshot, even with another process writing.
    const read = db.transaction((tabId: string, afterSeq: number, now: number): EventRead => {
      const stream = this.#getStream.get(tabId)
      if (stream === undefined || stream.expires_at <= now) return { lastSeq: 0, events: [], gap: afterSeq > 0 }
      const events = this.#readEvents.all({ tabId, afterSeq, now }).map(
        (row): StoredEvent => ({ seq: row.seq, event: row.event, args: JSON.parse(row.args_json) as unknown[], expiresAt: row.expires_at }),
      )
      const lastSeq = stream.last_seq
      // Stored seqs are distinct and at most lastSeq: fewer than lastSeq - afterSeq means one is gone.
      return { lastSeq, events, gap: afterSeq > lastSeq || (afterSeq < lastSeq && events.length !== lastSeq - afterSeq) }
    })
    this.#read = (tabId, afterSeq, now) => read(tabId, afterSeq, now)

    const sweep = db.transaction(
      (now: number): number =>
        this.#sweepLinks.run(now).changes +
        this.#sweepCodes.run(now).changes +
        this.#sweepCalls.run(now).changes +
        this.#sweepTabs.run(now).changes +
        this.#sweepStreams.run(now).changes +
        this.#sweepEvents.run(now).changes +
        this.#sweepKeys.run(now).changes,
    )
    this.#sweep = (now) => sweep.immediate(now)

    if (sweepIntervalMs > 0) {
      this.#timer = setInterval(() => {
        this.sweep(Date.now()).then(
          (count) => debug('swept %d expired rows', count),
          (err: unknown) => debug('sweep failed: %O', err),
        )
      }, sweepIntervalMs)
      // A pending sweep must not keep the process alive on its own.
      this.#timer.unref()
    }
  }

  async getLink(tokenHash: string): Promise<LinkRecord | null> {
    const row = this.#run('getLink', () => this.#getLink.get(tokenHash))
    return row === undefined ? null : toLinkRecord(row)
  }

  async putLink(tokenHash: string, record: LinkRecord): Promise<void> {
    this.#run('putLink', () =>
      this.#putLink.run(
        tokenHash,
        record.sessionId,
        record.createdAt,
        record.lastSeenAt,
        record.expiresAt,
        record.revokedAt ?? null,
        record.replacedAt ?? null,
        record.userId ?? null,
        record.successor ?? null,
        record.predecessor ?? null,
      ),
    )
  }

  async touchLink(tokenHash: string, sessionId: string, lastSeenAt: number): Promise<void> {
    this.#run('touchLink', () => this.#touchLink.run(sessionId, lastSeenAt, tokenHash))
  }

  async revokeLink(tokenHash: string, revokedAt: number): Promise<void> {
    this.#run('revokeLink', () => this.#revokeLink.run(revokedAt, tokenHash))
  }

  async revokeSession(sessionId: string, revokedAt: number): Promise<number> {
    return this.#run('revokeSession', () => this.#revokeSession.run(revokedAt, sessionId).changes)
  }

  async setSessionUser(sessionId: string, userId: string | null): Promise<number> {
    return this.#run('setSessionUser', () => this.#setSessionUser.run(userId, sessionId, userId).changes)
  }

  async userSessions(userId: string, now: number): Promise<string[]> {
    return this.#run('userSessions', () => this.#userSessions.all(userId, now).map((row) => row.session_id))
  }

  async putRestoreCode(codeHash: string, record: RestoreCodeRecord): Promise<void> {
    this.#run('putRestoreCode', () => this.#putCode.run(codeHash, record.sessionId, record.expiresAt))
  }

  async takeRestoreCode(codeHash: string, now: number): Promise<RestoreCodeRecord | null> {
    const row = this.#run('takeRestoreCode', () => this.#takeCode.get(codeHash))
    if (row === undefined || row.expires_at <= now) return null
    return { sessionId: row.session_id, expiresAt: row.expires_at }
  }

  async claimCall(key: string, ttlMs: number, now: number, owner?: string): Promise<CallClaim> {
    return this.#run('claimCall', () => this.#claim(key, ttlMs, now, owner))
  }

  async finishCall(key: string, reply: CallReply, ttlMs: number, now: number): Promise<void> {
    const json = JSON.stringify(reply)
    this.#run('finishCall', () => this.#putCall.run(key, json, now + ttlMs))
  }

  async releaseCall(key: string): Promise<void> {
    this.#run('releaseCall', () => this.#deleteCall.run(key))
  }

  async recordTabs(tabs: readonly TabSeen[], now: number, windowMs: number): Promise<number[]> {
    if (tabs.length === 0) return []
    return this.#run('recordTabs', () => this.#recordTabs(tabs, now, windowMs))
  }

  async sessionTabs(sessionId: string, now: number): Promise<string[]> {
    return this.#run('sessionTabs', () => this.#sessionTabs.all(sessionId, now).map((row) => row.tab_id))
  }

  async appendEvent(tabId: string, event: NewDurableEvent, expiresAt: number, quota: EventQuota, now: number): Promise<number> {
    return this.#run('appendEvent', () => this.#append(tabId, event, expiresAt, quota, now))
  }

  async readEvents(tabId: string, afterSeq: number, now: number): Promise<EventRead> {
    return this.#run('readEvents', () => this.#read(tabId, afterSeq, now))
  }

  async ackEvents(tabId: string, uptoSeq: number): Promise<void> {
    this.#run('ackEvents', () => this.#ackEvents.run(tabId, uptoSeq))
  }

  /** Deletes expired links, codes, results, tabs, streams and events; returns how many rows went. */
  async sweep(now: number): Promise<number> {
    if (this.#closed) return 0
    return this.#run('sweep', () => this.#sweep(now))
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    if (this.#ownsDb) this.#db.close()
  }

  #run<T>(op: string, fn: () => T): T {
    // Closed by a shutdown in progress: retryable, a client reconnecting now gets the restarted server.
    if (this.#closed) throw new SessionSocketError('STORE_UNAVAILABLE', 'link store closed', { retryAfter: 1000 })
    return guard(op, fn)
  }
}
