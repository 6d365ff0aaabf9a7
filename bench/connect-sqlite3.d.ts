// connect-sqlite3 ships no types; the benchmark server only constructs its store.
declare module 'connect-sqlite3' {
  import type session from 'express-session'
  type SQLiteStoreClass = new (options: { db?: unknown; table?: string; dir?: string; concurrentDb?: boolean }) => session.Store
  export default function connectSqlite3(session: unknown): SQLiteStoreClass
}
