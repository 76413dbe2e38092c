import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Collector, collectorDatabaseBytes, lachan, startCollector, stopCollector, wireEvent } from './harness/index.js';

function addSchool(dataDir: string, name: string): { id: string; token: string } {
  const result = lachan(['central', 'school', 'add', '--name', name, '--data', dataDir, '--json']);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as { id: string; token: string };
}

function storedEvents(dataDir: string, school?: string): Record<string, unknown>[] {
  const result = lachan(['central', 'events', '--data', dataDir, '--json', ...(school ? ['--school', school] : [])]);
  expect(result.code).toBe(0);
  return result.stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function post(url: string, token: string, body: unknown, options: { gzip?: boolean; raw?: Buffer } = {}) {
  const json = Buffer.from(JSON.stringify(body));
  const payload = options.raw ?? (options.gzip ? gzipSync(json) : json);
  const response = await fetch(`${url}/api/v1/events`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      ...(options.gzip ? { 'content-encoding': 'gzip' } : {}),
    },
    body: new Uint8Array(payload),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text.length ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const dataDir = mkdtempSync(path.join(tmpdir(), 'lachan-central-'));
let collector: Collector;

beforeAll(async () => {
  collector = await startCollector(dataDir, ['--rate-limit', '5']);
});
afterAll(async () => {
  if (collector) await stopCollector(collector);
  rmSync(dataDir, { recursive: true, force: true });
});

describe('lachan central', () => {
  it('school add prints an id and a token once; the database keeps only a hash', () => {
    const school = addSchool(dataDir, 'TH Trạm Tấu');
    expect(school.id).toMatch(/^[0-9a-z]{12}$/);
    expect(school.token.length).toBeGreaterThan(40);
    expect(collectorDatabaseBytes(dataDir).includes(school.token)).toBe(false);
    const list = lachan(['central', 'school', 'list', '--data', dataDir, '--json']);
    expect(list.stdout).toContain('"name":"TH Trạm Tấu"');
    expect(list.stdout).not.toContain(school.token);
  });

  it('refuses a wrong token with 401 and stores nothing', async () => {
    const school = addSchool(dataDir, 'THCS Bản Công');
    const batch = { school: school.id, events: [wireEvent()] };
    const wrong = await post(collector.url, `${school.token.slice(0, -4)}AAAA`, batch);
    expect(wrong.status).toBe(401);
    const none = await post(collector.url, '', batch);
    expect(none.status).toBe(401);
    expect(storedEvents(dataDir, school.id)).toEqual([]);
  });

  it('stores the same batch once however often it arrives, and acknowledges every id each time', async () => {
    const school = addSchool(dataDir, 'TH Hát Lừu');
    const events = [wireEvent(), wireEvent({ category: 'adult', host: 'x.example', path: '/a?user=an' }), wireEvent({ category: null, reason: 'ip-literal' })];
    const first = await post(collector.url, school.token, { school: school.id, events });
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ acked: events.map((e) => e.id), stored: 3, duplicates: 0 });
    const again = await post(collector.url, school.token, { school: school.id, events }, { gzip: true });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ acked: events.map((e) => e.id), stored: 0, duplicates: 3 });
    const stored = storedEvents(dataDir, school.id);
    expect(stored.map((e) => e.id).sort()).toEqual(events.map((e) => e.id).sort());
    const adult = stored.find((e) => e.category === 'adult')!;
    expect(adult.path).toBe('/a');
    expect(adult.school).toBe(school.id);
  });

  it('accepts a gzip batch and stores unknown profiles and categories', async () => {
    const school = addSchool(dataDir, 'THPT Trạm Tấu');
    const event = wireEvent({ profile: 'lop-hoc-them', category: 'danh-muc-moi' });
    const reply = await post(collector.url, school.token, { school: school.id, events: [event] }, { gzip: true });
    expect(reply.status).toBe(200);
    expect(reply.body.acked).toEqual([event.id]);
    expect(storedEvents(dataDir, school.id)).toEqual([expect.objectContaining({ id: event.id, profile: 'lop-hoc-them', category: 'danh-muc-moi' })]);
  });

  it('refuses a malformed batch with 400 and the reason, storing none of it', async () => {
    const school = addSchool(dataDir, 'TH Pá Lau');
    const good = wireEvent();
    const cases: [unknown, RegExp][] = [
      [{ school: school.id, events: [good, { ...wireEvent(), time: 'yesterday' }] }, /events\[1\]\.time/],
      [{ school: school.id, events: [{ ...wireEvent(), client: '10.10.0.25' }] }, /events\[0\]\.client/],
      [{ school: school.id, events: [{ ...wireEvent(), host: undefined }] }, /events\[0\]\.host/],
      [{ school: school.id }, /events/],
      [[1, 2, 3], /body/],
    ];
    for (const [body, reason] of cases) {
      const reply = await post(collector.url, school.token, body);
      expect(reply.status).toBe(400);
      expect(String(reply.body.message)).toMatch(reason);
    }
    const notJson = await post(collector.url, school.token, null, { raw: Buffer.from('{"school": ') });
    expect(notJson.status).toBe(400);
    const badGzip = await fetch(`${collector.url}/api/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${school.token}`, 'content-encoding': 'gzip' },
      body: 'not gzip at all',
    });
    expect(badGzip.status).toBe(400);
    expect(storedEvents(dataDir, school.id)).toEqual([]);
  });

  it('refuses an oversized body with 413, compressed or not', async () => {
    const school = addSchool(dataDir, 'TH Xà Hồ');
    const big = await post(collector.url, school.token, null, { raw: Buffer.alloc(3 * 1024 * 1024, 0x20) });
    expect(big.status).toBe(413);
    // 64 MiB of spaces gzip to ~64 KiB: the limit applies to what it inflates to.
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20));
    const inflated = await fetch(`${collector.url}/api/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${school.token}`, 'content-encoding': 'gzip' },
      body: bomb,
    });
    expect(inflated.status).toBe(413);
    expect(storedEvents(dataDir, school.id)).toEqual([]);
  });

  it('stores a gzip batch that inflates past a megabyte (within the limit)', async () => {
    const school = addSchool(dataDir, 'TH Nậm Cang');
    const events = Array.from({ length: 1_000 }, (_, i) => wireEvent({ path: `/${'trang-'.repeat(300)}${i}` }));
    const body = gzipSync(JSON.stringify({ school: school.id, events }));
    expect(JSON.stringify({ school: school.id, events }).length).toBeGreaterThan(1024 * 1024);
    const reply = await fetch(`${collector.url}/api/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${school.token}`, 'content-encoding': 'gzip', 'content-type': 'application/json' },
      body,
    });
    expect(reply.status).toBe(200);
    expect(((await reply.json()) as { stored: number }).stored).toBe(1_000);
    expect(storedEvents(dataDir, school.id)).toHaveLength(1_000);
  });

  it('answers a flood from one school with 429 and Retry-After', async () => {
    const school = addSchool(dataDir, 'TH Bản Mù');
    const replies = await Promise.all(Array.from({ length: 40 }, () => post(collector.url, school.token, { school: school.id, events: [wireEvent()] })));
    const limited = replies.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(Number(limited[0]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const accepted = replies.filter((r) => r.status === 200);
    expect(accepted.length).toBeGreaterThan(0);
    expect(storedEvents(dataDir, school.id)).toHaveLength(accepted.length);
    // Another school is not held back by the first one's flood.
    const other = addSchool(dataDir, 'TH Túc Đán');
    expect((await post(collector.url, other.token, { school: other.id, events: [wireEvent()] })).status).toBe(200);
  });

  it('stores an event id once per school: another school may use the same id', async () => {
    // Ids are unique per gateway; two gateways may well draw the same one (a restored
    // image, a cloned SD card). The second school's event is its own, not a duplicate.
    const a = addSchool(dataDir, 'TH Chung Mã A');
    const b = addSchool(dataDir, 'TH Chung Mã B');
    const shared = wireEvent({ host: 'a.example' });
    expect((await post(collector.url, a.token, { school: a.id, events: [shared] })).body).toEqual({ acked: [shared.id], stored: 1, duplicates: 0 });
    const fromB = { ...shared, host: 'b.example', count: 3 };
    expect((await post(collector.url, b.token, { school: b.id, events: [fromB] })).body).toEqual({ acked: [shared.id], stored: 1, duplicates: 0 });
    // Each school's resend is still a duplicate of its own.
    expect((await post(collector.url, b.token, { school: b.id, events: [fromB] })).body).toEqual({ acked: [shared.id], stored: 0, duplicates: 1 });
    expect(storedEvents(dataDir, a.id).map((e) => [e.id, e.host, e.count])).toEqual([[shared.id, 'a.example', 1]]);
    expect(storedEvents(dataDir, b.id).map((e) => [e.id, e.host, e.count])).toEqual([[shared.id, 'b.example', 3]]);
    // The visit grew after it was sent: the resend raises its count (never lowers it), nothing else.
    expect((await post(collector.url, b.token, { school: b.id, events: [{ ...fromB, count: 5, host: 'other.example' }] })).body).toMatchObject({
      stored: 0,
      duplicates: 1,
    });
    expect((await post(collector.url, b.token, { school: b.id, events: [{ ...fromB, count: 2 }] })).body).toMatchObject({ stored: 0, duplicates: 1 });
    expect(storedEvents(dataDir, b.id).map((e) => [e.id, e.host, e.count])).toEqual([[shared.id, 'b.example', 5]]);
    expect(storedEvents(dataDir, a.id).map((e) => e.count)).toEqual([1]);
  });

  it('refuses a token used for another school with 403', async () => {
    const a = addSchool(dataDir, 'TH A');
    const b = addSchool(dataDir, 'TH B');
    const reply = await post(collector.url, a.token, { school: b.id, events: [wireEvent()] });
    expect(reply.status).toBe(403);
    expect(storedEvents(dataDir, b.id)).toEqual([]);
  });

  it('stops accepting a revoked school at once', async () => {
    const school = addSchool(dataDir, 'TH Phình Hồ');
    expect((await post(collector.url, school.token, { school: school.id, events: [wireEvent()] })).status).toBe(200);
    expect(lachan(['central', 'school', 'revoke', school.id, '--data', dataDir]).code).toBe(0);
    expect((await post(collector.url, school.token, { school: school.id, events: [wireEvent()] })).status).toBe(401);
    expect(lachan(['central', 'school', 'revoke', 'nosuchschool', '--data', dataDir]).code).toBe(2);
  });

  it('serves events and statistics to the dashboard only with the admin token', async () => {
    const school = addSchool(dataDir, 'TH Dashboard');
    const events = Array.from({ length: 25 }, (_, i) =>
      wireEvent({ host: i < 15 ? 'top.example' : `h${i}.example`, category: i % 5 === 0 ? 'adult' : 'gambling', profile: i % 2 ? 'thcs' : 'tieu-hoc' }),
    );
    expect((await post(collector.url, school.token, { school: school.id, events })).status).toBe(200);

    expect((await fetch(`${collector.url}/api/v1/events?school=${school.id}`)).status).toBe(401);
    const admin = readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    const auth = { authorization: `Bearer ${admin}` };

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `school=${school.id}&limit=10${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await (await fetch(`${collector.url}/api/v1/events?${query}`, { headers: auth })).json()) as {
        events: { id: string }[];
        nextCursor: string | null;
      };
      expect(page.events.length).toBeLessThanOrEqual(10);
      seen.push(...page.events.map((e) => e.id));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(seen.sort()).toEqual(events.map((e) => e.id).sort());

    const filtered = (await (await fetch(`${collector.url}/api/v1/events?school=${school.id}&category=adult&profile=tieu-hoc`, { headers: auth })).json()) as {
      events: { id: string }[];
    };
    expect(filtered.events.map((e) => e.id).sort()).toEqual(
      events
        .filter((e) => e.category === 'adult' && e.profile === 'tieu-hoc')
        .map((e) => e.id)
        .sort(),
    );

    const stats = (await (await fetch(`${collector.url}/api/v1/stats?school=${school.id}`, { headers: auth })).json()) as {
      total: number;
      byCategoryDay: { category: string; count: number }[];
      bySchool: { school: string; name: string; count: number }[];
      topHosts: { host: string; count: number }[];
    };
    expect(stats.total).toBe(25);
    expect(stats.byCategoryDay.find((r) => r.category === 'adult')?.count).toBe(5);
    expect(stats.bySchool).toEqual([{ school: school.id, name: 'TH Dashboard', count: 25 }]);
    expect(stats.topHosts[0]).toMatchObject({ host: 'top.example' });
    expect(stats.topHosts.filter((h) => h.host === 'top.example').reduce((s, h) => s + h.count, 0)).toBe(15);
  });

  it('refuses a bad --since with exit 2', () => {
    const result = lachan(['central', 'events', '--data', dataDir, '--since', 'tomorrow']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});
