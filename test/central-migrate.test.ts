import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListsMirror } from '../src/central/lists-mirror.js';
import { PgListsBacking } from '../src/central/lists-mirror-pg.js';
import { openPostgresStore } from '../src/central/pg-store.js';
import { openSqliteStore } from '../src/central/sqlite-store.js';
import type { CentralStore, StatsFilter } from '../src/central/store.js';
import type { WireEvent } from '../src/events/wire.js';
import { listVersionOf } from '../src/lists/entries.js';
import { applyVersion, emptyState, readVersionText } from '../src/lists/store.js';
import { lachanAsync, type PostgresServer, startPostgres, wireEvent } from './harness/index.js';

/**
 * `lachan central migrate` moves a district from its SQLite file to PostgreSQL: the same
 * schools (their tokens still valid), the same events, the same statistics, including
 * the counts of events retention had already removed and of events still in the inbox,
 * and the lists mirror (versions kept, what each school holds) the SQLite collector kept
 * in its data folder.
 */
let postgres: PostgresServer;
const dataDir = mkdtempSync(path.join(tmpdir(), 'lachan-migrate-'));
beforeAll(async () => {
  postgres = await startPostgres();
}, 120_000);
afterAll(async () => {
  await postgres?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const NOW = Date.UTC(2026, 10, 20, 3, 0, 0);
const DAY = 86_400_000;
/** Never fetched: the mirror checked it just now, and refreshes daily. */
const LIST_URL = 'http://unused.invalid/hosts';
const LIST_CHECKED = Date.now();

function spread(count: number, seed: number): WireEvent[] {
  return Array.from({ length: count }, (_, i) =>
    wireEvent({
      time: NOW - ((i * 37 + seed * 11) % 90) * DAY - ((i * 7919) % DAY),
      host: `h${(i * 31 + seed) % 13}.example.vn`,
      profile: ['tieu-hoc', 'thcs'][(i + seed) % 2]!,
      category: i % 4 === 0 ? null : ['gambling', 'adult'][i % 2]!,
      count: 1 + (i % 3),
    }),
  );
}

async function answers(store: CentralStore): Promise<unknown> {
  const filters: StatsFilter[] = [
    { fromDay: '2026-11-01', toDay: '2026-11-20' },
    { fromDay: '2026-08-01', toDay: '2026-11-20' },
    { fromDay: '2026-11-01', toDay: '2026-11-20', category: 'gambling' },
  ];
  const stats = await Promise.all(filters.map((f) => store.stats({ ...f, topHosts: 1000 })));
  const events = (await store.queryEvents({}, { limit: 10_000 })).events.map(({ receivedAt: _, ...e }) => e);
  const schools = await store.listSchools();
  return { stats, events: events.sort((a, b) => `${a.school}${a.id}`.localeCompare(`${b.school}${b.id}`)), schools };
}

describe('lachan central migrate', () => {
  it('moves schools, events, statistics and the lists mirror into PostgreSQL and verifies the counts', async () => {
    const sqlite = openSqliteStore({ dataDir, writerThread: false });
    const a = await sqlite.addSchool('TH Trạm Tấu');
    const b = await sqlite.addSchool('THCS Bản Mù');
    await sqlite.ingest(a.id, spread(400, 1), NOW);
    await sqlite.ingest(b.id, spread(300, 2), NOW);
    await sqlite.stats({ fromDay: '2026-11-01', toDay: '2026-11-20' });
    // The district's own tables: an account, a policy rule (a version), the signing key.
    await sqlite.accounts.addUser('cli:test', 'quantri', 'admin', null, 'mật-khẩu-đủ-dài');
    const district = sqlite.openDistrict(dataDir, (...entry) => sqlite.accounts.audit(...entry));
    district.policy.addRule('cli:test', {
      action: 'block',
      kind: 'domain',
      value: 'lode.example',
      profile: null,
      category: 'gambling',
      school: null,
      note: '',
    });
    const fingerprint = district.signer.fingerprint;
    // A safeguarding alert and who hears of it: a counsellor's open case moves with the district.
    await sqlite.alerts.ingest(
      a.id,
      [
        {
          ref: 'AL-MIGRATE-0001',
          time: NOW - DAY,
          lastTime: NOW - DAY,
          severity: 'high',
          category: 'self-harm',
          signal: 'search',
          trigger: 'cách tự tử',
          host: 'www.google.com',
          device: '3f9a0c1d2e3f4a5b',
          profile: 'thcs',
          count: 2,
        },
      ],
      NOW,
    );
    await sqlite.alerts.setContacts({ school: a.id, emails: ['tuvan@truong.edu.vn'], webhook: null });
    // Raw events older than 60 days go; their counts stay in the roll-ups.
    expect(await sqlite.expire(NOW - 60 * DAY)).toBeGreaterThan(0);
    await sqlite.close();
    // What a collector that died after acknowledging leaves: rows in the inbox only.
    const raw = new Database(path.join(dataDir, 'central.db'));
    const insert = raw.prepare(
      'INSERT INTO events_inbox (id, school, time, profile, category, reason, rule, source, host, path, method, client, received_at, count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)',
    );
    // One as a collector from before kept it, with NUL in its text (PostgreSQL's text refuses NUL).
    const inbox = spread(20, 3).map((e, i) => (i === 0 ? { ...e, host: 'nul\u0000.example.vn', rule: 'cũ\u0000luật' } : e));
    for (const e of inbox) insert.run(e.id, b.id, e.time, e.profile, e.category, e.reason, e.rule, e.source, e.host, e.path, e.method, e.client, NOW);
    raw.close();
    // The lists mirror kept under the data folder: two versions of a list (the school
    // holds the older one, so it is owed a delta) and what the school last reported.
    const older = listVersionOf(['lode.example', 'xoso.example']);
    const newer = listVersionOf(['lode.example', 'xoso.example', 'cado.example']);
    const first = await applyVersion(dataDir, emptyState('hostsvn-gambling'), older, { url: LIST_URL }, 30, LIST_CHECKED - 3_600_000);
    await applyVersion(dataDir, first, newer, {}, 30, LIST_CHECKED);
    writeFileSync(
      path.join(dataDir, 'lists-schools.json'),
      JSON.stringify({ [a.id]: { 'hostsvn-gambling': { version: older.version, seenAt: LIST_CHECKED } } }),
    );

    const url = await postgres.createDatabase();
    const moved = await lachanAsync(['central', 'migrate', '--from', `sqlite:${dataDir}`, '--to', url]);
    expect(moved.stderr).toBe('');
    expect(moved.code).toBe(0);
    expect(moved.stdout).toMatch(/^events: \d+ → \d+$/m);
    expect(moved.stdout).toMatch(/^users: 1 → 1$/m);
    expect(moved.stdout).toMatch(/^signing_key: 1 → 1$/m);
    expect(moved.stdout).toMatch(/^alerts: 1 → 1$/m);
    expect(moved.stdout).toMatch(/^alert_contacts: 1 → 1$/m);
    expect(moved.stdout).toMatch(/^list_states: 1 → 1$/m);
    expect(moved.stdout).toMatch(/^list_versions: 2 → 2$/m);
    expect(moved.stdout).toMatch(/^list_reports: 1 → 1$/m);
    expect(moved.stdout).toContain('khớp');

    const before = openSqliteStore({ dataDir, writerThread: false });
    const after = await openPostgresStore({ url });
    const listsFile = path.join(dataDir, 'lists.yaml');
    writeFileSync(listsFile, `lists:\n  - name: hostsvn-gambling\n    category: gambling\n    url: ${LIST_URL}\n    format: hosts\n    refresh: 1d\n`);
    const quiet = { debug: () => {}, info: () => {}, warn: () => {} };
    const filesMirror = new ListsMirror({ dataDir, listsFile, logger: quiet });
    const pgBacking = new PgListsBacking({ pool: after.pool, dataDir, listsFile, logger: quiet });
    const pgMirror = new ListsMirror({ dataDir, listsFile, logger: quiet, backing: pgBacking });
    try {
      // Every process on PostgreSQL serves the versions the SQLite collector kept, and knows what each school holds.
      expect(await pgMirror.overview([a.id, b.id], LIST_CHECKED)).toEqual(await filesMirror.overview([a.id, b.id], LIST_CHECKED));
      expect((await pgMirror.overview([a.id], LIST_CHECKED)).schools.get(a.id)).toEqual([
        { list: 'hostsvn-gambling', version: older.version, seenAt: LIST_CHECKED, stale: false },
      ]);
      expect(await pgBacking.versionText('hostsvn-gambling', older.version)).toBe(await readVersionText(dataDir, 'hostsvn-gambling', older.version));
      expect(await pgBacking.versionText('hostsvn-gambling', newer.version)).toBe(newer.text);

      // The same, with each NUL the SQLite store held as U+FFFD, as the collector now stores it on either store.
      const sqliteAnswers = JSON.stringify(await answers(before)).replaceAll('\\u0000', '\uFFFD');
      expect(sqliteAnswers).toContain('nul\uFFFD.example.vn');
      expect(await answers(after)).toEqual(JSON.parse(sqliteAnswers));
      expect((await after.authenticate(a.token))?.id).toBe(a.id);
      expect(after.accounts.user('quantri')?.role).toBe('admin');
      expect(await after.alerts.list({ school: a.id, limit: 10 })).toEqual(await before.alerts.list({ school: a.id, limit: 10 }));
      expect((await after.alerts.list({ school: a.id, limit: 10 })).map((x) => x.ref)).toEqual(['AL-MIGRATE-0001']);
      expect(await after.alerts.contacts(a.id)).toEqual({ school: a.id, emails: ['tuvan@truong.edu.vn'], webhook: null });
      const moved = after.openDistrict(null, () => {});
      expect(moved.signer.fingerprint).toBe(fingerprint);
      expect(moved.policy.version()).toBe(1);
      expect(moved.policy.rules().map((r) => r.value)).toEqual(['lode.example']);
      // New ids continue after the copied ones.
      expect(
        moved.policy.addRule('cli:test', {
          action: 'block',
          kind: 'domain',
          value: 'khac.example',
          profile: null,
          category: 'gambling',
          school: null,
          note: '',
        }).rule.id,
      ).toBe(2);
      expect(moved.policy.version()).toBe(2);
    } finally {
      filesMirror.stop();
      pgMirror.stop();
      await pgBacking.refreshNow();
      await before.close();
      await after.close();
    }

    // Into a database that already holds a district: refused, nothing written.
    const again = await lachanAsync(['central', 'migrate', '--from', `sqlite:${dataDir}`, '--to', url]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('đã có');
  }, 120_000);

  it('merges roll-up keys that differ by a NUL and its U+FFFD alone, and copies a review note with a NUL', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lachan-migrate-nul-'));
    try {
      const store = openSqliteStore({ dataDir: dir, writerThread: false });
      const school = await store.addSchool('Trường có NUL');
      await store.close();
      // A collector from before kept a profile with NUL, and from today the same as U+FFFD:
      // side by side in key order, so in one chunk of the copy.
      const raw = new Database(path.join(dir, 'central.db'));
      const day = Math.floor(NOW / DAY);
      const insert = raw.prepare('INSERT INTO r_school_category_day (school, day, profile, category, n) VALUES (?, ?, ?, ?, ?)');
      insert.run(school.id, day, 'tieu-hoc\u0000', 'gambling', 3);
      insert.run(school.id, day, 'tieu-hoc\uFFFD', 'gambling', 4);
      raw
        .prepare(
          "INSERT INTO review_requests (school, id, kind, time, received_at, host, path, category, profile, note, client) VALUES (?, ?, 'review', ?, ?, ?, '/', NULL, ?, ?, ?)",
        )
        .run(school.id, 'R00000000000000000001', NOW, NOW, 'a.example', 'tieu-hoc', 'xin m\u0000ở', 'c0ffee00');
      raw.close();

      const url = await postgres.createDatabase();
      const moved = await lachanAsync(['central', 'migrate', '--from', `sqlite:${dir}`, '--to', url]);
      expect(moved.stderr).toBe('');
      expect(moved.code).toBe(0);
      const after = await openPostgresStore({ url });
      try {
        const rows = await after.pool.query('SELECT profile, n FROM r_school_category_day');
        expect(rows.rows.map((r) => [r.profile, Number(r.n)])).toEqual([['tieu-hoc\uFFFD', 7]]);
        const notes = await after.pool.query('SELECT note FROM review_requests');
        expect(notes.rows.map((r) => r.note)).toEqual(['xin m\uFFFDở']);
      } finally {
        await after.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
