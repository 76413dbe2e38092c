/**
 * A collector on PostgreSQL must not wait on itself. Its district's tables are read and
 * written through a connection that blocks the main thread (src/storage/pg-sync.ts) while
 * its event path runs on an asynchronous pool: a lock the pool held across a round trip
 * (a transaction waiting for its COMMIT, which only the blocked main thread can send)
 * froze the collector until the sync statement gave up, 60 s later. Two such meetings,
 * each made certain by another session that holds the contested lock until both of the
 * collector's statements queue behind it: a new month's partition (ACCESS EXCLUSIVE on
 * `events`) under the dashboard's top-hosts read of `events`, and a parent's erasure
 * (a review request's row) under a decision on that request; and retention's DROP of a
 * month past it (ACCESS EXCLUSIVE on `events`) under the same top-hosts read.
 *
 * And a lock the collector cannot get past (another session holds it and does not let
 * go: a second process, an operator's psql) costs the request that needs it a quick 503
 * (lock_timeout on the synchronous connection), not the collector its whole main thread;
 * the overview page's panels say so in Chromium (and say a failed request failed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCK_TIMEOUT_MS } from '../src/storage/pg-sync.js';
import {
  type Collector,
  describeWithBrowser,
  lachan,
  launchDirect,
  login,
  PASSWORD,
  type PostgresServer,
  signedInPage,
  startCollector,
  startPostgres,
  stopCollector,
  wireEvent,
} from './harness/index.js';

const DAY_MS = 86_400_000;
/** How long the test waits for an answer the database can give at once: only a hang takes longer. */
const HANG_MS = 20_000;
/** How soon a request a held lock keeps back must be answered: the lock timeout and a margin for a loaded box. */
const REFUSED_WITHIN_MS = LOCK_TIMEOUT_MS + 4_000;

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

