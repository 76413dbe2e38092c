/**
 * How lachan uses an SQLite file, for the gateway's event log and the collector alike:
 * opening it (private to its owner), the pragmas every connection gets, schema steps
 * counted in `PRAGMA user_version`, and telling SQLite's errors apart.
 */
import Database from 'better-sqlite3';
import { closeSync, openSync } from 'node:fs';
import { isSqliteLockCode } from './lock-wait.js';

export type SqliteDatabase = Database.Database;

/**
 * How long a statement waits for a lock another connection holds before it fails with
 * SQLITE_BUSY (lock-wait.ts; the collector answers 503 database_busy).
 */
export const BUSY_TIMEOUT_MS = 5_000;

/** Configures a connection the way every lachan SQLite file is used. */
export function tuneConnection(db: SqliteDatabase): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
}

/**
 * Opens (creating it if absent) a file of personal data: the file, and the WAL and shm
 * files SQLite derives from its mode, are readable by the owner only. Tuned, not migrated.
 */
export function openPrivateDatabase(file: string): SqliteDatabase {
  closeSync(openSync(file, 'a', 0o600));
  const db = new Database(file);
  try {
    tuneConnection(db);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/** Closes a connection that may be on a failing disk: it is dropped either way. */
export function closeQuietly(db: SqliteDatabase | null): void {
  try {
    db?.close();
  } catch {
    // not closed cleanly; nothing more to do with it
  }
}

/** Opens an existing file read-only, beside a process that may be writing it. */
export function openReadOnly(file: string): SqliteDatabase {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  return db;
}

/** SQLite's error code (`SQLITE_BUSY`, `SQLITE_CONSTRAINT_UNIQUE`…) of an error better-sqlite3 raised; undefined for any other error. */
export function sqliteErrorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/** Whether SQLite gave up waiting for a lock another connection holds (SQLITE_BUSY, SQLITE_LOCKED and their extended codes). */
export function isBusy(error: unknown): boolean {
  const code = sqliteErrorCode(error);
  return code !== undefined && isSqliteLockCode(code);
}

/**
 * Whether a failed write leaves the connection worth dropping: a full disk or a busy
 * lock passes with time on the same connection; anything else (the file removed or made
 * read-only, I/O errors) needs the file opened anew.
 */
export function needsReopen(error: unknown): boolean {
  const code = sqliteErrorCode(error) ?? '';
  return !code.startsWith('SQLITE_FULL') && !code.startsWith('SQLITE_BUSY');
}

/**
 * Applies the migrations a database has not seen yet and records progress in
 * `PRAGMA user_version`. Each step reads the version inside its own write transaction,
 * so two processes opening a new file at once (the collector and `central school add`)
 * apply each migration exactly once. Append to the list; never edit an entry that has
 * shipped, so every existing file can be brought forward.
 */
export function migrate(db: SqliteDatabase, migrations: readonly string[], what: string): void {
  const step = db.transaction((): boolean => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > migrations.length) {
      throw Object.assign(new Error(`${what} was written by a newer lachan (schema ${current}, this one knows ${migrations.length})`), {
        code: 'LACHAN_SCHEMA_TOO_NEW',
      });
    }
    if (current === migrations.length) return false;
    db.exec(migrations[current]!);
    db.pragma(`user_version = ${current + 1}`);
    return true;
  });
  while (step.immediate()) {
    // next migration
  }
}
