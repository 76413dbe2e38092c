/**
 * How lachan uses a PostgreSQL database: a pool whose 64-bit integers read as numbers
 * (times in ms and counts stay far below 2^53), versioned schema steps applied once under
 * an advisory lock (several collector processes may start together), and retries of the
 * transactions PostgreSQL may abort when processes collide (deadlock, serialization).
 */
import pg from 'pg';

export type PgPool = pg.Pool;
export type PgClient = pg.PoolClient;

const INT8_OID = 20;

/** 64-bit integers as numbers, every other type as node-postgres reads it. */
export const pgTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export function openPool(url: string, max = 10): PgPool {
  const pool = new pg.Pool({ connectionString: url, max, types: pgTypes });
  // An idle connection the server dropped must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  return pool;
}

/** PostgreSQL's SQLSTATE of an error node-postgres raised; undefined for any other error. */
export function pgErrorCode(error: unknown): string | undefined {
  return error instanceof pg.DatabaseError ? error.code : undefined;
}

/** Deadlock and serialization failures: the transaction was rolled back and may simply run again. */
function isTransient(error: unknown): boolean {
  const code = pgErrorCode(error);
  return code === '40P01' || code === '40001';
}

/** Runs `body` in a transaction on one connection; rolled back on error, retried when PostgreSQL aborted it for a collision. */
export async function transaction<T>(pool: PgPool, body: (client: PgClient) => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const result = await body(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      if (attempt >= attempts || !isTransient(error)) throw error;
    } finally {
      client.release();
    }
  }
}

/** `?` placeholders (as the SQLite statements are written) numbered `$1, $2…` for PostgreSQL. */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** Advisory lock keys (any 64-bit number lachan alone uses). */
export const LOCKS = {
  /** Held while schema steps are applied. */
  migrate: 0x6c6163_0001,
  /** Held while event partitions are created or dropped. */
  partitions: 0x6c6163_0002,
} as const;

/**
 * Applies the steps a database has not seen yet, each recorded in `lachan_schema` with
 * the time it ran, all in one transaction under an advisory lock: a second process
 * starting at once waits, then finds every step applied. Append; never edit a step that
 * has shipped.
 */
export async function migratePostgres(pool: PgPool, steps: readonly string[], what: string): Promise<void> {
  await transaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [LOCKS.migrate]);
    await client.query('CREATE TABLE IF NOT EXISTS lachan_schema (version integer PRIMARY KEY, applied_at bigint NOT NULL)');
    const { rows } = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM lachan_schema');
    const current = rows[0]?.version ?? 0;
    if (current > steps.length) {
      throw Object.assign(new Error(`${what} was written by a newer lachan (schema ${current}, this one knows ${steps.length})`), {
        code: 'LACHAN_SCHEMA_TOO_NEW',
      });
    }
    for (let version = current + 1; version <= steps.length; version++) {
      await client.query(steps[version - 1]!);
      await client.query('INSERT INTO lachan_schema (version, applied_at) VALUES ($1, $2)', [version, Date.now()]);
    }
  });
}
