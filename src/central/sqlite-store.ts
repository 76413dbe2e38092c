import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { tuneConnection } from '../events/log.js';
import { migrate } from '../events/schema.js';
import { DISTRICT_MIGRATIONS } from './district-schema.js';
import { wireFieldsOf, type WireEvent } from '../events/wire.js';
import { dayStart, dayToIso, firstDayOfMonth, isoToDay, monthOfDay } from './days.js';
import {
  StoreError,
  type CentralEvent,
  type CentralStore,
  type EventFilter,
  type EventPage,
  type IngestResult,
  type NewSchool,
  type PageRequest,
  type School,
  type Stats,
  type StatsFilter,
} from './store.js';
import { hashToken, newSchoolId, newSchoolToken, sameHash, schoolIdOfToken } from './tokens.js';

export const CENTRAL_DB_FILE = 'central.db';
const GROUP_COMMIT_MS = 10;
const GROUP_COMMIT_EVENTS = 4_000;

/**
 * Roll-up tables, each keyed by the columns it groups on, with a count, so statistics
 * come from small tables (and survive the expiry of raw events) instead of scans. They
 * are not written on the ingest path: a roll-up pass folds in the events past a
 * watermark (events.seq, which only grows) with one GROUP BY per table, every second
 * and before any statistics query, in one transaction with the new watermark, so a
 * crash can neither lose nor double-count. A null category is stored as '' because
 * NULLs never collide in a primary key.
 */
export interface Rollup {
  readonly table: string;
  readonly keys: readonly RollupKey[];
}
export type RollupKey = 'day' | 'month' | 'school' | 'profile' | 'category' | 'host';

export const ROLLUPS: readonly Rollup[] = [
  // byCategoryDay, all schools.
  { table: 'r_category_day', keys: ['day', 'profile', 'category'] },
  // byCategoryDay for one school; bySchool with a profile or category filter up to
  // MONTHLY_AFTER_DAYS days (through the indexes below).
  { table: 'r_school_category_day', keys: ['school', 'day', 'profile', 'category'] },
  // bySchool with filters over longer ranges, in whole months.
  { table: 'r_school_category_month', keys: ['month', 'school', 'profile', 'category'] },
  // bySchool without filters, exact.
  { table: 'r_day_school', keys: ['day', 'school'] },
  // topHosts, all schools: by day for short ranges, by month for long ones.
  { table: 'r_host_day', keys: ['day', 'host', 'category'] },
  { table: 'r_host_month', keys: ['month', 'host', 'category'] },
  // topHosts for one school over long ranges (short ones read the school's raw events).
  { table: 'r_school_host_month', keys: ['school', 'month', 'host', 'category'] },
];

/** Lets a category or profile filter over a few weeks of all schools seek instead of scan. */
const ROLLUP_INDEXES = [
  'CREATE INDEX r_school_category_day_by_category ON r_school_category_day(category, day);',
  'CREATE INDEX r_school_category_day_by_profile ON r_school_category_day(profile, day);',
];

/**
 * Statistics over more days than this count bySchool (with filters) and topHosts in whole
 * calendar months, the range widened to cover the request: a school year then reads
 * ~13 rows per host or school instead of ~365.
 */
export const MONTHLY_AFTER_DAYS = 31;

/** Each roll-up key computed from an events row (days and months in Vietnam time, see days.ts). */
const VN_TIME = '(time + 25200000)';
export const KEY_SQL: Readonly<Record<RollupKey, string>> = {
  day: `(${VN_TIME} / 86400000)`,
  month: `(CAST(strftime('%Y', ${VN_TIME} / 1000, 'unixepoch') AS INTEGER) * 12 + CAST(strftime('%m', ${VN_TIME} / 1000, 'unixepoch') AS INTEGER) - 1)`,
  school: 'school',
  profile: 'profile',
  category: "coalesce(category, '')",
  host: 'host',
};

