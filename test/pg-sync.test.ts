/**
 * SyncPostgres (src/storage/pg-sync.ts) on a real PostgreSQL: a statement that outlives its
 * timeout fails alone; the statements after it get their own answers, not its late one. A
 * statement that waits for a lock another session holds gives up after the lock timeout,
 * with PostgreSQL's code, and the connection's URL may set that timeout.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCK_TIMEOUT_MS, SyncPostgres, SyncPostgresError, type SyncPostgresOptions } from '../src/storage/pg-sync.js';
import { databaseTimedOut } from '../src/central/http.js';
import { gaveUpOnLock, STATEMENT_TIMED_OUT } from '../src/storage/lock-wait.js';
import { type PostgresServer, startPostgres } from './harness/index.js';

// Long enough for a statement on a loaded machine, short enough for a test.
const TIMEOUT_MS = 2_000;

let server: PostgresServer;
let url: string;

beforeAll(async () => {
  server = await startPostgres();
  url = await server.createDatabase();
});

afterAll(async () => {
  await server?.stop();
});

function timeoutOf(run: () => unknown): SyncPostgresError {
  try {
    run();
  } catch (error) {
    if (error instanceof SyncPostgresError) return error;
    throw error;
  }
  throw new Error('the statement did not time out');
}

/**
 * A SyncPostgres whose thread has connected. On a loaded machine starting the thread and
 * connecting can outlast the timeout: it asks again until a statement is answered.
 */
function connected(target = url, options: SyncPostgresOptions = { statementTimeoutMs: TIMEOUT_MS }): SyncPostgres {
  const db = new SyncPostgres(target, options);
  for (let tries = 1; ; tries++) {
    try {
      db.prepare('SELECT 1').get();
      return db;
    } catch (error) {
      if (tries === 10 || !(error instanceof SyncPostgresError) || error.code !== STATEMENT_TIMED_OUT) throw error;
    }
  }
}

describe.skipIf(!SyncPostgres.available())('SyncPostgres after a statement timeout', () => {
  it('gives the next statements their own answers', async () => {
    const db = connected();
    try {
      const slow = timeoutOf(() => db.prepare('SELECT pg_sleep(30) AS slept').get());
      expect(slow.code).toBe(STATEMENT_TIMED_OUT);
      // What the collector answers it with: a 503, not a 500 (http.ts).
      expect(databaseTimedOut(slow)).toMatchObject({ status: 503, code: 'database_timeout', headers: { 'retry-after': '60' } });
      expect(gaveUpOnLock(slow)).toBe(false);
      expect(db.prepare<[number], { n: number }>('SELECT ?::int AS n').get(41)).toEqual({ n: 41 });
      expect(db.prepare<[], { n: number }>('SELECT 42 AS n').all()).toEqual([{ n: 42 }]);
    } finally {
      await db.close();
    }
  });

  it('leaves the connection usable for a transaction', async () => {
    const db = connected();
    try {
      db.prepare('CREATE TABLE IF NOT EXISTS notes (body text)').run();
      const insertAfterSleep = db.transaction(() => {
        db.prepare('INSERT INTO notes VALUES (?)').run('lost');
        db.prepare('SELECT pg_sleep(30)').get();
      });
      timeoutOf(insertAfterSleep);
      db.transaction(() => db.prepare('INSERT INTO notes VALUES (?)').run('kept'))();
      expect(db.prepare<[], { body: string }>('SELECT body FROM notes').all()).toEqual([{ body: 'kept' }]);
    } finally {
      await db.close();
    }
  });
});

describe.skipIf(!SyncPostgres.available())('SyncPostgres waiting for a lock another session holds', () => {
  /** How long a statement took to fail, and how. */
  function failure(db: SyncPostgres, sql: string): { error: SyncPostgresError; ms: number } {
    const started = performance.now();
    const error = timeoutOf(() => db.prepare(sql).all());
    return { error, ms: performance.now() - started };
  }

  it('gives up after the lock timeout with lock_not_available (55P03), or sooner when the URL says so', async () => {
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    const db = connected(url, {});
    const quickUrl = new URL(url);
    quickUrl.searchParams.set('lock_timeout', '300');
    const quick = connected(quickUrl.toString(), {});
    try {
      await holder.query('CREATE TABLE IF NOT EXISTS held (x integer)');
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE held IN ACCESS EXCLUSIVE MODE');

      const waited = failure(db, 'SELECT * FROM held');
      expect(waited.error.code).toBe('55P03');
      expect(gaveUpOnLock(waited.error)).toBe(true);
      expect(waited.ms).toBeGreaterThanOrEqual(LOCK_TIMEOUT_MS - 50);
      expect(waited.ms).toBeLessThan(LOCK_TIMEOUT_MS + 3_000);

      const soon = failure(quick, 'SELECT * FROM held');
      expect(soon.error.code).toBe('55P03');
      expect(soon.ms).toBeLessThan(LOCK_TIMEOUT_MS - 1_000);

      // Nothing else is held against the connection: its next statement is answered.
      expect(db.prepare<[], { n: number }>('SELECT 7 AS n').get()).toEqual({ n: 7 });
      await holder.query('COMMIT');
      expect(db.prepare('SELECT * FROM held').all()).toEqual([]);
    } finally {
      await Promise.all([db.close(), quick.close(), holder.end()]);
    }
  });
});
