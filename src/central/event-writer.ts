import type { SqliteDatabase } from '../storage/sqlite.js';
import { EVENT_COLUMNS, EVENT_PLACEHOLDERS, eventValues, type WireEvent } from '../events/event-schema.js';
import { dayNumber, monthOfDay } from './days.js';

/*
 * Over ~400 lines on purpose: the inbox drain, the watermark and the roll-up pass are
 * one transaction protocol; split, the invariant that no event is lost or counted twice
 * would have to be read across files.
 */
/**
 * The collector's event writes. Both the store's own connection and the writer thread
 * (ingest-worker.ts) run these, so the SQL lives here once.
 *
 * Two steps, because of what a commit costs. An event touches a leaf of every index
 * (by host, by school, by time, by id) and a commit writes each page it dirtied, so a
 * commit of 4,000 events (what a few gateways send at once) rewrites thousands of
 * pages, nearly one an event. Acknowledging only after a commit, the collector cannot
 * make commits larger than what is in flight. So:
 *
 * 1. `write` stores a batch in the inbox (`events_inbox`, one b-tree keyed by event id,
 *    appended to: ULIDs start with their time) and counts it for the roll-ups in
 *    memory. That is durable: the gateway's events are acknowledged from here.
 * 2. `drain` moves the whole inbox into `events` and adds the counts to the roll-ups,
 *    in one transaction, every INBOX_DRAIN_MS or INBOX_DRAIN_EVENTS: tens of thousands
 *    of events share each index page they touch.
 *
 * Measured on the 1 M-event store, the writer alone on one thread: 20,500 events/s
 * committing 4,000 at a time into `events`, 32,000 through the inbox drained every
 * 50,000 (bench/RESULTS.md has the collector's numbers).
 */

/**
 * Roll-up tables, each keyed by the columns it groups on, with a count, so statistics
 * come from small tables (and survive the expiry of raw events) instead of scans. A null
 * category is stored as '' because NULLs never collide in a primary key.
 *
 * Events reach the roll-ups two ways, and `rollup_state.last_seq` (a watermark on
 * events.seq, which only grows) says which: the drain counts what it moves and moves
 * the watermark past it, in the same transaction; events that reached `events` any
 * other way (a bulk load, a store from before the inbox) lie past the watermark and a
 * roll-up pass folds them in with one GROUP BY per table. Either way in one transaction
 * with the watermark, so a crash can neither lose nor double-count.
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
  // MONTHLY_AFTER_DAYS days (through the indexes in sqlite-store.ts).
  { table: 'r_school_category_day', keys: ['school', 'day', 'profile', 'category'] },
  // bySchool with filters over longer ranges, in whole months.
  { table: 'r_school_category_month', keys: ['month', 'school', 'profile', 'category'] },
  // bySchool without filters, exact.
  { table: 'r_day_school', keys: ['day', 'school'] },
  // topHosts, all schools: by day for short ranges (whole months inside them by month), by month for long ones.
  { table: 'r_host_day', keys: ['day', 'host', 'category'] },
  { table: 'r_host_month', keys: ['month', 'host', 'category'] },
  // topHosts for one school over long ranges (short ones read the school's raw events).
  { table: 'r_school_host_month', keys: ['school', 'month', 'host', 'category'] },
];

/**
 * Each roll-up key computed from an events row, in SQL (days and months in Vietnam
 * time; the JavaScript twins are in days.ts, used by `InboxCounts.add` below).
 */
const VN_TIME = '(time + 25200000)';
export const KEY_SQL: Readonly<Record<RollupKey, string>> = {
  day: `(${VN_TIME} / 86400000)`,
  month: `(CAST(strftime('%Y', ${VN_TIME} / 1000, 'unixepoch') AS INTEGER) * 12 + CAST(strftime('%m', ${VN_TIME} / 1000, 'unixepoch') AS INTEGER) - 1)`,
  school: 'school',
  profile: 'profile',
  category: "coalesce(category, '')",
  host: 'host',
};

/** Events past the watermark folded per roll-up pass transaction (~30 ms of work). */
export const ROLLUP_CHUNK = 10_000;
export const ROLLUP_INTERVAL_MS = 1_000;

