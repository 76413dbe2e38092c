/**
 * A collector on PostgreSQL must not wait on itself. Its dashboard reads some tables through
 * a connection that blocks the main thread (src/storage/pg-sync.ts) while its event path
 * runs on an asynchronous pool: a lock the pool held across a round trip (a transaction
 * waiting for its COMMIT, which only the blocked main thread can send) would freeze the
 * collector until the sync statement gave up, 60 s later. Here a new month's partition is
 * being made while the dashboard's top-hosts page reads `events`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Collector, lachan, login, PASSWORD, type PostgresServer, startCollector, startPostgres, stopCollector, wireEvent } from './harness/index.js';

const DAY_MS = 86_400_000;
/** How long the test waits for an answer the database can give at once: only a hang takes longer. */
const HANG_MS = 20_000;

let server: PostgresServer;
let database: string;
let dataDir: string;
let collector: Collector;
let school: { id: string; token: string };

function central(args: string[], input?: string) {
  const result = lachan(['central', ...args, '--data', dataDir, '--database', database], input);
  expect(result.code, result.stderr).toBe(0);
  return result;
}

function ingest(events: unknown[]): Promise<Response> {
  return fetch(`${collector.url}/api/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${school.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ school: school.id, events }),
    signal: AbortSignal.timeout(HANG_MS),
  });
}

/** Polls pg_locks until a lock of `mode` on `events` is waited for. */
async function untilWaiting(observer: pg.Client, mode: string): Promise<void> {
  for (;;) {
    const { rows } = await observer.query("SELECT 1 FROM pg_locks WHERE relation = 'events'::regclass AND mode = $1 AND NOT granted", [mode]);
    if (rows.length > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  server = await startPostgres();
  database = await server.createDatabase();
  dataDir = mkdtempSync(path.join(tmpdir(), 'lachan-pg-locks-'));
  collector = await startCollector(dataDir, ['--database', database]);
  school = JSON.parse(central(['school', 'add', '--name', 'TH Khóa Bảng', '--json']).stdout) as { id: string; token: string };
  central(['user', 'add', 'quantri', '--role', 'admin'], `${PASSWORD}\n`);
});

afterAll(async () => {
  if (collector) await stopCollector(collector);
  await server?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('a collector on PostgreSQL', () => {
  it(
    'answers the top-hosts page while it makes a new month’s partition, instead of freezing',
    async () => {
      expect((await ingest([wireEvent({ host: 'nhacai.example', rule: 'nhacai.example' })])).status).toBe(200);
      const { cookie } = await login(collector.url, 'quantri');

      // Another session reading `events` holds the partition back, so that the collector's
      // own statements queue in a known order behind it: first the partition (a late event
      // of an earlier month), then the dashboard's synchronous read.
      const observer = new pg.Client({ connectionString: database });
      const reader = new pg.Client({ connectionString: database });
      await Promise.all([observer.connect(), reader.connect()]);
      try {
        await reader.query('BEGIN');
        await reader.query('LOCK TABLE events IN ACCESS SHARE MODE');
        const late = ingest([wireEvent({ host: 'muon.example', time: Date.now() - 40 * DAY_MS })]).then((r) => r.status, String);
        await untilWaiting(observer, 'AccessExclusiveLock');
        const page = fetch(`${collector.url}/api/v1/dashboard/top-hosts`, { headers: { cookie }, signal: AbortSignal.timeout(HANG_MS) });
        await untilWaiting(observer, 'AccessShareLock');
        await reader.query('COMMIT');

        const answer = await page;
        expect(answer.status).toBe(200);
        expect(JSON.stringify(await answer.json())).toContain('"rule":"nhacai.example"');
        expect(await late).toBe(200);
      } finally {
        await Promise.all([observer.end(), reader.end()]);
      }
    },
    3 * HANG_MS,
  );
});
