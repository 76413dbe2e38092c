/**
 * SyncPostgres (src/storage/pg-sync.ts) on a real PostgreSQL: a statement that outlives its
 * timeout fails alone; the statements after it get their own answers, not its late one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SyncPostgres, SyncPostgresError } from '../src/storage/pg-sync.js';
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
function connected(): SyncPostgres {
  const db = new SyncPostgres(url, { statementTimeoutMs: TIMEOUT_MS });
  for (let tries = 1; ; tries++) {
    try {
      db.prepare('SELECT 1').get();
      return db;
    } catch (error) {
      if (tries === 10 || !(error instanceof SyncPostgresError) || error.code !== 'LACHAN_PG_SYNC') throw error;
    }
  }
}

describe.skipIf(!SyncPostgres.available())('SyncPostgres after a statement timeout', () => {
  it('gives the next statements their own answers', async () => {
    const db = connected();
    try {
      const slow = timeoutOf(() => db.prepare('SELECT pg_sleep(30) AS slept').get());
      expect(slow.code).toBe('LACHAN_PG_SYNC');
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