/**
 * The inbox is drained when it holds this many events or every INBOX_DRAIN_MS,
 * whichever comes first; a query drains a small inbox first (sqlite-store.ts), so the
 * dashboard sees every acknowledged event. A full drain is about two seconds of work,
 * during which the writer acknowledges nothing (gateways wait up to 30 s); measured on
 * the bench, 50,000 gave 20–22 k events/s and 100,000 gave 24–25 k.
 */
export const INBOX_DRAIN_EVENTS = 100_000;
export const INBOX_DRAIN_MS = 5_000;

/**
 * WAL pages before a commit copies the log back into the database (SQLite's default is
 * 1,000). A drain dirties thousands of index pages; with the default nearly every drain
 * would also checkpoint (and fsync). Costs up to ~160 MiB of WAL on disk. The writer
 * thread leaves checkpoints to its helper (ingest-worker.ts) and keeps four times this
 * only as a bound.
 */
export const WAL_AUTOCHECKPOINT_PAGES = 40_000;

/** SQLite's own ceiling unless compiled otherwise (SQLITE_MAX_MMAP_SIZE). */
const MMAP_BYTES = 2 ** 31 - 65_536;

/**
 * An event's columns after its id, in `events` and in the inbox alike, as the first
 * schema made them (the shipped migrations build on this text; never edit it).
 */
export const EVENT_FIELDS_V1 = `school TEXT NOT NULL,
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
     received_at INTEGER NOT NULL`;

export const INBOX_MIGRATION = `CREATE TABLE events_inbox (
     id TEXT PRIMARY KEY,
     ${EVENT_FIELDS_V1}
   ) WITHOUT ROWID;
   ALTER TABLE rollup_state ADD COLUMN drains INTEGER NOT NULL DEFAULT 0;`;

const EVENT_COLUMNS_V1 = 'id, school, time, profile, category, reason, rule, source, host, path, method, client, received_at';

/**
 * Event ids are unique per gateway, not across the district: a school's id is its
 * idempotency key only together with the school. Rebuilds `events` and the inbox keyed
 * by (school, id) instead of id alone (keeping every row, its seq and the seq counter,
 * so the roll-up watermark still holds), and adds `count`: the requests one visit made
 * (a gateway folds repeats from one device to one host and category into one event).
 * `eventIndexes` are the secondary indexes `events` had, recreated after the rebuild.
 */
export function schoolScopedMigration(eventIndexes: readonly string[]): string {
  return `CREATE TABLE events_by_school (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL,
     ${EVENT_FIELDS_V1},
     count INTEGER NOT NULL DEFAULT 1,
     UNIQUE (school, id)
   );
   INSERT INTO events_by_school (seq, ${EVENT_COLUMNS_V1}) SELECT seq, ${EVENT_COLUMNS_V1} FROM events ORDER BY seq;
   DELETE FROM sqlite_sequence WHERE name = 'events_by_school';
   INSERT INTO sqlite_sequence (name, seq) SELECT 'events_by_school', seq FROM sqlite_sequence WHERE name = 'events';
   DROP TABLE events;
   ALTER TABLE events_by_school RENAME TO events;
   ${eventIndexes.join('\n')}
   CREATE TABLE inbox_by_school (
     id TEXT NOT NULL,
     ${EVENT_FIELDS_V1},
     count INTEGER NOT NULL DEFAULT 1,
     PRIMARY KEY (school, id)
   ) WITHOUT ROWID;
   INSERT INTO inbox_by_school (${EVENT_COLUMNS_V1}) SELECT ${EVENT_COLUMNS_V1} FROM events_inbox;
   DROP TABLE events_inbox;
   ALTER TABLE inbox_by_school RENAME TO events_inbox;`;
}

/** An event's columns as the collector stores it (the event's, then its own), without `events.seq`. */
export const CENTRAL_EVENT_COLUMNS = `${EVENT_COLUMNS}, school, received_at`;

/** One school's batch as the writer stores it. */
export interface WriteBatch {
  readonly school: string;
  readonly events: readonly WireEvent[];
  readonly receivedAt: number;
}

