/**
 * Telling a statement that gave up waiting for a lock from any other failure, without
 * loading a database driver: the collector's HTTP layer asks whichever store it runs on.
 */

/** PostgreSQL's lock_not_available: lock_timeout ran out (pg-sync.ts, LOCK_TIMEOUT_MS). */
export const LOCK_NOT_AVAILABLE = '55P03';

/**
 * Whether `error` is a statement PostgreSQL ended because a lock another session holds did
 * not come free in time: SyncPostgresError and node-postgres's DatabaseError both carry
 * the SQLSTATE as `code`. Nothing was changed; the same request may succeed later.
 */
export function gaveUpOnLock(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === LOCK_NOT_AVAILABLE;
}
