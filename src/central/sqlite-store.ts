import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { sqliteErrorCode, tuneConnection } from '../events/log.js';
import { migrate } from '../events/schema.js';
import { DISTRICT_LATER_MIGRATIONS, DISTRICT_MIGRATIONS } from './district-schema.js';
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
import {
  EVENT_COLUMNS,
  EVENT_FIELDS_V1,
  INBOX_DRAIN_EVENTS,
  INBOX_MIGRATION,
  prepareEventWriter,
  prepareInboxCount,
  ROLLUP_CHUNK,
  ROLLUP_INTERVAL_MS,
  ROLLUPS,
  schoolScopedMigration,
  tuneWriter,
  type EventWriter,
  type RollupKey,
} from './event-writer.js';
import { WriterThread } from './writer-thread.js';

export const CENTRAL_DB_FILE = 'central.db';

/** Whether SQLite gave up waiting for a lock another connection holds (SQLITE_BUSY, SQLITE_LOCKED and their extended codes). */
function isBusy(error: unknown): boolean {
  const code = sqliteErrorCode(error);
  return code !== undefined && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

// Group commit on the store's own connection (without the writer thread).
const GROUP_COMMIT_MS = 10;
const GROUP_COMMIT_EVENTS = 4_000;
/**
 * A query first moves the inbox into `events` (so it sees every acknowledged event)
 * when it holds at most this many (~0.1 s of work); a larger inbox, under a burst of
 * ingest, is left to the writer, which drains it within INBOX_DRAIN_MS anyway.
 */
const QUERY_DRAIN_MAX = 5_000;

export { KEY_SQL, ROLLUPS, type Rollup, type RollupKey } from './event-writer.js';

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

/** The collector database's schema steps, oldest first (exported for the upgrade tests). */
export const CENTRAL_MIGRATIONS: readonly string[] = [
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
     ${EVENT_FIELDS_V1}
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
  // Events are acknowledged from the inbox and moved on in bulk (event-writer.ts).
  INBOX_MIGRATION,
  // Scoped allows, disabled accounts, login throttling (district-schema.ts).
  ...DISTRICT_LATER_MIGRATIONS,
  // Events are stored once per (school, id), and carry the requests of their visit.
  schoolScopedMigration(EVENT_INDEXES),
];

const EVENT_ROW_COLUMNS = `seq, ${EVENT_COLUMNS}`;

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
  count: number;
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
  /**
   * Events are written on a thread of their own, started by the first ingest (default
   * true; only where the compiled ingest-worker.js exists, else on this connection).
   */
  readonly writerThread?: boolean;
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
  readonly #writer: EventWriter;
  readonly #inboxCount: (max: number) => number;
  readonly #rollupTimer: NodeJS.Timeout;
  readonly #thread: WriterThread | null;
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
    const cacheMiB = options.cacheMiB ?? 256;
    tuneWriter(db, cacheMiB);
    migrate(db, CENTRAL_MIGRATIONS, this.file);

    this.#writer = prepareEventWriter(db);
    this.#inboxCount = prepareInboxCount(db);
    // Built, the collector writes events on a thread of their own (see ingest-worker.ts).
    this.#thread = (options.writerThread ?? true) && WriterThread.available() ? new WriterThread(this.file, cacheMiB) : null;
    this.#rollupTimer = setInterval(() => this.#background(), ROLLUP_INTERVAL_MS);
    this.#rollupTimer.unref();

    this.#statements = {
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
    if (this.#thread !== null) return this.#ingestOnThread(this.#thread, school, events, receivedAt);
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

  /** The writer thread groups batches that arrive while it commits. */
  async #ingestOnThread(thread: WriterThread, school: string, events: readonly WireEvent[], receivedAt: number): Promise<IngestResult> {
    const stored = await thread.write({ school, events, receivedAt });
    return { acked: events.map((e) => e.id), stored, duplicates: events.length - stored };
  }

  #writePending(): void {
    const batches = this.#pending;
    this.#pending = [];
    this.#pendingEvents = 0;
    try {
      const stored = this.#writer.write(batches);
      batches.forEach((batch, i) => (batch.stored = stored[i]!));
    } catch (error) {
      for (const batch of batches) batch.reject(error);
      return;
    }
    for (const batch of batches) {
      batch.resolve({ acked: batch.events.map((e) => e.id), stored: batch.stored, duplicates: batch.events.length - batch.stored });
    }
    if (this.#writer.inboxed() >= INBOX_DRAIN_EVENTS) this.#drainQuietly();
  }

  /** A failed drain leaves the events in the inbox for the next one. */
  #drainQuietly(): void {
    try {
      this.#writer.drain();
    } catch {
      // Busy or failing now: the next tick tries again.
    }
  }

  /** Events acknowledged but not yet in `events` (up to `max` counted). */
  #inboxSize(max: number): number {
    const thread = this.#thread;
    return thread !== null && thread.started ? thread.inboxSize() : this.#inboxCount(max);
  }

  /**
   * Before a query: a small inbox moved into `events` (on the writer thread when it
   * runs, else here) and a small roll-up backlog folded in, so the answer is exact; a
   * large one (a burst of ingest) is left to the background rather than charged to
   * this query.
   */
  async #settle(): Promise<void> {
    const waiting = this.#inboxSize(QUERY_DRAIN_MAX + 1);
    try {
      if (waiting > 0 && waiting <= QUERY_DRAIN_MAX) {
        const thread = this.#thread;
        if (thread !== null && thread.started) await thread.drain();
        else this.#writer.drain();
      }
      if (this.#writer.backlog() <= ROLLUP_CHUNK) this.rollUp();
    } catch (error) {
      // Busy (another process holds the write lock): answer from what is moved and
      // counted now; pendingRollup says how much is not. Anything else (a full disk, a
      // damaged file) is the caller's to see, not to be answered around.
      if (!isBusy(error)) throw error;
    }
  }

  async queryEvents(filter: EventFilter, page: PageRequest): Promise<EventPage> {
    await this.#settle();
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
    const sql = `SELECT ${EVENT_ROW_COLUMNS} FROM events${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY time DESC, seq DESC LIMIT ${limit + 1}`;
    const rows = this.#db.prepare<(string | number)[], EventRow>(sql).all(...params);
    const more = rows.length > limit;
    if (more) rows.length = limit;
    return { events: rows.map(toEvent), nextCursor: more ? encodeCursor(rows[rows.length - 1]!) : null };
  }

  async stats(filter: StatsFilter): Promise<Stats> {
    const from = isoToDay(filter.fromDay);
    const to = isoToDay(filter.toDay);
    if (from === null || to === null || from > to) throw new StoreError('LACHAN_BAD_RANGE', 'from/to: YYYY-MM-DD, from not after to');
    await this.#settle();
    const pendingRollup = this.#writer.backlog() + this.#inboxSize(Number.MAX_SAFE_INTEGER);
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

  /**
   * Every second: without the writer thread, the inbox moved on (the thread does that
   * itself); then, one chunk now and the next on a later turn of the event loop, the
   * events past the roll-up watermark (a bulk load, or a store from before the inbox).
   */
  #background(): void {
    if (this.#rollingUp || this.#closed) return;
    if (this.#thread === null && this.#writer.inboxed() > 0) this.#drainQuietly();
    // Read without the write lock: waiting for the writer thread's lock would stall this thread.
    if (this.#writer.backlog() === 0) return;
    this.#rollingUp = true;
    const next = () => {
      let more = false;
      try {
        more = !this.#closed && this.#writer.rollUpChunk();
      } catch {
        // Busy or failing now: the next tick tries again.
      }
      if (more) setImmediate(next);
      else this.#rollingUp = false;
    };
    next();
  }

  /** Folds every event not yet counted into the roll-ups (on this connection). */
  rollUp(): void {
    if (this.#writer.backlog() === 0) return;
    while (this.#writer.rollUpChunk()) {
      // next chunk
    }
  }

  async expire(before: number): Promise<number> {
    await this.#settle();
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
    if (this.#writer.inboxed() > 0) this.#drainQuietly();
    await this.#thread?.close();
    if (this.#db.open) this.#db.close();
  }

  /** The connection: for the bench (synthetic data in bulk) and the dashboard accounts (accounts.ts). */
  get database(): Database.Database {
    return this.#db;
  }
}
