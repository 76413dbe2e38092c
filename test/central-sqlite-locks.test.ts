/**
 * A collector on SQLite while another process holds the file's write lock (an operator's
 * `sqlite3` with a transaction open, a backup tool, a `lachan central` command): what
 * needs the lock waits SQLite's busy timeout and is then answered 503 `database_busy`
 * with Retry-After, not 500; what needs only to read goes on (the file is in WAL mode,
 * where readers never wait for the writer, so a dashboard read cannot be refused by it).
 * A gateway's shipper keeps what was refused and delivers it, once, after the lock is gone.
 *
 * SQLite only: the same on PostgreSQL is central-pg-locks.test.ts.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEventLog } from '../src/events/log.js';
import { startShipper } from '../src/events/shipper.js';
import { BUSY_TIMEOUT_MS } from '../src/storage/sqlite.js';
import {
  addSchool,
  addUser,
  blockEvent,
  type Collector,
  collectorOnPostgres,
  collectorRows,
  login,
  PASSWORD,
  startCollector,
  stopCollector,
  wireEvent,
} from './harness/index.js';

/** How long the test waits for an answer the database can give at once: only a hang takes longer. */
const HANG_MS = 20_000;
/** How soon a request the held lock keeps back must be answered: the busy timeout and a margin for a loaded box. */
const REFUSED_WITHIN_MS = BUSY_TIMEOUT_MS + 2_500;

let dataDir: string;
let gatewayDir: string;
let collector: Collector;
let school: { id: string; token: string };
let admin: { cookie: string; csrf: string };

/** Runs `body` while another connection to the collector's file holds a write transaction (`BEGIN IMMEDIATE` or `EXCLUSIVE`). */
async function whileHeld(mode: 'IMMEDIATE' | 'EXCLUSIVE', body: (release: () => void) => Promise<void>): Promise<void> {
  const db = new Database(path.join(dataDir, 'central.db'));
  try {
    db.exec(`BEGIN ${mode}`);
    await body(() => {
      if (db.inTransaction) db.exec('COMMIT');
    });
  } finally {
    db.close();
  }
}

const ingest = (events: unknown[]): Promise<Response> =>
  fetch(`${collector.url}/api/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${school.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ school: school.id, events }),
    signal: AbortSignal.timeout(HANG_MS),
  });

/** The response and how long it took. */
async function timed(request: () => Promise<Response>): Promise<{ response: Response; ms: number }> {
  const started = performance.now();
  const response = await request();
  return { response, ms: performance.now() - started };
}

/** Ids of the school's events the collector holds, in `events` and in its inbox alike (a double would show twice). */
function storedIds(): string[] {
  return collectorRows<{ id: string }>(dataDir, 'SELECT id FROM events WHERE school = ? UNION ALL SELECT id FROM events_inbox WHERE school = ?', [
    school.id,
    school.id,
  ])
    .map((row) => row.id)
    .sort();
}

/**
 * Moves the writer thread's inbox into `events` (the statistics do before they answer), so
 * that no drain of its own is under way when the test takes the lock.
 */
async function settle(): Promise<void> {
  const stats = await fetch(`${collector.url}/api/v1/stats`, { headers: { cookie: admin.cookie }, signal: AbortSignal.timeout(HANG_MS) });
  expect(stats.status).toBe(200);
}

/** The login form sent as a browser sends it (a page is wanted). */
async function browserLogin(): Promise<Response> {
  const form = await fetch(`${collector.url}/login`, { signal: AbortSignal.timeout(HANG_MS) });
  const csrf = /name="csrf" value="([^"]+)"/.exec(await form.text())![1]!;
  const loginCookie = /lachan_login_csrf=([^;]+)/.exec(form.headers.getSetCookie().join('\n'))![1]!;
  return fetch(`${collector.url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `lachan_login_csrf=${loginCookie}`, accept: 'text/html,application/xhtml+xml' },
    body: new URLSearchParams({ csrf, name: 'quantri', password: PASSWORD }).toString(),
    signal: AbortSignal.timeout(HANG_MS),
  });
}