/** A gateway's POST with the school's token. */
function post(url: string, body: unknown): Promise<Response> {
  return fetch(`${collector.url}${url}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${school.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(HANG_MS),
  });
}

const ingest = (events: unknown[]): Promise<Response> => post('/api/v1/events', { school: school.id, events });

/** Polls until `count` of the database's sessions wait for a lock. */
async function untilLockWaits(observer: pg.Client, count: number): Promise<void> {
  for (;;) {
    const { rows } = await observer.query<{ n: number }>("SELECT count(*)::integer AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'");
    if (rows[0]!.n >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Runs `body` while another session holds `lock` (a statement inside a transaction), so
 * that the collector's statements queue behind it in the order the body makes them.
 */
async function whileHeld(lock: string, params: unknown[], body: (observer: pg.Client, release: () => Promise<unknown>) => Promise<void>): Promise<void> {
  const observer = new pg.Client({ connectionString: database });
  const holder = new pg.Client({ connectionString: database });
  await Promise.all([observer.connect(), holder.connect()]);
  try {
    await holder.query('BEGIN');
    await holder.query(lock, params);
    await body(observer, () => holder.query('COMMIT'));
  } finally {
    await Promise.all([observer.end(), holder.end()]);
  }
}

const status = (response: Promise<Response>): Promise<number | string> => response.then((r) => r.status, String);

/** A dashboard GET with a session's cookie; `accept: text/html` for a browser's page. */
const dashboardGet = (url: string, cookie: string, accept = 'application/json'): Promise<Response> =>
  fetch(`${collector.url}${url}`, { headers: { cookie, accept }, signal: AbortSignal.timeout(HANG_MS) });

/** The response and how long it took. */
async function timed(request: () => Promise<Response>): Promise<{ response: Response; ms: number }> {
  const started = performance.now();
  const response = await request();
  return { response, ms: performance.now() - started };
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
      // own statements queue behind it: first the partition (a late event of an earlier
      // month), then the dashboard's synchronous read.
      await whileHeld('LOCK TABLE events IN ACCESS SHARE MODE', [], async (observer, release) => {
        const late = status(ingest([wireEvent({ host: 'muon.example', time: Date.now() - 40 * DAY_MS })]));
        await untilLockWaits(observer, 1);
        const page = fetch(`${collector.url}/api/v1/dashboard/top-hosts`, { headers: { cookie }, signal: AbortSignal.timeout(HANG_MS) });
        await untilLockWaits(observer, 2);
        await release();

        const answer = await page;
        expect(answer.status).toBe(200);
        expect(JSON.stringify(await answer.json())).toContain('"rule":"nhacai.example"');
        expect(await late).toBe(200);
      });
    },
    3 * HANG_MS,
  );

  it(
    'decides a review request while a parent’s erasure of the same device is being stored, instead of freezing',
    async () => {
      const client = 'abcdef0123456789';
      const review = {
        id: 'review-erasure-0001',
        kind: 'review',
        time: Date.now(),
        host: 'tro-choi.example',
        path: '/',
        category: 'games',
        profile: 'tieu-hoc',
        note: 'em cần trang này để học',
        client,
      };
      const sent = await post('/api/v1/reviews', { school: school.id, requests: [review] });
      expect(sent.status).toBe(200);
      const { cookie, csrf } = await login(collector.url, 'quantri');
      const listed = (await (await fetch(`${collector.url}/api/v1/reviews?status=open`, { headers: { cookie } })).json()) as { requests: { seq: number }[] };
      const seq = listed.requests[0]!.seq;

      // Another session holds the request's row: the erasure (the pool) waits for it first,
      // then the decision (the synchronous connection) behind the erasure.
      await whileHeld('SELECT 1 FROM review_requests WHERE seq = $1 FOR UPDATE', [seq], async (observer, release) => {
        const erased = status(post('/api/v1/erasures', { school: school.id, requests: [{ id: 'erasure-1', client }] }));
        await untilLockWaits(observer, 1);
        const decided = fetch(`${collector.url}/api/v1/reviews/${seq}`, {
          method: 'POST',
          headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' },
          body: JSON.stringify({ action: 'reject', reason: 'không phục vụ học tập' }),
          signal: AbortSignal.timeout(HANG_MS),
        });
        await untilLockWaits(observer, 2);
        await release();

        const answer = await decided;
        expect(answer.status).toBe(200);
        expect(await answer.json()).toMatchObject({ request: { status: 'rejected' } });
        expect(await erased).toBe(200);
      });
    },
    3 * HANG_MS,
  );

  it(
    'answers a dashboard read that a lock held elsewhere keeps back with a quick 503, serves the rest meanwhile, and the read once the lock is gone',
    async () => {
      expect((await ingest([wireEvent({ host: 'khoa.example', rule: 'khoa.example' })])).status).toBe(200);
      const { cookie } = await login(collector.url, 'quantri');

      // top-hosts reads its counts on the pool (roll-ups), then each host's rule from `events` on the synchronous connection.
      await whileHeld('LOCK TABLE events IN ACCESS EXCLUSIVE MODE', [], async (_observer, release) => {
        const refused = await timed(() => dashboardGet('/api/v1/dashboard/top-hosts', cookie));
        expect(refused.response.status).toBe(503);
        expect(refused.response.headers.get('retry-after')).toBe('5');
        expect(await refused.response.json()).toMatchObject({ error: 'database_busy' });
        expect(refused.ms).toBeLessThan(REFUSED_WITHIN_MS);

        // Still held: the process answers, and so does the synchronous connection on other tables.
        expect((await fetch(`${collector.url}/healthz`, { signal: AbortSignal.timeout(HANG_MS) })).status).toBe(200);
        const schools = await dashboardGet('/api/v1/dashboard/schools', cookie);
        expect(schools.status).toBe(200);
        expect(JSON.stringify(await schools.json())).toContain(school.id);

        await release();
        const answer = await dashboardGet('/api/v1/dashboard/top-hosts', cookie);
        expect(answer.status).toBe(200);
        expect(JSON.stringify(await answer.json())).toContain('"rule":"khoa.example"');
      });
    },
    3 * HANG_MS,
  );

  it(
    'answers a dashboard page that a lock held elsewhere keeps back with a quick 503 page, and takes events meanwhile',
    async () => {
      // The month's partition exists: an event of now needs no lock on `events` of its own.
      expect((await ingest([wireEvent({ host: 'truoc.example' })])).status).toBe(200);
      const { cookie } = await login(collector.url, 'quantri');

      await whileHeld('LOCK TABLE review_requests IN ACCESS EXCLUSIVE MODE', [], async (_observer, release) => {
        const refused = await timed(() => dashboardGet('/reviews', cookie, 'text/html,application/xhtml+xml'));
        expect(refused.response.status).toBe(503);
        expect(refused.response.headers.get('retry-after')).toBe('5');
        expect(refused.response.headers.get('content-type')).toContain('text/html');
        expect(await refused.response.text()).toContain('Cơ sở dữ liệu đang bận');
        expect(refused.ms).toBeLessThan(REFUSED_WITHIN_MS);

        const meanwhile = await ingest([wireEvent({ host: 'trong-luc-khoa.example' })]);
        expect(meanwhile.status).toBe(200);
        expect(await meanwhile.json()).toMatchObject({ stored: 1 });
        expect((await fetch(`${collector.url}/healthz`, { signal: AbortSignal.timeout(HANG_MS) })).status).toBe(200);

        await release();
        const page = await dashboardGet('/reviews', cookie, 'text/html,application/xhtml+xml');
        expect(page.status).toBe(200);
      });
    },
    3 * HANG_MS,
  );

  it(
    'answers the top-hosts page while retention drops a month past it, instead of freezing',
    async () => {
      expect((await ingest([wireEvent({ host: 'cu.example', time: Date.now() - 100 * DAY_MS })])).status).toBe(200);
      expect((await ingest([wireEvent({ host: 'moi.example', rule: 'moi.example' })])).status).toBe(200);
      await stopCollector(collector);

      // Another session reading `events` holds the DROP back: retention (run as the collector
      // starts, 30 days keeping nothing of the month 100 days ago) queues first, then the
      // dashboard's synchronous read of `events` behind it.
      await whileHeld('LOCK TABLE events IN ACCESS SHARE MODE', [], async (observer, release) => {
        collector = await startCollector(dataDir, ['--database', database, '--retention-days', '30']);
        await untilLockWaits(observer, 1);
        const { cookie } = await login(collector.url, 'quantri');
        const page = dashboardGet('/api/v1/dashboard/top-hosts', cookie);
        await untilLockWaits(observer, 2);
        await release();

        const answer = await page;
        expect(answer.status).toBe(200);
        expect(JSON.stringify(await answer.json())).toContain('"rule":"moi.example"');
        const { rows } = await observer.query<{ n: number }>("SELECT count(*)::integer AS n FROM events WHERE host = 'cu.example'");
        expect(rows[0]!.n).toBe(0);
      });
    },
    3 * HANG_MS,
  );
});

describeWithBrowser('the dashboard’s overview in Chromium, on PostgreSQL', () => {
  it(
    'says in the panel that the database is busy when its request is answered 503, and that it could not load when the request failed',
    async () => {
      const browser = await launchDirect();
      try {
        const page = await signedInPage(browser, collector.url, 'quantri');
        // The school list (the synchronous connection) meets the lock on school_contact and
        // is answered 503; the statistics (the pool, which waits for a lock without limit)
        // wait on r_category_day until the collector stops answering: a failed request.
        await whileHeld('LOCK TABLE school_contact, r_category_day IN ACCESS EXCLUSIVE MODE', [], async (observer, release) => {
          await page.goto(`${collector.url}/`);
          await page.waitForSelector('#silent li.error', { timeout: HANG_MS });
          expect(await page.textContent('#silent')).toBe('Không tải được: cơ sở dữ liệu đang bận, hãy thử lại sau ít giây.');

          await untilLockWaits(observer, 1);
          const exited = new Promise((resolve) => collector.child.once('exit', resolve));
          collector.child.kill('SIGKILL');
          await exited;
          await page.waitForSelector('#top-hosts p.error', { timeout: HANG_MS });
          await page.waitForSelector('#chart p.error', { timeout: HANG_MS });
          await page.waitForSelector('#by-school td.error', { timeout: HANG_MS });
          for (const panel of ['#top-hosts', '#chart', '#by-school tbody']) expect(await page.textContent(panel)).toBe('Không tải được.');
          await release();
        });
      } finally {
        await browser.close();
        collector = await startCollector(dataDir, ['--database', database]);
      }
    },
    3 * HANG_MS,
  );
});
