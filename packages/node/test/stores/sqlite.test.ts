import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { SessionSocketError } from '@session-socket/protocol'
import { streamBase } from '@session-socket/protocol'
import { SqliteLinkStore } from '../../src/stores/sqlite.js'
import { linkStoreContract } from './contract.js'
import { durableEventChecks } from './durable-events.js'

const dir = mkdtempSync(join(tmpdir(), 'ss-sqlite-'))
let fileNo = 0
const nextPath = () => join(dir, `store-${++fileNo}.db`)

afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

linkStoreContract('SqliteLinkStore (path)', async () => {
  const store = new SqliteLinkStore({ path: nextPath(), sweepIntervalMs: 0 })
  return { store, cleanup: () => store.close() }
})

linkStoreContract('SqliteLinkStore (shared database)', async () => {
  const db = new Database(nextPath())
  db.exec('CREATE TABLE sessions (sid TEXT PRIMARY KEY, sess TEXT NOT NULL, expire INTEGER NOT NULL)')
  const store = new SqliteLinkStore({ database: db, sweepIntervalMs: 0 })
  return {
    store,
    cleanup: async () => {
      await store.close()
      db.close()
    },
  }
})

durableEventChecks('SqliteLinkStore', async () => {
  const store = new SqliteLinkStore({ path: nextPath(), sweepIntervalMs: 0 })
  return { store, cleanup: () => store.close() }
})