async function waitFor(check: () => boolean, what: string, ms = HANG_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.skipIf(collectorOnPostgres())('a collector on SQLite while another process holds the write lock', () => {
  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'lachan-sqlite-locks-'));
    gatewayDir = mkdtempSync(path.join(tmpdir(), 'lachan-sqlite-locks-gw-'));
    school = addSchool(dataDir, 'TH Khóa Bảng');
    addUser(dataDir, 'quantri', 'admin');
    collector = await startCollector(dataDir);
    admin = await login(collector.url, 'quantri');
  });

  afterAll(async () => {
    if (collector) await stopCollector(collector);
    for (const dir of [dataDir, gatewayDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(
    'answers a gateway’s batch 503 database_busy after the busy timeout, serves reads meanwhile, and stores the batch once when it comes again',
    async () => {
      expect((await ingest([wireEvent({ host: 'truoc.example' })])).status).toBe(200);
      await settle();
      const batch = [wireEvent({ host: 'khoa-1.example' }), wireEvent({ host: 'khoa-2.example' })];

      await whileHeld('IMMEDIATE', async (release) => {
        const refused = await timed(() => ingest(batch));
        expect(refused.response.status).toBe(503);
        expect(refused.response.headers.get('retry-after')).toBe('5');
        expect(await refused.response.json()).toMatchObject({ error: 'database_busy' });
        expect(refused.ms).toBeGreaterThanOrEqual(BUSY_TIMEOUT_MS - 50);
        expect(refused.ms).toBeLessThan(REFUSED_WITHIN_MS);

        // Reads do not wait for a writer in WAL mode: the dashboard answers meanwhile.
        const hosts = await fetch(`${collector.url}/api/v1/dashboard/top-hosts`, { headers: { cookie: admin.cookie }, signal: AbortSignal.timeout(HANG_MS) });
        expect(hosts.status).toBe(200);
        expect(JSON.stringify(await hosts.json())).toContain('truoc.example');
        release();
      });

      const accepted = await ingest(batch);
      expect(accepted.status).toBe(200);
      expect(await accepted.json()).toMatchObject({ stored: 2, duplicates: 0 });
      const again = await ingest(batch);
      expect(await again.json()).toMatchObject({ stored: 0, duplicates: 2 });
      const ids = storedIds();
      for (const event of batch) expect(ids.filter((id) => id === event.id)).toHaveLength(1);
    },
    3 * HANG_MS,
  );

  it(
    'answers each batch of a lock that holds on within the busy timeout, with events of before in its inbox, and stores them all once released',
    async () => {
      // Acknowledged, not yet moved out of the writer's inbox: its timer tries to drain it every 5 s.
      const before = [wireEvent({ host: 'hop-thu.example' })];
      expect((await ingest(before)).status).toBe(200);
      const batches = [[wireEvent({ host: 'lan-1.example' })], [wireEvent({ host: 'lan-2.example' })], [wireEvent({ host: 'lan-3.example' })]];

      await whileHeld('IMMEDIATE', async (release) => {
        // The first may meet a drain of the timer's already waiting (up to two busy timeouts);
        // after it, no drain of the timer may hold up a batch.
        const first = await timed(() => ingest(batches[0]!));
        expect(first.response.status).toBe(503);
        expect(first.ms).toBeLessThan(BUSY_TIMEOUT_MS + REFUSED_WITHIN_MS);
        for (const batch of batches.slice(1)) {
          const refused = await timed(() => ingest(batch));
          expect(refused.response.status).toBe(503);
          expect(refused.ms).toBeLessThan(REFUSED_WITHIN_MS);
        }
        release();
      });

      for (const batch of batches) expect(await (await ingest(batch)).json()).toMatchObject({ stored: 1 });
      const ids = storedIds();
      for (const event of [...before, ...batches.flat()]) expect(ids.filter((id) => id === event.id)).toHaveLength(1);
    },
    3 * HANG_MS,
  );

  it(
    'answers the overview’s reads together within one busy timeout while the lock holds, with events in the inbox it cannot move',
    async () => {
      // Acknowledged, still in the writer's inbox: each statistics query first asks for it to be moved.
      const waiting = wireEvent({ host: 'cho-chuyen.example' });
      expect((await ingest([waiting])).status).toBe(200);
      const read = (url: string) => timed(() => fetch(`${collector.url}${url}`, { headers: { cookie: admin.cookie }, signal: AbortSignal.timeout(HANG_MS) }));

      await whileHeld('IMMEDIATE', async (release) => {
        // What the overview page asks for at once.
        const answers = await Promise.all(['/api/v1/stats?top=5', '/api/v1/stats', '/api/v1/dashboard/top-hosts', '/api/v1/dashboard/schools'].map(read));
        for (const { response, ms } of answers) {
          expect(response.status).toBe(200);
          expect(ms).toBeLessThan(REFUSED_WITHIN_MS);
        }
        // Answered from what is in `events`, saying how much is not counted yet (this event and any before it).
        expect(((await answers[1]!.response.json()) as { pendingRollup: number }).pendingRollup).toBeGreaterThanOrEqual(1);
        release();
      });

      const stats = (await (await read('/api/v1/stats')).response.json()) as { pendingRollup: number; topHosts: { host: string }[] };
      expect(stats.pendingRollup).toBe(0);
      expect(stats.topHosts.map((h) => h.host)).toContain('cho-chuyen.example');
    },
    3 * HANG_MS,
  );

  it(
    'answers a dashboard form that must write with a 503 page, and a script’s call with 503 JSON, then serves both once released',
    async () => {
      await whileHeld('EXCLUSIVE', async (release) => {
        const page = await timed(browserLogin);
        expect(page.response.status).toBe(503);
        expect(page.response.headers.get('retry-after')).toBe('5');
        expect(page.response.headers.get('content-type')).toContain('text/html');
        expect(await page.response.text()).toContain('Cơ sở dữ liệu đang bận');
        expect(page.ms).toBeLessThan(REFUSED_WITHIN_MS);

        // A script's call: a new account (the users API writes to the accounts table).
        const created = await fetch(`${collector.url}/api/v1/users`, {
          method: 'POST',
          headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf, 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'nguoimoi', role: 'viewer', password: PASSWORD }),
          signal: AbortSignal.timeout(HANG_MS),
        });
        expect(created.status).toBe(503);
        expect(created.headers.get('retry-after')).toBe('5');
        expect(await created.json()).toMatchObject({ error: 'database_busy' });
        release();
      });

      expect((await browserLogin()).status).toBe(303);
    },
    3 * HANG_MS,
  );

  it(
    'leaves a gateway’s events queued while the collector answers 503, and they arrive once after the lock is released',
    async () => {
      const tokenFile = path.join(gatewayDir, 'token');
      writeFileSync(tokenFile, `${school.token}\n`, { mode: 0o600 });
      const log = openEventLog({ dataDir: gatewayDir, school: school.id });
      const shipper = startShipper({
        eventLog: log,
        centralUrl: collector.url,
        schoolId: school.id,
        tokenFile,
        minBackoffMs: 50,
        maxBackoffMs: 300,
        idleIntervalMs: 50,
      });
      try {
        await settle();
        await whileHeld('IMMEDIATE', async (release) => {
          for (let i = 0; i < 20; i++) log.record(blockEvent());
          await waitFor(() => shipper.stats().failures >= 1, 'a refused batch');
          expect(shipper.stats().lastError).toMatch(/^collector answered 503: .*database_busy/);
          expect(log.stats().pending).toBe(20);
          release();
        });
        await waitFor(() => log.stats().pending === 0, 'the events to ship after the release');
      } finally {
        await shipper.stop();
        await log.close();
      }
      const db = new Database(path.join(gatewayDir, 'events.db'), { readonly: true });
      const sent = (db.prepare('SELECT id FROM events').pluck().all() as string[]).sort();
      db.close();
      expect(sent).toHaveLength(20);
      const stored = storedIds();
      for (const id of sent) expect(stored.filter((s) => s === id)).toHaveLength(1);
    },
    3 * HANG_MS,
  );
});