export interface EventWriter {
  /** Stores the batches in the inbox in one transaction; how many events of each were new. */
  write(batches: readonly WriteBatch[]): number[];
  /** Events this writer put in the inbox since its last drain. */
  inboxed(): number;
  /** Moves the inbox into `events` and counts it in the roll-ups; how many events moved. */
  drain(): number;
  /** Folds up to ROLLUP_CHUNK events past the watermark into the roll-ups; true while more wait. */
  rollUpChunk(): boolean;
  /** Events in `events` not yet counted in the roll-ups. */
  backlog(): number;
}

/** Pragmas of every connection that writes events (see WAL_AUTOCHECKPOINT_PAGES). */
export function tuneWriter(db: SqliteDatabase, cacheMiB: number): void {
  db.pragma(`cache_size = -${cacheMiB * 1024}`);
  db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
  // Index pages read through the mapping rather than a read() each: the move into
  // `events` touches pages all over its indexes (measured: 27,000 → 38,000 events/s).
  db.pragma(`mmap_size = ${MMAP_BYTES}`);
}

/**
 * Bits each roll-up key takes in a packed count key: day and month as they are (good
 * for centuries), the strings as their index among those seen since the last drain.
 * A table's keys fit 53 bits, so one number (a double, exact to 2^53) names a row.
 */
const KEY_BITS: Readonly<Record<RollupKey, number>> = { day: 17, month: 15, school: 12, profile: 6, category: 8, host: 17 };
for (const r of ROLLUPS) {
  if (r.keys.reduce((bits, k) => bits + KEY_BITS[k], 0) > 53) throw new Error(`${r.table}: packed key over 53 bits`);
}

/** The order of `InboxCounts`' value slots. */
const KEY_ORDER: readonly RollupKey[] = ['day', 'month', 'school', 'profile', 'category', 'host'];

/** Per roll-up, which value slot each key reads and the radix it is packed with. */
const PACKING = ROLLUPS.map((r) => ({
  slots: Uint8Array.from(r.keys.map((k) => KEY_ORDER.indexOf(k))),
  radices: Float64Array.from(r.keys.map((k) => 2 ** KEY_BITS[k])),
}));

/** Distinct strings since the last drain, each with a small index (at most 2^bits of them). */
class Interned {
  readonly values: string[] = [];
  readonly #index = new Map<string, number>();
  readonly #limit: number;

  constructor(bits: number) {
    this.#limit = 2 ** bits;
  }

  /** The string's index, or -1 when the table is full. */
  indexOf(value: string): number {
    const known = this.#index.get(value);
    if (known !== undefined) return known;
    if (this.values.length === this.#limit) return -1;
    this.#index.set(value, this.values.length);
    this.values.push(value);
    return this.values.length - 1;
  }

  clear(): void {
    this.values.length = 0;
    this.#index.clear();
  }
}

/**
 * The roll-up counts of the events in the inbox, kept by the writer that put them there
 * (a few map updates an event, where a GROUP BY at the drain would scan the inbox once
 * a table). Should the packed keys overflow (thousands of distinct profile names from
 * one misbehaving gateway), the counts are given up and the drain counts in SQL.
 */
class InboxCounts {
  readonly tables: Map<number, number>[] = ROLLUPS.map(() => new Map());
  readonly schools = new Interned(KEY_BITS.school);
  readonly profiles = new Interned(KEY_BITS.profile);
  readonly categories = new Interned(KEY_BITS.category);
  readonly hosts = new Interned(KEY_BITS.host);
  /** The string tables by KEY_ORDER slot; null where the value is the number itself. */
  readonly #interned: readonly (Interned | null)[] = [null, null, this.schools, this.profiles, this.categories, this.hosts];
  events = 0;
  overflowed = false;
  readonly #months = new Map<number, number>();
  /** The current event's key values, indexed as KEY_ORDER. */
  readonly #values = new Float64Array(KEY_ORDER.length);

