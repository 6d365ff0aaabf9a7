import path from 'node:path'
import Database from 'better-sqlite3'
import type { DemoProcess } from './demo-process.js'

/**
 * Whether the demo's session store still holds session `sessionId`, as connect-sqlite3's own
 * `get` decides it (the row is there and `now <= expired`). Read from the SQLite file in the
 * demo's data folder, outside the server: any request carrying the session's cookie would
 * reset its expiry, so the server cannot be asked.
 *
 * @example
 * await expect.poll(() => sessionInStore(demo, sessionId), { timeout: 15_000 }).toBe(false)
 */
export function sessionInStore(demo: DemoProcess, sessionId: string): boolean {
  const db = new Database(path.join(demo.dataDir, 'sessions.db'), { readonly: true, fileMustExist: true })
  try {
    const row = db.prepare('SELECT expired FROM sessions WHERE sid = ?').get(sessionId) as { expired: number } | undefined
    return row !== undefined && Date.now() <= row.expired
  } finally {
    db.close()
  }
}
