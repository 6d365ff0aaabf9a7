import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { SessionSocketError } from '@session-socket/protocol'
import { SqliteLinkStore } from '../../src/stores/sqlite.js'
import { linkStoreContract } from './contract.js'

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

  it('uses WAL and ss_-prefixed tables with an index on session_id', () => {
    const path = nextPath()
    open(path)
    const db = raw(path)
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
    const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").all()
    expect(tables.map((t) => t.name).sort()).toEqual(['ss_calls', 'ss_links', 'ss_meta', 'ss_restore_codes'])
    const indexes = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ss_links'").all()
    expect(indexes.map((i) => i.name)).toContain('ss_links_session_id')
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
    } finally {
      locker.exec('ROLLBACK')
    }
    const now = Date.now()
    await store.putLink('h1', { sessionId: 's', createdAt: now, lastSeenAt: now, expiresAt: now + 60_000 })
    expect(await store.getLink('h1')).not.toBeNull()
  })

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
        const timer = setTimeout(() => reject(new Error(`writer printed ${printed.length} lines in 15 s; stderr: ${stderr}`)), 15_000)
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
    })
  })
})