  add(school: string, event: WireEvent): void {
    this.events++;
    if (this.overflowed) return;
    const values = this.#values;
    const day = dayNumber(event.time);
    let month = this.#months.get(day);
    if (month === undefined) {
      month = monthOfDay(day);
      this.#months.set(day, month);
    }
    const schoolIndex = this.schools.indexOf(school);
    const profile = this.profiles.indexOf(event.profile);
    const category = this.categories.indexOf(event.category ?? '');
    const host = this.hosts.indexOf(event.host);
    if (schoolIndex < 0 || profile < 0 || category < 0 || host < 0 || day < 0 || day >= 2 ** KEY_BITS.day) {
      this.overflowed = true;
      return;
    }
    values[0] = day;
    values[1] = month;
    values[2] = schoolIndex;
    values[3] = profile;
    values[4] = category;
    values[5] = host;
    for (let r = 0; r < PACKING.length; r++) {
      const { slots, radices } = PACKING[r]!;
      let key = 0;
      for (let i = 0; i < slots.length; i++) key = key * radices[i]! + values[slots[i]!]!;
      const table = this.tables[r]!;
      table.set(key, (table.get(key) ?? 0) + 1);
    }
  }

  /** Table `r`'s counted rows as the upsert takes them: its key values, then the count. */
  *rows(r: number): Generator<(string | number)[]> {
    const { slots, radices } = PACKING[r]!;
    for (const [packed, n] of this.tables[r]!) {
      const row: (string | number)[] = new Array<string | number>(slots.length + 1);
      row[slots.length] = n;
      let rest = packed;
      for (let i = slots.length - 1; i >= 0; i--) {
        const value = rest % radices[i]!;
        rest = (rest - value) / radices[i]!;
        const interned = this.#interned[slots[i]!];
        row[i] = interned === null ? value : interned.values[value]!;
      }
      yield row;
    }
  }

