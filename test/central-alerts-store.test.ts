import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WireAlert } from '../src/central/alerts.js';
import { openPostgresStore } from '../src/central/pg-store.js';
import { CENTRAL_MIGRATIONS, openSqliteStore } from '../src/central/sqlite-store.js';
import type { CentralStore } from '../src/central/store.js';
import { buildReportDocument } from '../src/report/document.js';
import { buildYearlyReport } from '../src/report/yearly.js';
import { DEFAULT_ORGANISATION } from '../src/rules/organisation.js';
import { type PostgresServer, startPostgres } from './harness/index.js';

/**
 * The alert store's contract (docs/safeguarding.md §1, §4, §6), run against both
 * backends: SQLite (the embedded default) and a real PostgreSQL 15.
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

const backends: [string, () => Promise<{ open: () => Promise<CentralStore> }>][] = [
  [
    'SQLite',
    async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'lachan-alert-store-'));
      dirs.push(dir);
      return { open: async () => openSqliteStore({ dataDir: dir, writerThread: false }) };
    },
  ],
  [
    'PostgreSQL',
    async () => {
      const url = await postgres.createDatabase();
      return { open: () => openPostgresStore({ url }) };
    },
  ],
];

// 2026-03-10 09:00 in Vietnam: inside reporting year 2026 wherever the organisation starts its year.
const T0 = Date.UTC(2026, 2, 10, 2, 0, 0);

function alert(overrides: Partial<WireAlert> = {}): WireAlert {
  return {
    ref: 'AL-STORE-0001',
    time: T0,
    lastTime: T0,
    severity: 'low',
    category: 'bullying',
    signal: 'phrase',
    trigger: 'mày xấu lắm',
    host: 'chat.example',
    device: 'aa11bb22cc33dd44',
    profile: 'thcs',
    count: 1,
    ...overrides,
  };
}

describe.each(backends)('the alert store on %s', (_name, fresh) => {
  let store: CentralStore;
  let school: string;
  let other: string;

  beforeAll(async () => {
    store = await (await fresh()).open();
    school = (await store.addSchool('TH Trạm Tấu')).id;
    other = (await store.addSchool('TH Mù Cang Chải')).id;
  }, 60_000);
  afterAll(async () => {
    await store?.close();
  });

  it('inserts, ignores an identical resend, and folds an escalation in', async () => {
    expect((await store.alerts.ingest(school, [alert()], T0)).map((c) => c.outcome)).toEqual(['new']);
    expect((await store.alerts.ingest(school, [alert()], T0 + 1)).map((c) => c.outcome)).toEqual(['unchanged']);
    const [escalated] = await store.alerts.ingest(school, [alert({ count: 4, lastTime: T0 + 60_000, severity: 'high', trigger: 'tao sẽ đánh mày' })], T0 + 2);
    expect(escalated).toMatchObject({ outcome: 'escalated', before: 'low', alert: { severity: 'high', count: 4, trigger: 'tao sẽ đánh mày', status: 'new' } });
    const [late] = await store.alerts.ingest(school, [alert({ count: 2, lastTime: T0 + 30_000, severity: 'medium', trigger: 'cũ' })], T0 + 3);
    expect(late!.outcome).toBe('unchanged');
    const [stored] = await store.alerts.list({ school, limit: 10 });
    expect(stored).toMatchObject({
      school,
      schoolName: 'TH Trạm Tấu',
      severity: 'high',
      count: 4,
      lastTime: T0 + 60_000,
      trigger: 'tao sẽ đánh mày',
      time: T0,
    });
  });

  it('keys on (school, ref), lists newest first, filters by school and status', async () => {
    await store.alerts.ingest(other, [alert({ lastTime: T0 + 120_000, category: 'self-harm', severity: 'critical' })], T0);
    const all = await store.alerts.list({ limit: 10 });
    expect(all.map((a) => a.school)).toEqual([other, school]);
    expect((await store.alerts.list({ school: other, limit: 10 })).map((a) => a.category)).toEqual(['self-harm']);
    expect(await store.alerts.list({ status: 'closed', limit: 10 })).toEqual([]);
  });

  it('closes with a note, and reopens a closed alert that comes back more severe', async () => {
    const changed = await store.alerts.setStatus(school, 'AL-STORE-0001', 'closed', 'Đã trao đổi với giáo viên chủ nhiệm', T0 + 200_000);
    expect(changed).toMatchObject({ before: { status: 'new' }, after: { status: 'closed', note: 'Đã trao đổi với giáo viên chủ nhiệm' } });
    expect(await store.alerts.setStatus(school, 'AL-NO-SUCH', 'closed', null, T0)).toBeNull();
    expect((await store.alerts.ingest(school, [alert({ count: 5, lastTime: T0 + 300_000, severity: 'high' })], T0))[0]!.outcome).toBe('updated');
    expect((await store.alerts.list({ school, limit: 1 }))[0]!.status).toBe('closed');
    const [reopened] = await store.alerts.ingest(school, [alert({ count: 6, lastTime: T0 + 400_000, severity: 'critical' })], T0);
    expect(reopened).toMatchObject({ outcome: 'reopened', alert: { status: 'new', severity: 'critical', note: 'Đã trao đổi với giáo viên chủ nhiệm' } });
  });

  it('stores a batch all or nothing', async () => {
    const before = await store.alerts.list({ limit: 100 });
    // A second school's id that does not fit the column is not possible from the API; a NOT NULL breach is.
    await expect(store.alerts.ingest(school, [alert({ ref: 'AL-ATOMIC-1' }), alert({ ref: 'AL-ATOMIC-2', device: null as never })], T0)).rejects.toThrow();
    expect(await store.alerts.list({ limit: 100 })).toEqual(before);
  });

  it('keeps contacts per school', async () => {
    expect(await store.alerts.contacts(school)).toEqual({ school, emails: [], webhook: null });
    await store.alerts.setContacts({ school, emails: ['tuvan@example.edu.vn'], webhook: 'https://hooks.example/a' });
    expect(await store.alerts.contacts(school)).toEqual({ school, emails: ['tuvan@example.edu.vn'], webhook: 'https://hooks.example/a' });
    expect((await store.alerts.contacts(other)).emails).toEqual([]);
  });

  it('queues a message to each contact with the alert, on a new alert and on reaching high, held while taken', async () => {
    const jobs = async () => store.alerts.claimDeliveries(Number.MAX_SAFE_INTEGER - 1, 0, 100);
    // Whatever earlier tests queued (no contacts then: nothing) is drained first.
    for (const job of await jobs()) await store.alerts.settleDelivery(job.id, null);
    await store.alerts.ingest(school, [alert({ ref: 'AL-OUTBOX-1', severity: 'low' })], T0);
    const now = T0 + 1_000;
    const taken = await store.alerts.claimDeliveries(now, 60_000, 100);
    expect(taken.map((j) => [j.channel, j.target, j.event, j.attempts, j.alert?.ref])).toEqual([
      ['email', 'tuvan@example.edu.vn', 'alert.new', 0, 'AL-OUTBOX-1'],
      ['webhook', 'https://hooks.example/a', 'alert.new', 0, 'AL-OUTBOX-1'],
    ]);
    // Held for its lease: nobody else takes it meanwhile.
    expect(await store.alerts.claimDeliveries(now + 30_000, 60_000, 100)).toEqual([]);
    await store.alerts.settleDelivery(taken[0]!.id, null);
    await store.alerts.settleDelivery(taken[1]!.id, now + 5_000);
    const again = await store.alerts.claimDeliveries(now + 5_000, 60_000, 100);
    expect(again.map((j) => [j.channel, j.attempts])).toEqual([['webhook', 1]]);
    await store.alerts.settleDelivery(again[0]!.id, null);
    // Resent unchanged, or raised to medium: nothing owed. Raised to high: owed again, as an escalation.
    await store.alerts.ingest(school, [alert({ ref: 'AL-OUTBOX-1', severity: 'low' })], T0);
    await store.alerts.ingest(school, [alert({ ref: 'AL-OUTBOX-1', severity: 'medium', count: 2 })], T0);
    expect(await jobs()).toEqual([]);
    await store.alerts.ingest(school, [alert({ ref: 'AL-OUTBOX-1', severity: 'high', count: 3 })], T0);
    const escalated = await jobs();
    expect(escalated.map((j) => [j.event, j.alert?.severity])).toEqual([
      ['alert.escalated', 'high'],
      ['alert.escalated', 'high'],
    ]);
    for (const job of escalated) await store.alerts.settleDelivery(job.id, null);
  });

  it('counts alerts for the yearly report by category and severity, and the report shows them', async () => {
    await store.alerts.ingest(school, [alert({ ref: 'AL-REPORT-1', category: 'grooming', severity: 'high' })], T0);
    await store.alerts.ingest(school, [alert({ ref: 'AL-REPORT-2', category: 'grooming', severity: 'high', device: 'ee55ff66' })], T0);
    // Outside the reporting year: not counted.
    await store.alerts.ingest(school, [alert({ ref: 'AL-REPORT-OLD', time: Date.UTC(2020, 0, 1), lastTime: Date.UTC(2020, 0, 1) })], T0);
    const report = await buildYearlyReport(store, 2026, DEFAULT_ORGANISATION);
    expect([...report.alerts].sort((a, b) => `${a.category}${a.severity}`.localeCompare(`${b.category}${b.severity}`))).toEqual([
      { category: 'bullying', severity: 'critical', count: 1 },
      { category: 'bullying', severity: 'high', count: 1 },
      { category: 'grooming', severity: 'high', count: 2 },
      { category: 'self-harm', severity: 'critical', count: 1 },
    ]);
    const section = buildReportDocument(report, DEFAULT_ORGANISATION).sections.find((s) => s.title.includes('Cảnh báo an toàn'))!;
    expect(section.table!.header).toEqual(['Nhóm', 'Mức thấp', 'Mức trung bình', 'Mức cao', 'Mức khẩn cấp', 'Tổng']);
    expect(section.table!.rows.find((r) => r[0] === 'Dụ dỗ, xâm hại tình dục')).toEqual(['Dụ dỗ, xâm hại tình dục', '0', '0', '2', '0', '2']);
    // Counts of alerts, never of devices or children: no device id anywhere in the document.
    expect(JSON.stringify(buildReportDocument(report, DEFAULT_ORGANISATION))).not.toContain('ee55ff66');
  });

  it('expires alerts by their last signal', async () => {
    expect(await store.alerts.expire(Date.UTC(2021, 0, 1))).toBe(1);
    expect((await store.alerts.list({ limit: 100 })).some((a) => a.ref === 'AL-REPORT-OLD')).toBe(false);
  });
});

describe('the PostgreSQL alert store under two collector processes', () => {
  it('folds concurrent sends of one alert from two connections pools without losing one', async () => {
    const url = await postgres.createDatabase();
    const first = await openPostgresStore({ url });
    const second = await openPostgresStore({ url });
    try {
      const school = (await first.addSchool('TH Song song')).id;
      const sends = Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? first : second).alerts.ingest(school, [alert({ count: i + 1, lastTime: T0 + i, severity: i === 19 ? 'critical' : 'low' })], T0),
      );
      const outcomes = (await Promise.all(sends)).flat().map((c) => c.outcome);
      expect(outcomes.filter((o) => o === 'new')).toHaveLength(1);
      const [stored] = await first.alerts.list({ school, limit: 10 });
      expect(stored).toMatchObject({ count: 20, lastTime: T0 + 19, severity: 'critical' });
      // Two processes emptying one outbox at once take disjoint messages.
      await first.alerts.setContacts({ school, emails: Array.from({ length: 30 }, (_, i) => `tuvan${i}@example.edu.vn`), webhook: null });
      await first.alerts.ingest(school, [alert({ ref: 'AL-OUTBOX-PG' })], T0);
      const [a, b] = await Promise.all([first.alerts.claimDeliveries(T0 + 1, 60_000, 20), second.alerts.claimDeliveries(T0 + 1, 60_000, 20)]);
      const ids = [...a!, ...b!].map((j) => j.id);
      expect(ids).toHaveLength(30);
      expect(new Set(ids).size).toBe(30);
    } finally {
      await first.close();
      await second.close();
    }
  }, 60_000);
});

describe('upgrading a collector database from before alerts', () => {
  it('keeps users and their sessions, and admits the tu-van role', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lachan-alert-upgrade-'));
    dirs.push(dir);
    const file = path.join(dir, 'central.db');
    const old = new Database(file);
    const before = CENTRAL_MIGRATIONS.length - 1;
    old.transaction(() => {
      for (const step of CENTRAL_MIGRATIONS.slice(0, before)) old.exec(step);
      old.pragma(`user_version = ${before}`);
      old.prepare("INSERT INTO users (name, role, school, password_hash, created_at) VALUES ('quantri', 'admin', NULL, 'x', 1)").run();
      old.prepare("INSERT INTO sessions (id_hash, user, csrf, created_at, expires_at) VALUES (x'00', 'quantri', 'c', 1, 9999999999999)").run();
    })();
    expect(() => old.prepare("INSERT INTO users (name, role, school, password_hash, created_at) VALUES ('tv', 'tu-van', 's', 'x', 1)").run()).toThrow(/CHECK/);
    old.close();
    const store = openSqliteStore({ dataDir: dir, writerThread: false });
    try {
      const school = (await store.addSchool('TH Nâng cấp')).id;
      expect(store.accounts.users().map((u) => u.name)).toEqual(['quantri']);
      expect(store.database.prepare('SELECT count(*) AS n FROM sessions').get()).toEqual({ n: 1 });
      await store.accounts.addUser('test', 'tuvan', 'tu-van', school, 'mật-khẩu-đủ-dài');
      await expect(store.accounts.addUser('test', 'tuvan2', 'tu-van', null, 'mật-khẩu-đủ-dài')).rejects.toThrow(/needs a school/);
      expect(store.accounts.user('tuvan')).toMatchObject({ role: 'tu-van', school });
    } finally {
      await store.close();
    }
  });
});
