import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openEventLog, readEventLog, VISIT_WINDOW_MS, type GatewayEventLog } from '../src/events/log.js';
import { parseSince } from '../src/events/since.js';
import { blockEvent as block, lachan } from './harness/index.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'lachan-events-'));
  dirs.push(dir);
  return dir;
}
afterAll(() =>
  dirs.forEach((dir) => {
    rmSync(dir, { recursive: true, force: true });
  }),
);

interface Row {
  id: string;
  time: number;
  school: string | null;
  category: string | null;
  path: string;
  client: string;
  method: string;
  count: number;
  shipped_at: number | null;
}

function rowsInFile(dataDir: string): Row[] {
  const db = new Database(path.join(dataDir, 'events.db'), { readonly: true });
  try {
    return db.prepare('SELECT * FROM events ORDER BY id').all() as Row[];
  } finally {
    db.close();
  }
}

async function waitFor(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('the gateway event log', () => {
  it('writes recorded events to events.db without being asked to flush, with the query stripped', async () => {
    const dir = tempDir();
    const log = openEventLog({ dataDir: dir, school: 'sch1' });
    const reference = log.record(block({ path: '/search?q=c%E1%BB%9D+b%E1%BA%A1c&user=an#top' }));
    expect(reference).toMatch(/^[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    // record() only buffers; the batch reaches the file on its own shortly after.
    await waitFor(() => rowsInFile(dir).length === 1, 'the batch to be written');
    const [row] = rowsInFile(dir);
    expect(row!.path).toBe('/search');
    expect(row!.school).toBe('sch1');
    expect(row!.shipped_at).toBeNull();
    expect(row!.id.endsWith(reference.replace('-', ''))).toBe(true);
    await log.close();
  });

  it('stores a keyed pseudonym, never the address: stable on one gateway, different on another', async () => {
    const one = tempDir();
    const other = tempDir();
    // Distinct times keep the rows in recording order (ids sort by time).
    const t = Date.now() - 10_000;
    const first = openEventLog({ dataDir: one });
    first.record(block({ clientAddress: '10.10.0.25', time: t }));
    first.record(block({ clientAddress: '::ffff:10.10.0.25', time: t + 1 }));
    first.record(block({ clientAddress: '10.10.0.26', time: t + 2 }));
    await first.close();
    const again = openEventLog({ dataDir: one });
    again.record(block({ clientAddress: '10.10.0.25', time: t + 3 }));
    await again.close();
    const second = openEventLog({ dataDir: other });
    second.record(block({ clientAddress: '10.10.0.25' }));
    await second.close();

    const clients = rowsInFile(one).map((r) => r.client);
    expect(clients).toHaveLength(4);
    for (const client of clients) expect(client).toMatch(/^[0-9a-f]{16}$/);
    const [a, mapped, b, reopened] = clients;
    expect(mapped).toBe(a);
    expect(reopened).toBe(a);
    expect(b).not.toBe(a);
    expect(rowsInFile(other)[0]!.client).not.toBe(a);
    const raw = readFileSync(path.join(one, 'events.db'));
    expect(raw.includes('10.10.0.25')).toBe(false);
    expect(statSync(path.join(one, 'client-key')).mode & 0o777).toBe(0o600);
  });

  it('stores a review request linked to the event the block page named', async () => {
    const dir = tempDir();
    const log = openEventLog({ dataDir: dir });
    const reference = log.record(block());
    const reviewId = log.recordReviewRequest({
      eventRef: reference.toLowerCase(),
      host: 'www1.nhacai.example',
      category: 'gambling',
      profile: 'tieu-hoc',
      note: 'Trang này là bài tập của cô giáo',
      clientAddress: '10.10.0.25',
    });
    await log.close();
    const db = new Database(path.join(dir, 'events.db'), { readonly: true });
    const review = db.prepare('SELECT * FROM reviews WHERE id = ?').get(reviewId) as { event_id: string; note: string; client: string };
    db.close();
    expect(review.event_id).toBe(rowsInFile(dir)[0]!.id);
    expect(review.note).toBe('Trang này là bài tập của cô giáo');
    expect(review.client).toBe(rowsInFile(dir)[0]!.client);

    const listed = lachan(['logs', '--data', dir, '--reviews', '--json']);
    expect(listed.code).toBe(0);
    const lines = listed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { eventId: string; note: string });
    expect(lines).toEqual([expect.objectContaining({ eventId: rowsInFile(dir)[0]!.id, note: 'Trang này là bài tập của cô giáo' })]);
  });

  it('expires shipped events past retention and never an unshipped one', async () => {
    const dir = tempDir();
    const log: GatewayEventLog = openEventLog({ dataDir: dir, retentionDays: 30 });
    const old = Date.now() - 45 * 86_400_000;
    for (let i = 0; i < 6; i++) log.record(block({ time: old + i }));
    log.record(block());
    const pending = log.unshipped(10);
    expect(pending).toHaveLength(7);
    // Ship the first three old ones and the recent one.
    expect(log.markShipped([pending[0]!.id, pending[1]!.id, pending[2]!.id, pending[6]!.id])).toBe(4);
    expect(log.stats().pending).toBe(3);
    expect(log.expire()).toBe(3);
    const left = rowsInFile(dir);
    expect(left.map((r) => r.id).sort()).toEqual([pending[3]!.id, pending[4]!.id, pending[5]!.id, pending[6]!.id].sort());
    const stats = log.stats();
    expect(stats.stored).toBe(4);
    expect(stats.pending).toBe(3);
    expect(stats.oldestPendingAge).toBeGreaterThan(44 * 86_400_000);
    expect(stats.dbBytes).toBeGreaterThan(0);
    await log.close();
  });

  it('expires every old event on a gateway that ships nothing', async () => {
    const dir = tempDir();
    const log = openEventLog({ dataDir: dir, retentionDays: 30, shipping: false });
    log.record(block({ time: Date.now() - 45 * 86_400_000 }));
    log.record(block());
    expect(log.expire()).toBe(1);
    expect(rowsInFile(dir)).toHaveLength(1);
    await log.close();
  });

  it('raises its alarm past the size limit, refuses new events and keeps unshipped ones', async () => {
    const dir = tempDir();
    const first = openEventLog({ dataDir: dir });
    for (let i = 0; i < 20; i++) first.record(block({ time: Date.now() - 60 * 86_400_000 + i }));
    await first.close();
    const full = openEventLog({ dataDir: dir, maxDbBytes: 4096 });
    expect(full.stats().overLimit).toBe(true);
    full.record(block());
    expect(full.expire()).toBe(0);
    const stats = full.stats();
    expect(stats.dropped).toBe(1);
    expect(stats.pending).toBe(20);
    await full.close();
    expect(rowsInFile(dir)).toHaveLength(20);
  });

  it('counts a visit once: repeats from one device to one host and category within the window fold into its event', async () => {
    const dir = tempDir();
    const log = openEventLog({ dataDir: dir });
    const start = Date.now();
    const visit = { host: 'www.casino.example', time: start };
    // The CONNECT, the page and its favicon: one visit, one reference on every block page.
    const first = log.record(block({ ...visit, method: 'CONNECT', path: '/' }));
    expect(log.record(block({ ...visit, time: start + 200, path: '/trang' }))).toBe(first);
    expect(log.record(block({ ...visit, time: start + 300, path: '/favicon.ico' }))).toBe(first);
    // Another category or another device: events of their own.
    const other = log.record(block({ ...visit, category: 'adult' }));
    const device = log.record(block({ ...visit, clientAddress: '10.10.0.26' }));
    expect(new Set([first, other, device]).size).toBe(3);
    log.flush();
    const rows = () => Object.fromEntries(rowsInFile(dir).map((r) => [r.id.slice(-8), r]));
    const tail = (reference: string) => reference.replace('-', '');
    expect(rows()[tail(first)]).toMatchObject({ method: 'CONNECT', path: '/', count: 3 });
    expect([other, device].map((r) => rows()[tail(r)]!.count)).toEqual([1, 1]);

    // A repeat after the event was shipped adds to it and sends it again with the new count.
    expect(log.markShipped(log.unshipped(10).map((e) => e.id))).toBe(3);
    expect(log.record(block({ ...visit, time: start + 400 }))).toBe(first);
    // Repeats still in memory at shutdown are written, not lost.
    expect(log.record(block({ ...visit, time: start + 500 }))).toBe(first);
    // A repeat while the event travels: the acknowledgement of the smaller count leaves it to go again.
    const sent = log.unshipped(10);
    expect(sent.map((e) => [e.id.slice(-8), e.count])).toEqual([[tail(first), 5]]);
    expect(log.record(block({ ...visit, time: start + 600 }))).toBe(first);
    log.flush();
    expect(
      log.markShipped(
        sent.map((e) => e.id),
        Date.now(),
        sent,
      ),
    ).toBe(0);
    expect(log.record(block({ ...visit, time: start + 700 }))).toBe(first);
    // Past the window: a new visit.
    const later = log.record(block({ ...visit, time: start + VISIT_WINDOW_MS + 1 }));
    expect(later).not.toBe(first);
    await log.close();
    expect(rows()[tail(first)]).toMatchObject({ count: 7, shipped_at: null });
    const reopened = openEventLog({ dataDir: dir });
    expect(reopened.unshipped(10).map((e) => [e.id.slice(-8), e.count])).toEqual([
      [tail(first), 7],
      [tail(later), 1],
    ]);
    expect(reopened.stats().dropped).toBe(0);
    await reopened.close();
    // lachan logs shows the count.
    expect(lachan(['logs', '--data', dir]).stdout).toMatch(/CONNECT\s+7\s+www\.casino\.example/);
  });

  it('parses --since durations and dates', () => {
    const now = Date.UTC(2026, 10, 28, 12);
    expect(parseSince('30m', now)).toBe(now - 30 * 60_000);
    expect(parseSince('2d', now)).toBe(now - 2 * 86_400_000);
    expect(parseSince('1w', now)).toBe(now - 7 * 86_400_000);
    expect(parseSince('2026-11-01T08:00:00+07:00', now)).toBe(Date.UTC(2026, 10, 1, 1));
    expect(parseSince('yesterday', now)).toBeNull();
    expect(parseSince('2026-13-45', now)).toBeNull();
  });
});

describe('lachan logs', () => {
  const dir = tempDir();
  const hoursAgo = Date.now() - 3 * 3_600_000;
  const now = Date.now() - 10_000;
  const recorded = (async () => {
    const log = openEventLog({ dataDir: dir });
    log.record(block({ category: 'gambling', profile: 'tieu-hoc', host: 'a.example', time: hoursAgo }));
    log.record(block({ category: 'gambling', profile: 'tieu-hoc', host: 'b.example', time: now }));
    log.record(block({ category: 'gambling', profile: 'thcs', host: 'c.example', time: now + 1 }));
    log.record(block({ category: 'adult', profile: 'tieu-hoc', host: 'd.example', time: now + 2 }));
    log.record(block({ category: null, reason: 'ip-literal', profile: 'tieu-hoc', host: '203.0.113.9', time: now + 3 }));
    await log.close();
  })();

  it('prints exactly the matching events as one JSON object a line', async () => {
    await recorded;
    const result = lachan(['logs', '--data', dir, '--since', '1h', '--category', 'gambling', '--profile', 'tieu-hoc', '--json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((e) => e.host)).toEqual(['b.example']);
    expect(lines[0]).toMatchObject({ profile: 'tieu-hoc', category: 'gambling', reason: 'domain', path: '/dang-ky', method: 'GET' });
    expect(lines[0]!.client).toMatch(/^[0-9a-f]{16}$/);

    const all = lachan(['logs', '--data', dir, '--json']);
    expect(
      all.stdout
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { host: string }).host),
    ).toEqual(['a.example', 'b.example', 'c.example', 'd.example', '203.0.113.9']);
  });

  it('prints a readable table', async () => {
    await recorded;
    const result = lachan(['logs', '--data', dir, '--profile', 'thcs']);
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+PROFILE\s+CATEGORY/);
    expect(lines[1]).toContain('c.example');
    expect(lines.at(-1)).toBe('1 event');
  });

  it('refuses a bad --since with exit 2 and one line', async () => {
    await recorded;
    const result = lachan(['logs', '--data', dir, '--since', 'yesterday']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('--since');
  });

  it('says so when the folder holds no event log', () => {
    const result = lachan(['logs', '--data', path.join(dir, 'nowhere')]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});

it('readEventLog reads without creating anything', async () => {
  const dir = tempDir();
  expect(() => readEventLog(dir)).toThrow();
});
