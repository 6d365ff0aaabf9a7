// connect-sqlite3 ships no types; this covers what the demo uses.
declare module 'connect-sqlite3' {
  import type session from 'express-session'
  import type { Database } from 'sqlite3'

  interface SQLiteStoreOptions {
    /** Table name. @default 'sessions' */
    table?: string
    /** A file name inside `dir`, or an open sqlite3 Database. */
    db?: string | Database
    dir?: string
    /** Switches the database to WAL. */
    concurrentDb?: boolean
  }

  interface SQLiteStore extends session.Store {
    readonly db: Database
  }

  export default function connectSqlite3(expressSession: typeof session): new (options?: SQLiteStoreOptions) => SQLiteStore
}