  clear(): void {
    for (const table of this.tables) table.clear();
    for (const interned of this.#interned) interned?.clear();
    this.events = 0;
    this.overflowed = false;
    // Bounded: days are few.
    if (this.#months.size > 4_096) this.#months.clear();
  }
}

export function prepareEventWriter(db: SqliteDatabase): EventWriter {
  // New to the collector for this school: in neither the inbox (keyed by school and id) nor `events`.
  const insertInbox = db.prepare(
    `INSERT INTO events_inbox (${CENTRAL_EVENT_COLUMNS}) SELECT ${EVENT_PLACEHOLDERS}, ?, ? WHERE NOT EXISTS (SELECT 1 FROM events WHERE school = ? AND id = ?) ON CONFLICT DO NOTHING`,
  );
  // A visit's event arrives again when more of its requests came after it was sent: its count grows, nothing else changes.
  const raiseInboxCount = db.prepare('UPDATE events_inbox SET count = max(count, ?) WHERE school = ? AND id = ?');
  const raiseCount = db.prepare('UPDATE events SET count = max(count, ?) WHERE school = ? AND id = ?');
  // One row a school, so the dashboard can tell a silent gateway from a quiet school.
  const touchSchool = db.prepare(
    'INSERT INTO school_contact (school, last_at) VALUES (?, ?) ON CONFLICT DO UPDATE SET last_at = max(last_at, excluded.last_at)',
  );
  const counts = new InboxCounts();
  /** Which events of the last write were new, so only committed ones are counted. */
  let fresh: boolean[] = [];
  const writeTx = db.transaction((batches: readonly WriteBatch[]): number[] => {
    fresh = [];
    return batches.map(({ school, events, receivedAt }) => {
      touchSchool.run(school, receivedAt);
      let stored = 0;
      for (const e of events) {
        const isNew = insertInbox.run(...eventValues(e), school, receivedAt, school, e.id).changes === 1;
        fresh.push(isNew);
        if (isNew) stored++;
        else if ((e.count ?? 1) > 1 && raiseInboxCount.run(e.count, school, e.id).changes === 0) raiseCount.run(e.count, school, e.id);
      }
      return stored;
    });
  });
  const write = (batches: readonly WriteBatch[]): number[] => {
    const stored = writeTx.immediate(batches);
    let i = 0;
    for (const { school, events } of batches) {
      for (const e of events) if (fresh[i++]) counts.add(school, e);
    }
    fresh = [];
    return stored;
  };

  const lastSeq = db.prepare('SELECT last_seq FROM rollup_state WHERE id = 1').pluck();
  // The highest seq ever given (AUTOINCREMENT keeps it), not max(seq): retention may
  // delete the newest row (an old event sent late), which must not pull it below the watermark.
  const maxSeq = db.prepare("SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)").pluck();
  const setLastSeq = db.prepare('UPDATE rollup_state SET last_seq = ? WHERE id = 1');

  /** Adds counts to roll-up `r` from `rows`: a VALUES list, or a SELECT grouped by the keys. */
  const addTo = (r: Rollup, rows: string) =>
    db.prepare(`INSERT INTO ${r.table} (${r.keys.join(', ')}, n) ${rows} ON CONFLICT DO UPDATE SET n = n + excluded.n`);
  /** The GROUP BY over `source` (its WHERE ends in "true", which lets SQLite parse ON CONFLICT after a SELECT). */
  const countedFrom = (r: Rollup, source: string) => {
    const keys = r.keys.map((k) => KEY_SQL[k]).join(', ');
    return addTo(r, `SELECT ${keys}, count(*) FROM ${source} GROUP BY ${keys}`);
  };
  const rollupSql = ROLLUPS.map((r) => countedFrom(r, 'events WHERE seq > ? AND seq <= ? AND true'));
  const rollUpChunkTx = db.transaction((): boolean => {
    const from = lastSeq.get() as number;
    const newest = maxSeq.get() as number;
    if (newest <= from) return false;
    const to = Math.min(newest, from + ROLLUP_CHUNK);
    for (const statement of rollupSql) statement.run(from, to);
    setLastSeq.run(to);
    return to < newest;
  });

  const inboxSize = db.prepare('SELECT count(*) FROM events_inbox').pluck();
  const drains = db.prepare('SELECT drains FROM rollup_state WHERE id = 1').pluck();
  const countDrain = db.prepare('UPDATE rollup_state SET drains = drains + 1 WHERE id = 1');
  const move = db.prepare(`INSERT OR IGNORE INTO events (${CENTRAL_EVENT_COLUMNS}) SELECT ${CENTRAL_EVENT_COLUMNS} FROM events_inbox`);
  const empty = db.prepare('DELETE FROM events_inbox');
  const addCounted = ROLLUPS.map((r) => addTo(r, `VALUES (${r.keys.map(() => '?').join(', ')}, ?)`));
  // The inbox counted by SQL: for what another connection (or a run that crashed) left there.
  const recountInbox = ROLLUPS.map((r) => countedFrom(r, 'events_inbox WHERE true'));
  /** The drain count when this writer last drained: if it moved on, someone else drained. */
  let drainsSeen = drains.get() as number;
  const drainTx = db.transaction((): { moved: number; drains: number } => {
    const waiting = inboxSize.get() as number;
    if (waiting === 0) return { moved: 0, drains: drains.get() as number };
    // Past the watermark, `events` holds uncounted events: leave the counting of these
    // to the roll-up pass too, which must find them all past the watermark.
    const caughtUp = (lastSeq.get() as number) === (maxSeq.get() as number);
    const moved = move.run().changes;
    // Counted here only if every inbox row entered `events` (one already there, which
    // only a bulk load through the raw connection could do, is ignored by the move);
    // otherwise the roll-up pass counts exactly the rows that entered.
    if (caughtUp && moved === waiting) {
      if (!counts.overflowed && drainsSeen === (drains.get() as number) && waiting === counts.events) {
        addCounted.forEach((statement, r) => {
          for (const row of counts.rows(r)) statement.run(row);
        });
      } else {
        for (const statement of recountInbox) statement.run();
      }
      setLastSeq.run(maxSeq.get() as number);
    }
    empty.run();
    countDrain.run();
    return { moved: waiting, drains: drains.get() as number };
  });
  const drain = (): number => {
    const done = drainTx.immediate();
    // Only once committed: a drain that failed leaves the inbox and its counts as they were.
    counts.clear();
    drainsSeen = done.drains;
    return done.moved;
  };

  return {
    write,
    inboxed: () => counts.events,
    drain,
    rollUpChunk: () => rollUpChunkTx.immediate(),
    backlog: () => (maxSeq.get() as number) - (lastSeq.get() as number),
  };
}

/** Events waiting in the inbox, counted up to `max` (a bounded read). */
export function prepareInboxCount(db: SqliteDatabase): (max: number) => number {
  const count = db.prepare('SELECT count(*) FROM (SELECT 1 FROM events_inbox LIMIT ?)').pluck();
  return (max) => count.get(max) as number;
}