describe('SqliteLinkStore', () => {
  const toClose: Array<{ close(): unknown }> = []
  afterEach(async () => {
    for (const item of toClose.splice(0).reverse()) await item.close()
  })

  function open(path: string, sweepIntervalMs = 0): SqliteLinkStore {
    const store = new SqliteLinkStore({ path, sweepIntervalMs })
    toClose.push(store)
    return store
  }

  function raw(path: string, options?: Database.Options): Database.Database {
    const db = new Database(path, options)
    toClose.push(db)
    return db
  }

  it('raises synchronous OFF to NORMAL on a database it is given, and leaves FULL alone', () => {
    const off = raw(nextPath())
    off.pragma('synchronous = OFF')
    toClose.push(new SqliteLinkStore({ database: off, sweepIntervalMs: 0 }))
    expect(off.pragma('synchronous', { simple: true })).toBe(1)
    expect(off.pragma('journal_mode', { simple: true })).toBe('wal')

    const full = raw(nextPath())
    full.pragma('synchronous = FULL')
    toClose.push(new SqliteLinkStore({ database: full, sweepIntervalMs: 0 }))
    expect(full.pragma('synchronous', { simple: true })).toBe(2)
  })

  it('uses WAL and ss_-prefixed tables with indexes on session_id and user_id, at schema version 2', () => {
    const path = nextPath()
    open(path)
    const db = raw(path)
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
    const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").all()
    expect(tables.map((t) => t.name).sort()).toEqual(['ss_calls', 'ss_event_keys', 'ss_events', 'ss_links', 'ss_meta', 'ss_restore_codes', 'ss_streams', 'ss_tabs'])
    const indexes = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ss_links'").all()
    expect(indexes.map((i) => i.name)).toEqual(expect.arrayContaining(['ss_links_session_id', 'ss_links_user_id']))
    expect(db.prepare<[], { value: string }>("SELECT value FROM ss_meta WHERE key = 'schema_version'").get()?.value).toBe('2')
    // endUser's lookup reads the user's rows through the partial index, not the whole table.
    const plan = db.prepare<[], { detail: string }>("EXPLAIN QUERY PLAN SELECT DISTINCT session_id FROM ss_links WHERE user_id = 'u' AND expires_at > 0").all()
    expect(plan.map((row) => row.detail).join('; ')).toMatch(/USING INDEX ss_links_user_id/)
  })

  it('migrates a schema version 1 file: adds user_id and its index, keeps every link and tab', async () => {
    const path = nextPath()
    const now = Date.now()
    const old = raw(path)
    // Version 1 as it shipped last: rotation's replaced_at and the durable-event tables, no user_id.
    old.exec(`
      CREATE TABLE ss_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      INSERT INTO ss_meta (key, value) VALUES ('schema_version', '1');
      CREATE TABLE ss_links (token_hash TEXT PRIMARY KEY, session_id TEXT NOT NULL, created_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER, replaced_at INTEGER) WITHOUT ROWID;
      CREATE INDEX ss_links_session_id ON ss_links (session_id);
      CREATE TABLE ss_tabs (session_id TEXT NOT NULL, tab_id TEXT NOT NULL, seen_until INTEGER NOT NULL,
        PRIMARY KEY (session_id, tab_id)) WITHOUT ROWID;
    `)
    old.prepare('INSERT INTO ss_links VALUES (?, ?, ?, ?, ?, NULL, ?)').run('h1', 's1', now, now, now + 60_000, now - 5)
    old.prepare('INSERT INTO ss_tabs VALUES (?, ?, ?)').run('s1', 't1', now + 60_000)
    old.close()

    const store = open(path)
    expect(await store.getLink('h1')).toEqual({ sessionId: 's1', createdAt: now, lastSeenAt: now, expiresAt: now + 60_000, replacedAt: now - 5 })
    expect(await store.sessionTabs('s1', now)).toEqual(['t1'])
    expect(await store.setSessionUser('s1', 'u1')).toBe(1)
    expect(await store.userSessions('u1', now)).toEqual(['s1'])
    await store.close()

    const db = raw(path)
    expect(db.prepare<[], { value: string }>("SELECT value FROM ss_meta WHERE key = 'schema_version'").get()?.value).toBe('2')
    const indexes = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ss_links'").all()
    expect(indexes.map((i) => i.name)).toContain('ss_links_user_id')
    // Opening it again changes nothing.
    expect(await open(path).userSessions('u1', now)).toEqual(['s1'])
  })

  it('adds the owner column to the call results of an older file, keeping its claims and replies', async () => {
    const path = nextPath()
    const now = Date.now()
    const old = raw(path)
    old.exec(`
      CREATE TABLE ss_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      INSERT INTO ss_meta (key, value) VALUES ('schema_version', '2');
      CREATE TABLE ss_calls (call_key TEXT PRIMARY KEY, reply TEXT, expires_at INTEGER NOT NULL) WITHOUT ROWID;
    `)
    old.prepare('INSERT INTO ss_calls VALUES (?, ?, ?)').run('running', null, now + 60_000)
    old.prepare('INSERT INTO ss_calls VALUES (?, ?, ?)').run('done', JSON.stringify({ ok: true, r: 7 }), now + 60_000)
    old.close()

    const store = open(path)
    // A claim of an older version has no owner: it is nobody's to take back.
    expect(await store.claimCall('running', 60_000, now, 'node-a')).toEqual({ state: 'pending' })
    expect(await store.claimCall('done', 60_000, now, 'node-a')).toEqual({ state: 'done', reply: { ok: true, r: 7 } })
    expect(await store.claimCall('new', 60_000, now, 'node-a')).toEqual({ state: 'new' })
    expect(await store.claimCall('new', 60_000, now + 1, 'node-a')).toEqual({ state: 'new' })
    await store.close()
  })

  it('refuses a file of a newer schema version, naming both versions', () => {
    const path = nextPath()
    const db = raw(path)
    db.exec(`CREATE TABLE ss_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      INSERT INTO ss_meta (key, value) VALUES ('schema_version', '3');`)
    expect(() => new SqliteLinkStore({ path, sweepIntervalMs: 0 })).toThrow(/schema version 3; this session-socket knows 2/)
  })

  it('keeps links across close and reopen', async () => {
    const path = nextPath()
    const now = Date.now()
    const first = open(path)
    await first.putLink('h1', { sessionId: 's1', createdAt: now, lastSeenAt: now, expiresAt: now + 60_000 })
    await first.putRestoreCode('c1', { sessionId: 's1', expiresAt: now + 60_000 })
    await first.close()

    const second = open(path)
    expect(await second.getLink('h1')).toEqual({ sessionId: 's1', createdAt: now, lastSeenAt: now, expiresAt: now + 60_000 })
    expect(await second.takeRestoreCode('c1', now)).toEqual({ sessionId: 's1', expiresAt: now + 60_000 })
  })

  it('leaves a database it was given open on close, and rejects calls after close', async () => {
    const db = raw(nextPath())
    const store = new SqliteLinkStore({ database: db, sweepIntervalMs: 0 })
    await store.close()
    expect(db.open).toBe(true)
    expect(db.prepare<[], { n: number }>('SELECT count(*) AS n FROM ss_links').get()?.n).toBe(0)
    await expect(store.getLink('h1')).rejects.toThrow(/closed/)
  })

  it('claims a call once across two connections to one file', async () => {
    const path = nextPath()
    const a = open(path)
    const b = open(path)
    const now = Date.now()
    const claims = await Promise.all([a.claimCall('k', 60_000, now), b.claimCall('k', 60_000, now)])
    expect(claims.map((c) => c.state).sort()).toEqual(['new', 'pending'])
    await a.putRestoreCode('c', { sessionId: 's', expiresAt: now + 60_000 })
    const takes = await Promise.all([a.takeRestoreCode('c', now), b.takeRestoreCode('c', now)])
    expect(takes.filter((t) => t !== null)).toHaveLength(1)
  })

  it('sweeps expired rows on its timer', async () => {
    const path = nextPath()
    const store = open(path, 50)
    const now = Date.now()
    await store.putLink('old', { sessionId: 's', createdAt: now - 2000, lastSeenAt: now - 2000, expiresAt: now - 1000 })
    await store.putLink('live', { sessionId: 's', createdAt: now, lastSeenAt: now, expiresAt: now + 60_000 })
    const deadline = Date.now() + 3000
    while ((await store.getLink('old')) !== null && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    expect(await store.getLink('old')).toBeNull()
    expect(await store.getLink('live')).not.toBeNull()
  })

  it('turns SQLITE_BUSY into STORE_UNAVAILABLE', async () => {
    const path = nextPath()
    open(path)
    const locker = raw(path)
    const db = raw(path, { timeout: 50 })
    const store = new SqliteLinkStore({ database: db, sweepIntervalMs: 0 })
    toClose.push(store)
    locker.exec('BEGIN IMMEDIATE')
    try {
      const now = Date.now()
      const err = await store
        .putLink('h1', { sessionId: 's', createdAt: now, lastSeenAt: now, expiresAt: now + 60_000 })
        .then(() => null, (e: unknown) => e)
      expect(err).toBeInstanceOf(SessionSocketError)
      expect(err).toMatchObject({ code: 'STORE_UNAVAILABLE', retryAfter: 1000 })
      expect((err as SessionSocketError).cause).toMatchObject({ code: 'SQLITE_BUSY' })
      await expect(store.claimCall('k', 1000, now)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' })
      const quota = { maxEvents: 10, maxBytes: 1000 }
      await expect(store.appendEvent('t', { event: 'e', args: [], bytes: 1 }, now + 60_000, quota, now)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' })
      await expect(store.recordTabs([{ sessionId: 's', tabId: 't' }], now, 60_000)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' })
    } finally {
      locker.exec('ROLLBACK')
    }
    const now = Date.now()
    await store.putLink('h1', { sessionId: 's', createdAt: now, lastSeenAt: now, expiresAt: now + 60_000 })
    expect(await store.getLink('h1')).not.toBeNull()
  })

  it('numbers durable events of one tab consecutively across two connections to one file', async () => {
    const path = nextPath()
    const a = open(path)
    const b = open(path)
    const now = Date.now()
    const quota = { maxEvents: 100, maxBytes: 100_000 }
    const seqs = await Promise.all(
      Array.from({ length: 20 }, (_, n) => (n % 2 ? a : b).appendEvent('t', { event: 'e', args: [n], bytes: 1 }, now + 60_000, quota, now)),
    )
    const base = streamBase(now)
    expect(seqs.sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, n) => base + n + 1))
    await a.ackEvents('t', base + 15)
    expect((await b.readEvents('t', base + 15, now)).events.map((e) => e.seq)).toEqual([16, 17, 18, 19, 20].map((n) => base + n))
  })

  it('keeps durable events, their numbering and the session\'s tabs across close and reopen', async () => {
    const path = nextPath()
    const now = Date.now()
    const quota = { maxEvents: 10, maxBytes: 1000 }
    const first = open(path)
    await first.recordTabs([{ sessionId: 's1', tabId: 't1' }], now, 60_000)
    await first.appendEvent('t1', { event: 'e', args: [{ a: 1 }], bytes: 10 }, now + 60_000, quota, now)
    await first.appendEvent('t1', { event: 'e', args: [2], bytes: 10 }, now + 60_000, quota, now)
    await first.close()

    const second = open(path)
    const base = streamBase(now)
    expect(await second.sessionTabs('s1', now)).toEqual(['t1'])
    expect(await second.readEvents('t1', base, now)).toEqual({
      lastSeq: base + 2,
      gap: false,
      events: [
        { seq: base + 1, event: 'e', args: [{ a: 1 }], expiresAt: now + 60_000 },
        { seq: base + 2, event: 'e', args: [2], expiresAt: now + 60_000 },
      ],
    })
    expect(await second.appendEvent('t1', { event: 'e', args: [3], bytes: 10 }, now + 60_000, quota, now)).toBe(base + 3)
  })

  it('sweeps expired tabs, streams and events, counts each row, and leaves live ones', async () => {
    const store = open(nextPath())
    const now = Date.now()
    const quota = { maxEvents: 10, maxBytes: 1000 }
    const ev = { event: 'e', args: [], bytes: 1 }
    await store.recordTabs([{ sessionId: 's1', tabId: 'gone' }], now - 120_000, 60_000)
    await store.recordTabs([{ sessionId: 's1', tabId: 'live' }], now, 60_000)
    // 'old': a stream whose last event expired (1 stream row + 2 event rows go).
    await store.appendEvent('old', ev, now + 1000, quota, now)
    await store.appendEvent('old', ev, now + 1000, quota, now)
    // 'live': its first event expired, the second not (1 event row goes).
    await store.appendEvent('live', ev, now + 1000, quota, now)
    await store.appendEvent('live', ev, now + 60_000, quota, now)

    // 'gone': its tab row and the empty stream recordTabs started for it; 'old': 1 stream + 2 events; 'live': 1 event.
    expect(await store.sweep(now + 2000)).toBe(1 + 1 + 1 + 2 + 1)
    expect(await store.sweep(now + 2000)).toBe(0)
    expect(await store.sessionTabs('s1', now + 2000)).toEqual(['live'])
    expect(await store.readEvents('old', 0, now + 2000)).toEqual({ lastSeq: 0, gap: false, events: [] })
    expect(await store.readEvents('live', streamBase(now) + 1, now + 2000)).toMatchObject({ lastSeq: streamBase(now) + 2, gap: false, events: [{ seq: streamBase(now) + 2 }] })
  })

  it('adds the durable-event tables to a file made before they existed, keeping its links', async () => {
    const path = nextPath()
    const now = Date.now()
    const old = raw(path)
    // The schema as it was before durable events (and before token rotation added replaced_at).
    old.exec(`
      CREATE TABLE ss_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      INSERT INTO ss_meta (key, value) VALUES ('schema_version', '1');
      CREATE TABLE ss_links (token_hash TEXT PRIMARY KEY, session_id TEXT NOT NULL, created_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER) WITHOUT ROWID;
      CREATE TABLE ss_restore_codes (code_hash TEXT PRIMARY KEY, session_id TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE ss_calls (call_key TEXT PRIMARY KEY, reply TEXT, expires_at INTEGER NOT NULL) WITHOUT ROWID;
    `)
    old.prepare('INSERT INTO ss_links VALUES (?, ?, ?, ?, ?, NULL)').run('h1', 's1', now, now, now + 60_000)
    old.close()

    const store = open(path)
    expect(await store.getLink('h1')).toEqual({ sessionId: 's1', createdAt: now, lastSeenAt: now, expiresAt: now + 60_000 })
    await store.recordTabs([{ sessionId: 's1', tabId: 't1' }], now, 60_000)
    expect(await store.sessionTabs('s1', now)).toEqual(['t1'])
    expect(await store.appendEvent('t1', { event: 'e', args: [], bytes: 1 }, now + 60_000, { maxEvents: 1, maxBytes: 10 }, now)).toBe(streamBase(now) + 1)
  })

  it('gives consecutive numbers, within the quota, to two processes appending for one tab at once', async () => {
    const path = nextPath()
    open(path)
    const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url))
    const fixture = fileURLToPath(new URL('./fixtures/sqlite-appender.ts', import.meta.url))
    const perWriter = 500
    const maxEvents = 600
    const writers = [0, 1].map(() => {
      const proc = spawn(process.execPath, ['--import', 'tsx', fixture, path, 'shared-tab', String(perWriter), String(maxEvents)], {
        cwd: repoRoot,
        stdio: ['pipe', 'pipe', 'pipe'],
      })
      toClose.push({ close: () => proc.exitCode === null && proc.signalCode === null && proc.kill('SIGKILL') })
      let out = ''
      let err = ''
      proc.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()))
      proc.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()))
      const ready = new Promise<void>((resolve, reject) => {
        const check = () => out.startsWith('ready\n') && resolve()
        proc.stdout!.on('data', check)
        proc.once('exit', () => reject(new Error(`writer exited before ready: ${err}`)))
      })
      const done = new Promise<string[]>((resolve, reject) =>
        proc.once('exit', (code) => (code === 0 ? resolve(out.split('\n').slice(1, -1)) : reject(new Error(`writer exited ${code}: ${err}`)))),
      )
      return { proc, ready, done }
    })
    await Promise.all(writers.map((w) => w.ready))
    for (const w of writers) w.proc.stdin!.write('go\n')
    const [first, second] = await Promise.all(writers.map((w) => w.done))

    const got = [...first!, ...second!].filter((line) => line !== 'Q').map(Number)
    const base = Math.min(...got) - 1
    expect(base % 1_000_000).toBe(0)
    expect(got.sort((x, y) => x - y)).toEqual(Array.from({ length: maxEvents }, (_, n) => base + n + 1))
    expect([...first!, ...second!].filter((line) => line === 'Q')).toHaveLength(2 * perWriter - maxEvents)
    for (const lines of [first!, second!]) {
      const own = lines.filter((line) => line !== 'Q').map(Number)
      expect(own).toEqual([...own].sort((x, y) => x - y))
    }
    // The writers really took turns (about every other number here), so the lock was contended.
    const firstOwns = new Set(first!.filter((line) => line !== 'Q').map(Number))
    let turns = 0
    for (let n = 2; n <= maxEvents; n++) if (firstOwns.has(base + n) !== firstOwns.has(base + n - 1)) turns++
    expect(turns).toBeGreaterThan(20)
  }, 30_000)

  describe('kill -9', () => {
    const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url))
    const fixture = fileURLToPath(new URL('./fixtures/sqlite-writer.ts', import.meta.url))
    let child: ChildProcess | undefined

    afterEach(() => {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      child = undefined
    })

    it('keeps every link whose putLink resolved when the process is SIGKILLed mid-stream', async () => {
      const path = nextPath()
      const killAfter = 300
      const printed: string[] = []
      let stderr = ''

      // cwd = repo root so tsx finds tsconfig.json and its `paths` (no build needed).
      const proc = spawn(process.execPath, ['--import', 'tsx', fixture, path, '1000000'], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      child = proc
      const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.once('exit', (_code, signal) => resolve(signal)))

      await new Promise<void>((resolve, reject) => {
        // Generous: the child starts through tsx, which alone can take over 10 s on a busy machine.
        const timer = setTimeout(() => reject(new Error(`writer printed ${printed.length} lines in 60 s; stderr: ${stderr}`)), 60_000)
        let partial = ''
        proc.stderr!.on('data', (chunk: Buffer) => {
          stderr += chunk.toString()
        })
        proc.stdout!.on('data', (chunk: Buffer) => {
          const lines = (partial + chunk.toString()).split('\n')
          partial = lines.pop() ?? ''
          printed.push(...lines)
          if (printed.length >= killAfter) {
            proc.kill('SIGKILL')
            clearTimeout(timer)
            resolve()
          }
        })
        proc.once('exit', () => {
          clearTimeout(timer)
          if (printed.length < killAfter) reject(new Error(`writer exited early; stderr: ${stderr}`))
        })
      })
      expect(await exited).toBe('SIGKILL')
      expect(printed.length).toBeGreaterThanOrEqual(killAfter)

      const db = new Database(path)
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok')
        const rows = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM ss_links').get()
        expect(rows?.n).toBeGreaterThanOrEqual(printed.length)
      } finally {
        db.close()
      }

      const store = open(path)
      const missing: string[] = []
      for (const hash of printed) {
        if ((await store.getLink(hash)) === null) missing.push(hash)
      }
      expect(missing).toEqual([])
    }, 90_000)
  })
})
