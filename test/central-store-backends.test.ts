import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dayNumber, dayToIso } from '../src/central/days.js';
import { openPostgresStore, type PostgresCentralStore } from '../src/central/pg-store.js';
import { ALERT_PG_MIGRATIONS } from '../src/central/alerts-pg.js';
import { PG_MIGRATIONS } from '../src/central/pg-schema.js';
import { migratePostgres, openPool } from '../src/storage/postgres.js';
import { openSqliteStore } from '../src/central/sqlite-store.js';
import type { CentralEvent, CentralStore, Stats } from '../src/central/store.js';
import type { WireEvent } from '../src/events/wire.js';
import { type PostgresServer, startPostgres, wireEvent } from './harness/index.js';

/**
 * What every collector store must do, run against each: SQLite (the embedded default)
 * and PostgreSQL 15 (a real server, started in a temporary folder). Statistics are
 * checked against a recount, in JavaScript, of the raw events the store gives back.
 */
let postgres: PostgresServer;
const dirs: string[] = [];
beforeAll(async () => {
  postgres = await startPostgres();
}, 120_000);
afterAll(async () => {
  await postgres?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Backend {
  /** A fresh, empty store; `open` again on the same location gives another process's view. */
  fresh(): Promise<{ open: () => Promise<CentralStore> }>;
}

const backends: [string, Backend][] = [
  [
    'SQLite',
    {
      async fresh() {
        const dir = mkdtempSync(path.join(tmpdir(), 'lachan-store-'));
        dirs.push(dir);
        return { open: async () => openSqliteStore({ dataDir: dir, writerThread: false }) };
      },
    },
  ],
  [
    'PostgreSQL',
    {
      async fresh() {
        const url = await postgres.createDatabase();
        return { open: () => openPostgresStore({ url }) };
      },
    },
  ],
];

// 23:59:59.999 on 31 October 2026 in Vietnam: a millisecond later is another day and month.
const BEFORE_MIDNIGHT_VN = Date.UTC(2026, 9, 31, 16, 59, 59, 999);

function varied(count: number, seed: number): WireEvent[] {
  return Array.from({ length: count }, (_, i) =>
    wireEvent({
      time: BEFORE_MIDNIGHT_VN + ((i * 7 + seed) % 3 === 0 ? 1 : -((i * 7919 + seed) % (40 * 86_400_000))),
      host: `h${(i * 31 + seed) % 17}.example.vn`,
      profile: ['mam-non', 'tieu-hoc', 'thcs', 'khong-ro'][(i + seed) % 4]!,
      category: i % 5 === 0 ? null : ['gambling', 'adult', 'moi-la'][i % 3]!,
    }),
  );
}

async function allEvents(store: CentralStore): Promise<CentralEvent[]> {
  const events: CentralEvent[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.queryEvents({}, { limit: 97, ...(cursor !== undefined ? { cursor } : {}) });
    events.push(...page.events);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return events;
}

function tally<K>(items: readonly K[]): Map<K, number> {
  const counts = new Map<K, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return counts;
}

/** The statistics of days [fromDay, toDay] (at most a month) recounted from the raw events. */
function recount(
  events: readonly CentralEvent[],
  fromDay: string,
  toDay: string,
): Pick<Stats, 'total' | 'byCategoryDay' | 'bySchool'> & { hosts: Map<string, number> } {
  const inRange = events.filter((e) => dayToIso(dayNumber(e.time)) >= fromDay && dayToIso(dayNumber(e.time)) <= toDay);
  const byCategoryDay = [...tally(inRange.map((e) => `${dayToIso(dayNumber(e.time))}|${e.category ?? ''}`))]
    .map(([key, count]) => ({ day: key.split('|')[0]!, category: key.split('|')[1] || null, count }))
    .sort((a, b) => (a.day === b.day ? (a.category ?? '').localeCompare(b.category ?? '') : a.day.localeCompare(b.day)));
  const bySchool = [...tally(inRange.map((e) => e.school))].map(([school, count]) => ({ school, count }));
  return { total: inRange.length, byCategoryDay, bySchool: bySchool as Stats['bySchool'], hosts: tally(inRange.map((e) => `${e.host}|${e.category ?? ''}`)) };
}

async function expectStatsEqualRecount(store: CentralStore, fromDay: string, toDay: string): Promise<void> {
  const events = await allEvents(store);
  const expected = recount(events, fromDay, toDay);
  const stats = await store.stats({ fromDay, toDay, topHosts: 1000 });
  expect(stats.pendingRollup).toBe(0);
  expect(stats.total).toBe(expected.total);
  expect(stats.byCategoryDay).toEqual(expected.byCategoryDay);
  expect(new Map(stats.bySchool.map((s) => [s.school, s.count]))).toEqual(new Map(expected.bySchool.map((s) => [s.school, s.count])));
  expect(new Map(stats.topHosts.map((h) => [`${h.host}|${h.category ?? ''}`, h.count]))).toEqual(expected.hosts);
}

describe.each(backends)('collector store on %s', (_name, backend) => {
  it('stores each event once per (school, id), and its statistics equal a recount of the raw events', async () => {
    const location = await backend.fresh();
    const store = await location.open();
    try {
      const a = await store.addSchool('TH Trạm Tấu');
      const b = await store.addSchool('THCS Bản Mù');
      const first = varied(300, 1);
      expect(await store.ingest(a.id, first, Date.now())).toMatchObject({ stored: 300, duplicates: 0 });
      // The same ids from another school are that school's own events.
      expect(await store.ingest(b.id, first.slice(0, 100), Date.now())).toMatchObject({ stored: 100, duplicates: 0 });
      const resent = [...first.slice(0, 50), ...varied(10, 3)];
      expect(await store.ingest(a.id, resent, Date.now())).toEqual({ acked: resent.map((e) => e.id), stored: 10, duplicates: 50 });
      // An event sent twice in one batch is stored once.
      const twice = varied(1, 4);
      expect(await store.ingest(b.id, [twice[0]!, twice[0]!], Date.now())).toMatchObject({ stored: 1, duplicates: 1 });

      const events = await allEvents(store);
      expect(events).toHaveLength(411);
      expect(new Set(events.map((e) => `${e.school} ${e.id}`)).size).toBe(411);
      await expectStatsEqualRecount(store, '2026-10-15', '2026-11-01');
      await expectStatsEqualRecount(store, '2026-11-01', '2026-11-01');
      // A whole month inside a range of a month or less: read from the monthly roll-up, still exact.
      await expectStatsEqualRecount(store, '2026-10-01', '2026-10-31');
      await expectStatsEqualRecount(store, '2026-10-31', '2026-11-30');
      expect((await store.stats({ fromDay: '2026-10-15', toDay: '2026-11-01' })).bySchool.map((s) => s.name).sort()).toEqual(['TH Trạm Tấu', 'THCS Bản Mù']);
    } finally {
      await store.close();
    }
  }, 60_000);

  it("raises a visit's count when its event comes again with more requests, without counting the event again", async () => {
    const store = await (await backend.fresh()).open();
    try {
      const a = await store.addSchool('TH Pá Lau');
      const event = wireEvent({ time: BEFORE_MIDNIGHT_VN });
      await store.ingest(a.id, [event], Date.now());
      expect(await store.ingest(a.id, [{ ...event, count: 4 }], Date.now())).toMatchObject({ stored: 0, duplicates: 1 });
      expect(await store.ingest(a.id, [{ ...event, count: 2 }], Date.now())).toMatchObject({ stored: 0, duplicates: 1 });
      expect((await allEvents(store)).map((e) => e.count)).toEqual([4]);
      expect((await store.stats({ fromDay: '2026-10-31', toDay: '2026-10-31' })).total).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('expires raw events before a time and keeps their counts in the statistics', async () => {
    const store = await (await backend.fresh()).open();
    try {
      const a = await store.addSchool('TH Bản Công');
      const old = wireEvent({ time: BEFORE_MIDNIGHT_VN - 60 * 86_400_000 });
      const recent = [wireEvent({ time: BEFORE_MIDNIGHT_VN }), wireEvent({ time: BEFORE_MIDNIGHT_VN - 86_400_000 })];
      await store.ingest(a.id, [old, ...recent], Date.now());
      expect(await store.expire(BEFORE_MIDNIGHT_VN - 30 * 86_400_000)).toBe(1);
      expect((await allEvents(store)).map((e) => e.id).sort()).toEqual(recent.map((e) => e.id).sort());
      const oldDay = dayToIso(dayNumber(old.time));
      expect((await store.stats({ fromDay: oldDay, toDay: oldDay })).total).toBe(1);
      // Sent again after expiry (a gateway restored from a backup): the store takes it as it comes.
      await store.ingest(a.id, [wireEvent({ time: BEFORE_MIDNIGHT_VN - 59 * 86_400_000 })], Date.now());
      expect(await allEvents(store)).toHaveLength(3);
    } finally {
      await store.close();
    }
  });

  it('revokes a school: its token stops working', async () => {
    const store = await (await backend.fresh()).open();
    try {
      const a = await store.addSchool('TH Xà Hồ');
      expect((await store.authenticate(a.token))?.id).toBe(a.id);
      expect(await store.authenticate(`${a.token.slice(0, -2)}xx`)).toBeNull();
      expect(await store.revokeSchool(a.id)).toBe(true);
      expect(await store.revokeSchool('KHONGCO')).toBe(false);
      expect(await store.authenticate(a.token)).toBeNull();
      expect((await store.listSchools()).map((s) => s.revokedAt !== null)).toEqual([true]);
    } finally {
      await store.close();
    }
  });
});

describe('collector store on PostgreSQL, retention', () => {
  it('drops the month partitions wholly past retention and keeps their counts', async () => {
    const location = await backends[1]![1].fresh();
    const store = (await location.open()) as PostgresCentralStore;
    try {
      const a = await store.addSchool('TH Khau Phạ');
      const months = [0, 1, 2, 3].map((back) => wireEvent({ time: Date.UTC(2026, 9 - back, 15) }));
      await store.ingest(a.id, months, Date.now());
      const partitions = async () =>
        (
          await store.pool.query<{ name: string }>(
            "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass ORDER BY 1",
          )
        ).rows.map((r) => r.name);
      expect(await partitions()).toHaveLength(4);
      // Before 1 September 2026 (Vietnam time): July and June go whole, and their counts stay.
      expect(await store.expire(Date.UTC(2026, 8, 1) - 7 * 3_600_000)).toBe(2);
      expect(await partitions()).toHaveLength(2);
      expect((await store.stats({ fromDay: '2026-06-01', toDay: '2026-10-31' })).total).toBe(4);
      // An event of a dropped month sent late: its partition is made again.
      expect(await store.ingest(a.id, [wireEvent({ time: Date.UTC(2026, 6, 20) })], Date.now())).toMatchObject({ stored: 1 });
      expect(await partitions()).toHaveLength(3);
    } finally {
      await store.close();
    }
  });
});

describe('collector store on PostgreSQL, several processes', () => {
  it('stores and counts each event once when two collectors open a new database together and take the same batches at once', async () => {
    const location = await backends[1]![1].fresh();
    // Both apply the schema at once: the advisory lock lets one do it.
    const [one, two] = (await Promise.all([location.open(), location.open()])) as PostgresCentralStore[];
    try {
      expect((await one.pool.query('SELECT version FROM lachan_schema ORDER BY version')).rows).toEqual(PG_MIGRATIONS.map((_, i) => ({ version: i + 1 })));
      const a = await one.addSchool('TH Trạm Tấu');
      const batches = Array.from({ length: 8 }, (_, i) => varied(250, i));
      // Every batch sent to both, at once, in opposite orders.
      const results = await Promise.all([
        ...batches.map((batch) => one.ingest(a.id, batch, Date.now())),
        ...[...batches].reverse().map((batch) => two.ingest(a.id, [...batch].reverse(), Date.now())),
      ]);
      expect(results.reduce((sum, r) => sum + r.stored, 0)).toBe(2000);
      expect(await allEvents(two)).toHaveLength(2000);
      await expectStatsEqualRecount(one, '2026-10-15', '2026-11-01');
      await expectStatsEqualRecount(two, '2026-09-25', '2026-10-20');
    } finally {
      await Promise.all([one!.close(), two!.close()]);
    }
  }, 60_000);
});

describe('collector database on PostgreSQL, upgraded in place', () => {
  it('opens a database made by the release with alerts (schema 2) and adds the later steps', async () => {
    const url = await postgres.createDatabase();
    // What that release applied: the events step, then the alerts step.
    const released = [PG_MIGRATIONS[0]!, ...ALERT_PG_MIGRATIONS];
    const pool = openPool(url, 1);
    try {
      await migratePostgres(pool, released, 'the collector database');
    } finally {
      await pool.end();
    }
    const store = await openPostgresStore({ url });
    try {
      expect((await store.pool.query('SELECT max(version) AS version FROM lachan_schema')).rows[0]).toEqual({ version: PG_MIGRATIONS.length });
      const school = await store.addSchool('TH Bản Mù');
      await store.ingest(school.id, varied(3, 1), Date.now());
      expect(await allEvents(store)).toHaveLength(3);
      // The later steps' tables are there: accounts (district step) and the shared admin token.
      expect(store.accounts.users()).toEqual([]);
      expect((await store.pool.query('SELECT count(*)::int AS n FROM admin_token')).rows[0]).toEqual({ n: 0 });
    } finally {
      await store.close();
    }
  }, 60_000);
});
