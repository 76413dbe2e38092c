/**
 * The synchronous SQL the collector's district modules (accounts, sessions, login
 * throttle, policy overlay, review queue, dashboard queries) are written against: the
 * part of better-sqlite3's API they use, which a SQLite database offers as it is and a
 * PostgreSQL database through SyncPostgres (pg-sync.ts). Their statements are written
 * in the SQL both understand: `?` placeholders, `RETURNING` for new ids, `IS NOT
 * DISTINCT FROM`, an explicit conflict target, the column `"user"` quoted.
 */
export interface SqlRunResult {
  readonly changes: number;
}

export interface SqlStatement<Params extends unknown[] = unknown[], Row = unknown> {
  get(...params: Params): Row | undefined;
  all(...params: Params): Row[];
  run(...params: Params): SqlRunResult;
}

export interface SqlConnection {
  prepare<Params extends unknown[] = unknown[], Row = unknown>(sql: string): SqlStatement<Params, Row>;
  /** `fn` wrapped in a transaction (a savepoint when one is open already); call the result to run it. */
  transaction<T>(fn: () => T): () => T;
}

/** A better-sqlite3 database as a SqlConnection (its types are wider than these modules need). */
export function sqliteConnection(db: import('better-sqlite3').Database): SqlConnection {
  return db as unknown as SqlConnection;
}
