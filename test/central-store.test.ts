import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dayNumber, dayToIso } from '../src/central/days.js';
import { migrate } from '../src/storage/sqlite.js';
import * as fromSources from '../src/central/sqlite-store.js';
import { schoolScopedMigration } from '../src/central/event-writer.js';
import type { WireEvent } from '../src/events/wire.js';
import { lachan, wireEvent } from './harness/index.js';

/**
 * The collector's store on real SQLite files, both ways it writes: on its own connection
 * (the TypeScript sources) and on the writer thread (the compiled build, as `lachan
 * central serve` runs). Events are acknowledged from the inbox and moved into `events`
 * later with their roll-up counts: whatever the path, every statistic must equal a
 * recount from the raw events.
 */
const built = path.resolve(import.meta.dirname, '../dist/src/central/sqlite-store.js');
const fromBuild = existsSync(built) ? ((await import(built)) as typeof fromSources) : null;
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'lachan-central-store-'));
  dirs.push(dir);
  return dir;
}

type Store = ReturnType<typeof fromSources.openSqliteStore>;

/** Runs `body` on a store in a fresh folder, closes the store, and returns the folder. */
async function onFreshStore(module: typeof fromSources, body: (store: Store, dir: string) => Promise<void>): Promise<string> {
  const dir = dataDir();
  const store = module.openSqliteStore({ dataDir: dir });
  try {
    await body(store, dir);
  } finally {
    await store.close();
  }
  return dir;
}

/** Every roll-up table must hold what a GROUP BY over the raw events counts afresh. */
function expectRollupsEqualRecount(module: typeof fromSources, dir: string): void {
  const db = new Database(path.join(dir, 'central.db'), { readonly: true });
  try {
    for (const r of module.ROLLUPS) {
      const order = r.keys.join(', ');
      const keys = r.keys.map((k) => `${module.KEY_SQL[k]} AS ${k}`).join(', ');
      const stored = db.prepare(`SELECT ${order}, n FROM ${r.table} ORDER BY ${order}`).all();
      const recounted = db.prepare(`SELECT ${keys}, count(*) AS n FROM events GROUP BY ${order} ORDER BY ${order}`).all();
      expect({ table: r.table, rows: stored }).toEqual({ table: r.table, rows: recounted });
    }
  } finally {
    db.close();
  }
}