/**
 * Events folded into the roll-ups per transaction (~30 ms of work): passes yield between
 * chunks, so a backlog never holds the event loop or the writer for long.
 */
const ROLLUP_CHUNK = 10_000;
const ROLLUP_INTERVAL_MS = 1_000;

const KEY_TYPES: Readonly<Record<RollupKey, string>> = {
  day: 'INTEGER NOT NULL',
  month: 'INTEGER NOT NULL',
  school: 'TEXT NOT NULL',
  profile: 'TEXT NOT NULL',
  category: 'TEXT NOT NULL',
  host: 'TEXT NOT NULL',
};

/**
 * The events table's secondary indexes, each ending in time for ranges and ordering:
 * newest first, by school, by host. A category filter walks the time index (ten-odd
 * categories, each common), which saves a fourth index on every insert.
 */
export const EVENT_INDEXES: readonly string[] = [
  'CREATE INDEX events_time ON events(time);',
  'CREATE INDEX events_school_time ON events(school, time);',
  'CREATE INDEX events_host_time ON events(host, time);',
];

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE schools (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     token_hash BLOB NOT NULL,
     created_at INTEGER NOT NULL,
     revoked_at INTEGER
   );
   CREATE TABLE events (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
     school TEXT NOT NULL,
     time INTEGER NOT NULL,
     profile TEXT NOT NULL,
     category TEXT,
     reason TEXT NOT NULL,
     rule TEXT,
     source TEXT,
     host TEXT NOT NULL,
     path TEXT NOT NULL,
     method TEXT NOT NULL,
     client TEXT NOT NULL,
     received_at INTEGER NOT NULL
   );
   ${EVENT_INDEXES.join('\n')}
   ${ROLLUPS.map(
     (r) =>
       `CREATE TABLE ${r.table} (${r.keys.map((k) => `${k} ${KEY_TYPES[k]}`).join(', ')}, n INTEGER NOT NULL, PRIMARY KEY (${r.keys.join(', ')})) WITHOUT ROWID;`,
   ).join('\n')}
   ${ROLLUP_INDEXES.join('\n')}
   CREATE TABLE rollup_state (id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER NOT NULL);
   INSERT INTO rollup_state (id, last_seq) VALUES (1, 0);`,
  // Dashboard accounts (see accounts.ts) and the last time each school's gateway called.
  `CREATE TABLE users (
     name TEXT PRIMARY KEY,
     role TEXT NOT NULL CHECK (role IN ('admin', 'school-it', 'viewer')),
     school TEXT,
     password_hash TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE sessions (
     id_hash BLOB PRIMARY KEY,
     user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
     csrf TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL
   );
   CREATE INDEX sessions_expiry ON sessions(expires_at);
   CREATE TABLE login_failures (
     name TEXT PRIMARY KEY,
     failures INTEGER NOT NULL,
     first_at INTEGER NOT NULL,
     locked_until INTEGER
   );
   CREATE TABLE audit_log (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     actor TEXT NOT NULL,
     action TEXT NOT NULL,
     target TEXT NOT NULL,
     before TEXT,
     after TEXT
   );
   CREATE TABLE school_contact (school TEXT PRIMARY KEY, last_at INTEGER NOT NULL) WITHOUT ROWID;`,
  ...DISTRICT_MIGRATIONS,
];

const EVENT_COLUMNS = 'seq, id, school, time, profile, category, reason, rule, source, host, path, method, client, received_at';

interface EventRow {
  seq: number;
  id: string;
  school: string;
  time: number;
  profile: string;
  category: string | null;
  reason: string;
  rule: string | null;
  source: string | null;
  host: string;
  path: string;
  method: string;
  client: string;
  received_at: number;
}

interface SchoolRow {
  id: string;
  name: string;
  token_hash: Buffer;
  created_at: number;
  revoked_at: number | null;
}

interface PendingIngest {
  readonly school: string;
  readonly events: readonly WireEvent[];
  readonly receivedAt: number;
  stored: number;
  readonly resolve: (result: IngestResult) => void;
  readonly reject: (error: unknown) => void;
}

export interface SqliteStoreOptions {
  readonly dataDir: string;
  /** Page cache per connection in MiB (default 256; the hot index pages of a year of a district). */
  readonly cacheMiB?: number;
}

export function openSqliteStore(options: SqliteStoreOptions): SqliteCentralStore {
  return new SqliteCentralStore(options);
}

function toSchool(row: SchoolRow): School {
  return { id: row.id, name: row.name, createdAt: row.created_at, revokedAt: row.revoked_at };
}

function toEvent(row: EventRow): CentralEvent {
  return { ...wireFieldsOf(row), school: row.school, receivedAt: row.received_at };
}

function encodeCursor(row: EventRow): string {
  return Buffer.from(`${row.time}:${row.seq}`).toString('base64url');
}

function decodeCursor(cursor: string): [number, number] {
  const match = /^(\d{1,16}):(\d{1,16})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw new StoreError('LACHAN_BAD_CURSOR', 'cursor: not one this collector issued');
  return [Number(match[1]), Number(match[2])];
}

export class SqliteCentralStore implements CentralStore {
  readonly file: string;
  readonly #db: Database.Database;
  readonly #statements;
  readonly #ingestTx: (batches: readonly PendingIngest[]) => void;
  readonly #rollUpChunk: () => boolean;
  readonly #rollupTimer: NodeJS.Timeout;
  readonly #backlog: () => number;
  #rollingUp = false;
  #closed = false;
  #pending: PendingIngest[] = [];
  #pendingEvents = 0;
  #groupTimer: NodeJS.Timeout | null = null;

  constructor(options: SqliteStoreOptions) {
    mkdirSync(options.dataDir, { recursive: true, mode: 0o750 });
    this.file = path.join(options.dataDir, CENTRAL_DB_FILE);
    closeSync(openSync(this.file, 'a', 0o600));
    const db = new Database(this.file);
    this.#db = db;
    tuneConnection(db);
    db.pragma(`cache_size = -${(options.cacheMiB ?? 256) * 1024}`);
    migrate(db, MIGRATIONS, this.file);

    const insertEvent = db.prepare(
      'INSERT OR IGNORE INTO events (id, school, time, profile, category, reason, rule, source, host, path, method, client, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    // One row a school, so the dashboard can tell a silent gateway from a quiet school.
    const touchSchool = db.prepare(
      'INSERT INTO school_contact (school, last_at) VALUES (?, ?) ON CONFLICT DO UPDATE SET last_at = max(last_at, excluded.last_at)',
    );
    const ingestOne = (school: string, events: readonly WireEvent[], receivedAt: number): number => {
      touchSchool.run(school, receivedAt);
      let stored = 0;
      for (const e of events) {
        stored += insertEvent.run(e.id, school, e.time, e.profile, e.category, e.reason, e.rule, e.source, e.host, e.path, e.method, e.client, receivedAt).changes;
      }
      return stored;
    };
    this.#ingestTx = db.transaction((batches: readonly PendingIngest[]) => {
      for (const batch of batches) batch.stored = ingestOne(batch.school, batch.events, batch.receivedAt);
    });

    const rollupSql = ROLLUPS.map((r) => {
      const keys = r.keys.map((k) => KEY_SQL[k]).join(', ');
      // "WHERE true" lets SQLite parse ON CONFLICT after a SELECT.
      return db.prepare(
        `INSERT INTO ${r.table} (${r.keys.join(', ')}, n) SELECT ${keys}, count(*) FROM events WHERE seq > ? AND seq <= ? AND true GROUP BY ${keys} ON CONFLICT DO UPDATE SET n = n + excluded.n`,
      );
    });
    const lastSeq = db.prepare('SELECT last_seq FROM rollup_state WHERE id = 1').pluck();
    const maxSeq = db.prepare('SELECT coalesce(max(seq), 0) FROM events').pluck();
    const setLastSeq = db.prepare('UPDATE rollup_state SET last_seq = ? WHERE id = 1');
    this.#backlog = () => (maxSeq.get() as number) - (lastSeq.get() as number);
    const rollUpChunk = db.transaction((): boolean => {
      const from = lastSeq.get() as number;
      const newest = maxSeq.get() as number;
      if (newest <= from) return false;
      const to = Math.min(newest, from + ROLLUP_CHUNK);
      for (const statement of rollupSql) statement.run(from, to);
      setLastSeq.run(to);
      return to < newest;
    });
    this.#rollUpChunk = () => rollUpChunk.immediate();
    this.#rollupTimer = setInterval(() => this.#backgroundRollUp(), ROLLUP_INTERVAL_MS);
    this.#rollupTimer.unref();

    this.#statements = {
      lastSeq,
      insertSchool: db.prepare('INSERT INTO schools (id, name, token_hash, created_at) VALUES (?, ?, ?, ?)'),
      listSchools: db.prepare<[], SchoolRow>('SELECT * FROM schools ORDER BY created_at, id'),
      school: db.prepare<[string], SchoolRow>('SELECT * FROM schools WHERE id = ?'),
      revoke: db.prepare('UPDATE schools SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      // Only events already folded into the roll-ups may go.
      expire: db.prepare(
        'DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE time < ? AND seq <= (SELECT last_seq FROM rollup_state) ORDER BY time LIMIT 10000)',
      ),
      schoolNames: db.prepare<[], { id: string; name: string }>('SELECT id, name FROM schools'),
    };
  }

  async addSchool(name: string): Promise<NewSchool> {
    const trimmed = name.trim();
    if (trimmed.length === 0 || trimmed.length > 200) throw new StoreError('LACHAN_BAD_NAME', 'a school name is 1–200 characters');
    const id = newSchoolId();
    const token = newSchoolToken(id);
    this.#statements.insertSchool.run(id, trimmed, hashToken(token), Date.now());
    return { id, token };
  }

  async listSchools(): Promise<School[]> {
    return this.#statements.listSchools.all().map(toSchool);
  }

  async revokeSchool(id: string): Promise<boolean> {
    if (this.#statements.school.get(id) === undefined) return false;
    this.#statements.revoke.run(Date.now(), id);
    return true;
  }

  async authenticate(token: string): Promise<School | null> {
    const id = schoolIdOfToken(token);
    if (id === null) return null;
    const row = this.#statements.school.get(id);
    if (row === undefined || row.revoked_at !== null) return null;
    return sameHash(hashToken(token), row.token_hash) ? toSchool(row) : null;
  }

  /**
   * Batches that arrive together (several schools posting at once) are written in one
   * transaction, GROUP_COMMIT_MS after the first or as soon as GROUP_COMMIT_EVENTS wait:
   * a commit writes every index page the events touched, and events for the same hosts
   * and schools share pages, so one commit for several batches writes far less.
   */
  ingest(school: string, events: readonly WireEvent[], receivedAt: number): Promise<IngestResult> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ school, events, receivedAt, stored: 0, resolve, reject });
      this.#pendingEvents += events.length;
      if (this.#pendingEvents >= GROUP_COMMIT_EVENTS) {
        if (this.#groupTimer !== null) clearTimeout(this.#groupTimer);
        this.#groupTimer = null;
        this.#writePending();
      } else if (this.#groupTimer === null) {
        this.#groupTimer = setTimeout(() => {
          this.#groupTimer = null;
          this.#writePending();
        }, GROUP_COMMIT_MS);
      }
    });
  }

  #writePending(): void {
    const batches = this.#pending;
    this.#pending = [];
    this.#pendingEvents = 0;
    try {
      this.#ingestTx(batches);
    } catch (error) {
      for (const batch of batches) batch.reject(error);
      return;
    }
    for (const batch of batches) {
      batch.resolve({ acked: batch.events.map((e) => e.id), stored: batch.stored, duplicates: batch.events.length - batch.stored });
    }
  }

  async queryEvents(filter: EventFilter, page: PageRequest): Promise<EventPage> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    const add = (clause: string, value: string | number | undefined) => {
      if (value === undefined) return;
      where.push(clause);
      params.push(value);
    };
    add('school = ?', filter.school);
    add('profile = ?', filter.profile);
    add('category = ?', filter.category);
    add('host = ?', filter.host);
    add('time >= ?', filter.from);
    add('time < ?', filter.to);
    if (page.cursor !== undefined) {
      const [time, seq] = decodeCursor(page.cursor);
      where.push('(time, seq) < (?, ?)');
      params.push(time, seq);
    }
    const limit = Math.min(Math.max(1, Math.floor(page.limit)), 10_000);
    const sql = `SELECT ${EVENT_COLUMNS} FROM events${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY time DESC, seq DESC LIMIT ${limit + 1}`;
    const rows = this.#db.prepare<(string | number)[], EventRow>(sql).all(...params);
    const more = rows.length > limit;
    if (more) rows.length = limit;
    return { events: rows.map(toEvent), nextCursor: more ? encodeCursor(rows[rows.length - 1]!) : null };
  }

  async stats(filter: StatsFilter): Promise<Stats> {
    const from = isoToDay(filter.fromDay);
    const to = isoToDay(filter.toDay);
    if (from === null || to === null || from > to) throw new StoreError('LACHAN_BAD_RANGE', 'from/to: YYYY-MM-DD, from not after to');
    // A small backlog is folded in now so the answer is exact; a large one (a burst of
    // ingest) is left to the background pass rather than charged to this query.
    if (this.#backlog() <= ROLLUP_CHUNK) this.rollUp();
    const pendingRollup = this.#backlog();
    const cat = (c: string) => (c === '' ? null : c);

    // Per category and day.
    const cd = this.#where({ day: [from, to], school: filter.school, profile: filter.profile, category: filter.category });
    const byCategoryDay = this.#db
      .prepare<unknown[], { day: number; category: string; count: number }>(
        `SELECT day, category, sum(n) AS count FROM ${filter.school === undefined ? 'r_category_day' : 'r_school_category_day'}${cd.sql} GROUP BY day, category ORDER BY day, category`,
      )
      .all(...cd.params)
      .map((r) => ({ day: dayToIso(r.day), category: cat(r.category), count: r.count }));

    // Long ranges read monthly roll-ups, widened to whole months.
    const monthly = to - from + 1 > MONTHLY_AFTER_DAYS ? { first: monthOfDay(from), last: monthOfDay(to) } : null;
    const names = new Map(this.#statements.schoolNames.all().map((s) => [s.id, s.name]));
    const filtered = filter.profile !== undefined || filter.category !== undefined;
    const dims = { school: filter.school, profile: filter.profile, category: filter.category };
    const sd = !filtered
      ? { table: 'r_day_school', ...this.#where({ day: [from, to], school: filter.school }) }
      : monthly === null
        ? { table: 'r_school_category_day', ...this.#where({ day: [from, to], ...dims }) }
        : { table: 'r_school_category_month', ...this.#where({ month: [monthly.first, monthly.last], ...dims }) };
    const bySchool = this.#db
      .prepare<unknown[], { school: string; count: number }>(`SELECT school, sum(n) AS count FROM ${sd.table}${sd.sql} GROUP BY school ORDER BY count DESC, school`)
      .all(...sd.params)
      .map((r) => ({ school: r.school, name: names.get(r.school) ?? null, count: r.count }));

    const limit = Math.min(Math.max(1, filter.topHosts ?? 20), 1000);
    const th =
      filter.school !== undefined
        ? monthly === null
          ? { table: 'events', ...this.#eventsWhere(filter.school, dayStart(from), dayStart(to + 1), filter.category) }
          : { table: 'r_school_host_month', ...this.#where({ school: filter.school, month: [monthly.first, monthly.last], category: filter.category }) }
        : monthly === null
          ? { table: 'r_host_day', ...this.#where({ day: [from, to], category: filter.category }) }
          : { table: 'r_host_month', ...this.#where({ month: [monthly.first, monthly.last], category: filter.category }) };
    const counted = th.table === 'events' ? "coalesce(category, '') AS category, count(*)" : 'category, sum(n)';
    const topHosts = this.#db
      .prepare<unknown[], { host: string; category: string; count: number }>(
        `SELECT host, ${counted} AS count FROM ${th.table}${th.sql} GROUP BY host, category ORDER BY count DESC, host LIMIT ${limit}`,
      )
      .all(...th.params)
      .map((r) => ({ host: r.host, category: cat(r.category), count: r.count }));

    const total = byCategoryDay.reduce((sum, r) => sum + r.count, 0);
    const monthlyRange = monthly === null ? null : { fromDay: dayToIso(firstDayOfMonth(monthly.first)), toDay: dayToIso(firstDayOfMonth(monthly.last + 1) - 1) };
    return { fromDay: dayToIso(from), toDay: dayToIso(to), total, byCategoryDay, bySchool, topHosts, monthlyRange, pendingRollup };
  }

  /** A few weeks of one school's raw events, through the (school, time) index. */
  #eventsWhere(school: string, fromMs: number, toMs: number, category: string | undefined): { sql: string; params: unknown[] } {
    const params: unknown[] = [school, fromMs, toMs];
    let sql = ' WHERE school = ? AND time >= ? AND time < ?';
    if (category !== undefined) {
      sql += " AND coalesce(category, '') = ?";
      params.push(category);
    }
    return { sql, params };
  }

  #where(conditions: {
    day?: [number, number];
    month?: [number, number];
    school?: string;
    profile?: string;
    category?: string;
  }): { sql: string; params: unknown[] } {
    const clauses: string[] = [];
    const params: unknown[] = [];
    if (conditions.school !== undefined) {
      clauses.push('school = ?');
      params.push(conditions.school);
    }
    if (conditions.day !== undefined) {
      clauses.push('day BETWEEN ? AND ?');
      params.push(...conditions.day);
    }
    if (conditions.month !== undefined) {
      clauses.push('month BETWEEN ? AND ?');
      params.push(...conditions.month);
    }
    if (conditions.profile !== undefined) {
      clauses.push('profile = ?');
      params.push(conditions.profile);
    }
    if (conditions.category !== undefined) {
      clauses.push('category = ?');
      params.push(conditions.category);
    }
    return { sql: clauses.length ? ` WHERE ${clauses.join(' AND ')}` : '', params };
  }

  /** One chunk now, the next on a later turn of the event loop, until caught up. */
  #backgroundRollUp(): void {
    if (this.#rollingUp || this.#closed) return;
    this.#rollingUp = true;
    const next = () => {
      let more = false;
      try {
        more = !this.#closed && this.#rollUpChunk();
      } catch {
        // Busy or failing now: the next tick tries again.
      }
      if (more) setImmediate(next);
      else this.#rollingUp = false;
    };
    next();
  }

  /** Folds every event not yet counted into the roll-ups. */
  rollUp(): void {
    while (this.#rollUpChunk()) {
      // next chunk
    }
  }

  async expire(before: number): Promise<number> {
    this.rollUp();
    let removed = 0;
    for (;;) {
      const changes = this.#statements.expire.run(before).changes;
      removed += changes;
      if (changes === 0) return removed;
    }
  }

  async close(): Promise<void> {
    if (this.#groupTimer !== null) clearTimeout(this.#groupTimer);
    clearInterval(this.#rollupTimer);
    this.#closed = true;
    if (this.#pending.length > 0) this.#writePending();
    if (this.#db.open) this.#db.close();
  }

  /** The connection: for the bench (synthetic data in bulk) and the dashboard accounts (accounts.ts). */
  get database(): Database.Database {
    return this.#db;
  }
}
