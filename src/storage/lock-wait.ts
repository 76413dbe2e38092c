/**
 * Telling a statement that gave up waiting for a lock, or that the database did not answer
 * in time, from any other failure, without loading a database driver: the collector's HTTP
 * layer asks whichever store it runs on.
 */

/** PostgreSQL's lock_not_available: lock_timeout ran out (pg-sync.ts, LOCK_TIMEOUT_MS). */
export const LOCK_NOT_AVAILABLE = '55P03';

/**
 * Whether an SQLite error code (`SQLITE_BUSY_SNAPSHOT`…) is SQLite giving up on a lock
 * another connection holds: SQLITE_BUSY after the busy timeout (sqlite.ts, 5 s; a second
 * process with a write transaction open: an operator's `sqlite3`, a backup, a `lachan
 * central` command) and SQLITE_LOCKED, with their extended codes.
 */
export function isSqliteLockCode(code: string): boolean {
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED');
}

/**
 * Whether `error` is a statement the database ended because a lock another session holds
 * did not come free in time: PostgreSQL's 55P03 (SyncPostgresError and node-postgres's
 * DatabaseError both carry the SQLSTATE as `code`), or SQLite's busy codes (better-sqlite3's
 * SqliteError, and the writer thread's WriterThreadError, carry them as `code`). Nothing
 * was changed; the same request may succeed later.
 */
export function gaveUpOnLock(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code === LOCK_NOT_AVAILABLE || isSqliteLockCode(code));
}

/**
 * SyncPostgresError's code for a statement the collector's main thread stopped waiting for
 * (pg-sync.ts, statementTimeoutMs: 60 s); the server cancels it a moment later, unless it
 * finished in between.
 */
export const STATEMENT_TIMED_OUT = 'LACHAN_PG_SYNC_TIMEOUT';

/** Whether `error` is a statement on the synchronous PostgreSQL connection that did not answer in time. */
export function timedOut(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === STATEMENT_TIMED_OUT;
}