/** Writes an event row straight into `table`, as a bulk load or a crashed run would leave it. */
function storeRaw(file: string, table: 'events' | 'events_inbox', school: string, events: readonly WireEvent[]): void {
  const db = new Database(file);
  try {
    const insert = db.prepare(
      `INSERT INTO ${table} (id, school, time, profile, category, reason, rule, source, host, path, method, client, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const e of events) insert.run(e.id, school, e.time, e.profile, e.category, e.reason, e.rule, e.source, e.host, e.path, e.method, e.client, Date.now());
  } finally {
    db.close();
  }
}

/** The Vietnam-time day of `time`, as the statistics API takes it. */
function dayOf(time: number): string {
  return dayToIso(dayNumber(time));
}

// 2026-10-31 16:59:59.999 UTC is 23:59:59.999 on 31 October in Vietnam; a millisecond
// later it is 1 November there: another day and another month for the roll-ups.
const BEFORE_MIDNIGHT_VN = Date.UTC(2026, 9, 31, 16, 59, 59, 999);

function varied(count: number, seed: number): WireEvent[] {
  return Array.from({ length: count }, (_, i) =>
    wireEvent({
      time: BEFORE_MIDNIGHT_VN + ((i * 7 + seed) % 3 === 0 ? 1 : -((i * 7919 + seed) % 86_400_000)),
      host: `h${(i * 31 + seed) % 17}.example.vn`,
      profile: ['mam-non', 'tieu-hoc', 'thcs', 'khong-ro'][(i + seed) % 4]!,
      category: i % 5 === 0 ? null : ['gambling', 'adult', 'moi-la'][i % 3]!,
    }),
  );
}

const modes: [string, typeof fromSources | null][] = [
  ['on its own connection', fromSources],
  ['on the writer thread', fromBuild],
];

describe('collector store upgrade', () => {
  it('keys a store from before (school, id) idempotency anew, keeping every event, its seq, the counter and the roll-ups', async () => {
    const dir = dataDir();
    const file = path.join(dir, 'central.db');
    const old = new Database(file);
    // Every step before the one that keys events by (school, id).
    const keyedBySchool = fromSources.CENTRAL_MIGRATIONS.indexOf(schoolScopedMigration(fromSources.EVENT_INDEXES));
    expect(keyedBySchool).toBeGreaterThan(0);
    migrate(old, fromSources.CENTRAL_MIGRATIONS.slice(0, keyedBySchool), file);
    old.close();
    const before = varied(30, 9);
    storeRaw(file, 'events', 'SCHOOLA', before.slice(0, 20));
    storeRaw(file, 'events_inbox', 'SCHOOLA', before.slice(20));
    const raw = new Database(file);
    raw.prepare("UPDATE sqlite_sequence SET seq = 1000 WHERE name = 'events'").run();
    raw.close();

    await onFreshStoreAt(dir, async (store) => {
      // The same ids from another school are new; from the same school, duplicates.
      expect(await store.ingest('SCHOOLB', before.slice(0, 25), Date.now())).toMatchObject({ stored: 25, duplicates: 0 });
      expect(await store.ingest('SCHOOLA', before.slice(15, 25), Date.now())).toMatchObject({ stored: 0, duplicates: 10 });
      const page = await store.queryEvents({}, { limit: 10_000 });
      expect(page.events).toHaveLength(55);
      expect(page.events.every((e) => e.count === 1)).toBe(true);
    });
    const db = new Database(file, { readonly: true });
    // New rows continue after the old counter (a watermark on seq must never see a seq reused).
    expect(db.prepare("SELECT min(seq) FROM events WHERE school = 'SCHOOLB'").pluck().get()).toBeGreaterThan(1000);
    db.close();
    expectRollupsEqualRecount(fromSources, dir);
  });
});

async function onFreshStoreAt(dir: string, body: (store: Store) => Promise<void>): Promise<void> {
  const store = fromSources.openSqliteStore({ dataDir: dir, writerThread: false });
  try {
    await body(store);
  } finally {
    await store.close();
  }
}

describe.each(modes)('collector store, writing %s', (_mode, module) => {
  it.skipIf(module === null)('stores each event once, and its statistics equal a recount of the raw events', async () => {
    const dir = await onFreshStore(module!, async (store) => {
      const a = await store.addSchool('TH Trạm Tấu');
      const b = await store.addSchool('THCS Bản Mù');
      const first = varied(300, 1);
      const second = varied(200, 2);
      expect(await store.ingest(a.id, first, Date.now())).toMatchObject({ stored: 300, duplicates: 0 });
      expect(await store.ingest(b.id, second, Date.now())).toMatchObject({ stored: 200, duplicates: 0 });
      // Resent while still in the inbox: acknowledged, not stored again.
      const again = await store.ingest(a.id, first.slice(0, 50), Date.now());
      expect(again).toEqual({ acked: first.slice(0, 50).map((e) => e.id), stored: 0, duplicates: 50 });

      // The dashboard's query brings the inbox in.
      const stats = await store.stats({ fromDay: '2026-10-30', toDay: '2026-11-01' });
      expect(stats.pendingRollup).toBe(0);
      expect(stats.total).toBe(500);
      // Resent after the move into `events`: still not stored again.
      expect(await store.ingest(b.id, [...second.slice(0, 20), ...varied(10, 3)], Date.now())).toMatchObject({ stored: 10, duplicates: 20 });
      const page = await store.queryEvents({}, { limit: 10_000 });
      expect(page.events).toHaveLength(510);
      expect(new Set(page.events.map((e) => e.id)).size).toBe(510);
    });
    expectRollupsEqualRecount(module!, dir);
  });

  it.skipIf(module === null)('counts in SQL what it cannot pack: more distinct profiles in one drain than the packed key holds', async () => {
    const dir = await onFreshStore(module!, async (store) => {
      const a = await store.addSchool('TH Phình Hồ');
      const events = Array.from({ length: 150 }, (_, i) => wireEvent({ profile: `ho-so-${i}`, host: `h${i % 9}.example.vn` }));
      expect(await store.ingest(a.id, events, Date.now())).toMatchObject({ stored: 150 });
      const today = dayOf(Date.now());
      expect((await store.stats({ fromDay: today, toDay: today })).total).toBe(150);
    });
    expectRollupsEqualRecount(module!, dir);
  });

  it.skipIf(module === null)('keeps counting after retention removes the newest-stored event (an old one sent late)', async () => {
    await onFreshStore(module!, async (store) => {
      const a = await store.addSchool('TH Bản Công');
      const now = Date.now();
      const today = dayOf(now);
      expect(await store.ingest(a.id, [wireEvent({ time: now }), wireEvent({ time: now })], now)).toMatchObject({ stored: 2 });
      await store.stats({ fromDay: today, toDay: today });
      // A gateway back after a long time offline sends an event from 500 days ago: stored last, expired first.
      expect(await store.ingest(a.id, [wireEvent({ time: now - 500 * 86_400_000 })], now)).toMatchObject({ stored: 1 });
      await store.stats({ fromDay: today, toDay: today });
      expect(await store.expire(now - 400 * 86_400_000)).toBe(1);
      expect((await store.stats({ fromDay: today, toDay: today })).pendingRollup).toBe(0);
      expect(await store.ingest(a.id, [wireEvent({ time: now }), wireEvent({ time: now }), wireEvent({ time: now })], now)).toMatchObject({ stored: 3 });
      const stats = await store.stats({ fromDay: today, toDay: today });
      expect(stats.pendingRollup).toBe(0);
      expect(stats.total).toBe(5);
    });
  });

  it.skipIf(module === null)('counts an event once when a bulk load put it in the store while it waited in the inbox', async () => {
    const dir = await onFreshStore(module!, async (store, folder) => {
      const a = await store.addSchool('TH Pá Lau');
      const events = varied(12, 7);
      expect(await store.ingest(a.id, events, Date.now())).toMatchObject({ stored: 12 });
      storeRaw(path.join(folder, 'central.db'), 'events', a.id, events.slice(0, 1));
      store.rollUp();
      expect((await store.stats({ fromDay: '2026-10-30', toDay: '2026-11-01' })).total).toBe(12);
    });
    expectRollupsEqualRecount(module!, dir);
  });

  it.skipIf(module === null)('after a crash, events acknowledged into the inbox are moved and counted once at the next start', async () => {
    let school = '';
    const dir = await onFreshStore(module!, async (store) => {
      school = (await store.addSchool('TH Xà Hồ')).id;
      expect(await store.ingest(school, varied(40, 4), Date.now())).toMatchObject({ stored: 40 });
    });
    // What a run that died after acknowledging leaves: rows in the inbox only.
    const leftovers = varied(25, 5);
    storeRaw(path.join(dir, 'central.db'), 'events_inbox', school, leftovers);

    const reopened = module!.openSqliteStore({ dataDir: dir });
    try {
      // Resending one of them is still a duplicate.
      expect(await reopened.ingest(school, [leftovers[0]!, ...varied(5, 6)], Date.now())).toMatchObject({ stored: 5, duplicates: 1 });
      const stats = await reopened.stats({ fromDay: '2026-10-30', toDay: '2026-11-01' });
      expect(stats.total).toBe(70);
      expect(stats.pendingRollup).toBe(0);
    } finally {
      await reopened.close();
    }
    expectRollupsEqualRecount(module!, dir);
  });

  it.skipIf(module === null)(
    'after a crash that left a burst in the inbox, `lachan central events` lists every acknowledged event',
    async () => {
      let school = '';
      const dir = await onFreshStore(module!, async (store) => {
        school = (await store.addSchool('TH Bản Công')).id;
      });
      // More than a serving collector's query moves at once (it leaves a burst to its
      // background); a command that answers once has no background to leave it to.
      const leftovers = varied(6_000, 7);
      storeRaw(path.join(dir, 'central.db'), 'events_inbox', school, leftovers);
      const listed = lachan(['central', 'events', '--data', dir, '--json']);
      expect(listed.code).toBe(0);
      const ids = listed.stdout
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => (JSON.parse(line) as { id: string }).id);
      expect(ids.sort()).toEqual(leftovers.map((e) => e.id).sort());
      expectRollupsEqualRecount(module!, dir);
    },
    60_000,
  );

  /**
   * A store holding 40 acknowledged events, and a second connection to its file, as
   * another process would open it; afterwards, the store must answer with all 40.
   */
  async function withSecondConnection(seed: number, body: (store: Store, other: Database.Database) => Promise<void>): Promise<void> {
    await onFreshStore(module!, async (store, dir) => {
      const school = await store.addSchool('TH Trạm Tấu');
      await store.ingest(school.id, varied(40, seed), Date.now());
      const other = new Database(path.join(dir, 'central.db'));
      try {
        await body(store, other);
      } finally {
        other.close();
      }
      expect((await store.queryEvents({}, { limit: 100 })).events).toHaveLength(40);
    });
  }

  it.skipIf(module === null)(
    'answers from what is stored while another connection holds the write lock',
    async () => {
      await withSecondConnection(4, async (store, other) => {
        other.exec('BEGIN IMMEDIATE');
        // The inbox cannot move while the lock is held (SQLITE_BUSY after the busy
        // timeout): the query answers from `events` as it stands rather than failing.
        await expect(store.queryEvents({}, { limit: 100 })).resolves.toMatchObject({ events: expect.any(Array) });
        other.exec('ROLLBACK');
      });
    },
    20_000,
  );

  it.skipIf(module === null)('lets a store error other than a busy lock reach the query', async () => {
    await withSecondConnection(5, async (store, other) => {
      // A roll-up table gone (as a damaged or hand-edited file would have it): moving
      // the inbox fails, and the query must say so, not answer from half the data.
      other.exec('ALTER TABLE r_category_day RENAME TO r_category_day_away');
      await expect(store.queryEvents({}, { limit: 100 })).rejects.toThrow(/no such table/);
      other.exec('ALTER TABLE r_category_day_away RENAME TO r_category_day');
    });
  });
});
