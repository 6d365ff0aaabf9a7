/**
 * The soak figure's hooks in the bench server process (bench/server.ts answers `sample` and
 * `expire` with these): a sample of what must not grow, and a session made to expire in the
 * store as time would do it, for the SDK to find out by itself.
 */
import fs from 'node:fs'
import v8 from 'node:v8'
import type { Server } from 'socket.io'

/** What the soak samples once a minute in the server. */
export interface SoakSample {
  /** process.memoryUsage() after three forced collections. */
  memory: NodeJS.MemoryUsage
  /** Resident memory by kind (/proc/self/status, bytes): anonymous (heaps, malloc) and file-backed (code, mapped files). */
  rssKinds: { anon: number; file: number }
  /** V8's heap spaces after the collections: committed (size) and live (used) bytes, by space name. */
  spaces: Record<string, { size: number; used: number }>
  /** Open file descriptors (/proc/self/fd). */
  fds: number
  /** Engine.IO connections. */
  sockets: number
  /** Sockets of the main namespace that registered (have a session). */
  registered: number
  /** process.cpuUsage() since the process started (µs). */
  cpu: NodeJS.CpuUsage
  /** Epoch ms when the sample was taken. */
  at: number
}

/**
 * Forces collections (the server runs with --expose-gc), then reads memory, fds and counts.
 *
 * @example
 * const sample = await soakSample(io)
 */
export async function soakSample(io: Server): Promise<SoakSample> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('start the server with --expose-gc')
  for (let i = 0; i < 3; i++) {
    gc()
    // Lets finalizers and weak callbacks run between collections.
    await new Promise((resolve) => setImmediate(resolve))
  }
  let registered = 0
  for (const socket of io.of('/').sockets.values()) if ((socket.data as { sessionId?: string }).sessionId !== undefined) registered++
  const status = fs.readFileSync('/proc/self/status', 'utf8')
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((x) => [x.space_name, { size: x.space_size, used: x.space_used_size }]))
  return { memory: process.memoryUsage(), spaces, rssKinds: { anon: kb('RssAnon'), file: kb('RssFile') }, fds: fs.readdirSync('/proc/self/fd').length, sockets: io.engine.clientsCount, registered, cpu: process.cpuUsage(), at: Date.now() }
}

/** The bit of the sqlite3 Database the hook uses. */
interface SessionsDb {
  run(sql: string, params: unknown[], callback: (this: { changes: number }, err: Error | null) => void): unknown
}

/**
 * Makes the session of the tab `tabId` expire in connect-sqlite3's table (its `expired` column
 * in the past, which `get` filters on), as if its time was up: nothing tells the SDK, it finds
 * out at its next read of that session. Resolves with whether a session was expired.
 *
 * @example
 * await expireTabSession(io, db, 'sessions', tabId)
 */
export async function expireTabSession(io: Server, db: SessionsDb, table: string, tabId: string): Promise<{ expired: boolean }> {
  let sessionId: string | undefined
  for (const socket of io.of('/').sockets.values()) {
    const data = socket.data as { sessionId?: string; tabId?: string }
    if (data.tabId === tabId) {
      sessionId = data.sessionId
      break
    }
  }
  if (sessionId === undefined) return { expired: false }
  const changes = await new Promise<number>((resolve, reject) => {
    db.run(`UPDATE ${table} SET expired = ? WHERE sid = ?`, [Date.now() - 1, sessionId], function (err) {
      if (err) reject(err)
      else resolve(this.changes)
    })
  })
  return { expired: changes === 1 }
}
