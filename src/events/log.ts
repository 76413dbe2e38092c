/**
 * The gateway's event log (docs/events.md). Over ~400 lines on purpose: SqliteEventLog
 * is one state machine (batching, visit folding, the unwritable-store retry, the size
 * limit, retention) whose private fields every part reads and writes; split across
 * modules those would have to become public. What stands apart lives apart: readers
 * outside the proxy in log-readers.ts, the SQLite handling in src/storage/sqlite.ts,
 * the event's fields in event-schema.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { newEventId, referenceTail, shortReference } from './ids.js';
import { ClientPseudonymizer, loadOrCreateClientKey } from './pseudonym.js';
import { migrate, needsReopen, openPrivateDatabase, sqliteErrorCode, type SqliteDatabase } from '../storage/sqlite.js';
import { COUNT_INDEX, EVENT_COLUMNS, EVENT_PLACEHOLDERS, type EventValues } from './event-schema.js';
import type { BlockEventInput, EventLog } from './types.js';
import { LIMITS, clip, eventPath, wireFieldsOf, withoutNul, type WireEvent } from './wire.js';
import { queryEvents } from './log-readers.js';
import { REVIEW_LIMITS, type ReviewKind, type WireReviewRequest } from './review-wire.js';
import { GATEWAY_EVENT_RETENTION_DAYS } from '../privacy/retention.js';

export const EVENTS_DB_FILE = 'events.db';

/** What the log needs of a logger (pino fits). */
export interface EventLogger {
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

const SILENT: EventLogger = { warn() {}, error() {} };

export interface EventLogOptions {
  readonly dataDir: string;
  /** The school id this gateway ships as (null when it does not ship). */
  readonly school?: string | null;
  /** Events kept in memory while the store refuses writes (default MAX_UNFLUSHED); past it new ones are dropped and counted. */
  readonly maxUnflushed?: number;
  /** Rows written per transaction (default 500); a backlog is written in chunks of this. */
  readonly flushSize?: number;
  /** Days a shipped event stays in the local log (default 30). Unshipped events stay. */
  readonly retentionDays?: number;
  /**
   * Whether a shipper sends these events to a collector (default true). A gateway that
   * ships nothing (no --central) has no "unshipped" events to protect: retention then
   * applies to every event, so nothing is kept longer than `retentionDays`.
   */
  readonly shipping?: boolean;
  /** Bytes of live data past which the log raises its alarm and refuses new events once nothing shipped is left to drop (default 2 GiB). */
  readonly maxDbBytes?: number;
  readonly logger?: EventLogger;
}

/** A row of the local log. */
export interface StoredEvent extends WireEvent {
  readonly school: string | null;
  readonly shippedAt: number | null;
}

export interface EventQuery {
  readonly since?: number;
  readonly until?: number;
  readonly category?: string;
  readonly profile?: string;
  readonly limit?: number;
}

export interface ReviewRequestInput {
  /** `review`: "unblock this" from the block page; `report`: "this page should be blocked". */
  readonly kind?: ReviewKind;
  /** The reference from the block page (short or full id); empty for reports. */
  readonly eventRef: string;
  readonly host: string;
  /** The page, without its query (default `/`); for reviews the blocked event's path wins when the reference is found. */
  readonly path?: string;
  readonly category: string | null;
  readonly profile: string;
  readonly note: string;
  readonly clientAddress: string;
}

/** Read by the proxy's /metrics; `overLimit` is the disk alarm. */
export interface EventLogStats {
  /** Events recorded and not yet acknowledged by the collector (written or still in memory). */
  readonly pending: number;
  /** Events in the database. */
  readonly stored: number;
  /** Events recorded and not yet written (in memory). */
  readonly unflushed: number;
  /** Events lost since start: the memory bound reached while the store was unwritable, the size limit, or unwritable at shutdown. */
  readonly dropped: number;
  /** True while the store refuses writes (disk full, read-only, missing): events wait in memory. */
  readonly unwritable: boolean;
  /** Since when (ms since the epoch) the store refuses writes; null while writable. */
  readonly unwritableSince: number | null;
  /** Size of events.db and its WAL on disk. */
  readonly dbBytes: number;
  /** Bytes of live pages (what the limit applies to; freed pages are reused). */
  readonly usedBytes: number;
  readonly maxDbBytes: number;
  readonly overLimit: boolean;
  /** Age in ms of the oldest unshipped event, null when nothing waits. */
  readonly oldestPendingAge: number | null;
}

export interface GatewayEventLog extends EventLog {
  readonly school: string | null;
  readonly file: string;
  /**
   * Stores a student's "ask for review" from the block page; returns the review id, or
   * null when the store refused the write (logged; the proxy must not fail for it).
   */
  recordReviewRequest(input: ReviewRequestInput): number | null;
  /** The oldest review requests and reports not yet acknowledged by the collector. */
  unshippedReviews(limit: number): WireReviewRequest[];
  /** Marks these review request ids (the `uid`s sent) acknowledged; returns how many changed. */
  markReviewsShipped(ids: readonly string[], at?: number): number;
  /** Writes what `record()` buffered, now. */
  flush(): void;
  /** The device id events carry for this client address (a keyed hash): how logs and metrics name a client. */
  clientPseudonym(address: string): string;
  query(query?: EventQuery): StoredEvent[];
  stats(): EventLogStats;
  /** The oldest unshipped events, in id order (for the shipper). */
  unshipped(limit: number): WireEvent[];
  /**
   * Marks these ids acknowledged; returns how many changed. With `sent` (the events as
   * sent), an event whose count grew while it travelled stays unshipped, to go again.
   */
  markShipped(ids: readonly string[], at?: number, sent?: readonly WireEvent[]): number;
  /** Deletes shipped events past retention (and more while over the size limit); returns how many. */
  expire(now?: number): number;
}

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE events (
     id TEXT PRIMARY KEY,
     time INTEGER NOT NULL,
     school TEXT,
     profile TEXT NOT NULL,
     category TEXT,
     reason TEXT NOT NULL,
     rule TEXT,
     source TEXT,
     host TEXT NOT NULL,
     path TEXT NOT NULL,
     method TEXT NOT NULL,
     client TEXT NOT NULL,
     shipped_at INTEGER
   ) WITHOUT ROWID;
   CREATE INDEX events_time ON events(time);
   CREATE INDEX events_pending ON events(id) WHERE shipped_at IS NULL;
   CREATE TABLE reviews (
     id INTEGER PRIMARY KEY,
     time INTEGER NOT NULL,
     event_ref TEXT NOT NULL,
     event_id TEXT,
     host TEXT NOT NULL,
     category TEXT,
     profile TEXT NOT NULL,
     note TEXT NOT NULL,
     client TEXT NOT NULL,
     status TEXT NOT NULL DEFAULT 'open'
   );
   CREATE INDEX reviews_time ON reviews(time);`,
  // Review requests and reports travel to the district: a stable id the
  // collector keys on, the kind, the page, and whether the collector acknowledged it.
  // Rows written before this step get an id derived from their row number.
  `ALTER TABLE reviews ADD COLUMN uid TEXT;
   ALTER TABLE reviews ADD COLUMN kind TEXT NOT NULL DEFAULT 'review';
   ALTER TABLE reviews ADD COLUMN path TEXT NOT NULL DEFAULT '/';
   ALTER TABLE reviews ADD COLUMN shipped_at INTEGER;
   UPDATE reviews SET uid = 'R' || printf('%020d', id) WHERE uid IS NULL;
   CREATE UNIQUE INDEX reviews_uid ON reviews(uid);
   CREATE INDEX reviews_pending ON reviews(id) WHERE shipped_at IS NULL;`,
  // One event stands for the requests of one visit (see VISIT_WINDOW_MS).
  'ALTER TABLE events ADD COLUMN count INTEGER NOT NULL DEFAULT 1;',
];

const DAY_MS = 86_400_000;
const MAINTENANCE_INTERVAL_MS = 60_000;
const RETENTION_INTERVAL_MS = 3_600_000;
/**
 * Events kept in memory while the store refuses writes (~300 bytes each, so ~15 MiB);
 * past it each new event is dropped, counted and logged.
 */
export const MAX_UNFLUSHED = 50_000;
/** Retries of an unwritable store: first after this, doubling up to the maximum. */
const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 30_000;
/** Lost events are logged in one line per this interval (with their number), not one each. */
const LOSS_LOG_INTERVAL_MS = 10_000;
const EXPIRE_CHUNK = 5_000;
const METHOD_RE = /^[A-Z][A-Z-]{0,15}$/;

/**
 * Repeats from one device to one host and category within this long of the first are
 * folded into its event (a page, its favicon and the CONNECT before them are one visit):
 * the event's `count` grows instead of a new event being written.
 */
export const VISIT_WINDOW_MS = 30_000;
/** Visits remembered at once (~150 bytes each); past it the oldest is forgotten (its next repeat starts a new event). */
const MAX_VISITS = 20_000;

/** An event as written: its fields in EVENT_FIELDS order, then the school. */
type Row = [...EventValues, string | null];

/** A visit in the folding window: its event, and repeats counted since that event was written. */
interface Visit {
  readonly id: string;
  readonly reference: string;
  readonly start: number;
  /** The event's place among all events recorded since start (see #recorded). */
  readonly seq: number;
  /** Repeats not yet added to the written event. */
  pending: number;
}

/** A row of `events`: the event's fields and the log's own columns. */
export type DbRow = WireEvent & { readonly school: string | null; readonly shipped_at: number | null };

export function openEventLog(options: EventLogOptions): GatewayEventLog {
  return new SqliteEventLog(options);
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** An event's text as stored and shipped: bounded, no NUL (withoutNul). */
function text(value: string, limit: number): string {
  return clip(withoutNul(value), limit);
}

function cleanHost(host: string): string {
  const lower = text(host.trim().toLowerCase(), LIMITS.host);
  return lower.length === 0 ? '-' : lower.replace(/[\s/?#@]/g, '_');
}

function cleanMethod(method: string): string {
  const upper = method.trim().toUpperCase();
  return METHOD_RE.test(upper) ? upper : 'OTHER';
}

/** A page path as stored for a review request: no query, no fragment, bounded. */
function cleanPath(value: string | undefined): string {
  const path = eventPath(value ?? '/');
  return clip(path.startsWith('/') ? path : `/${path}`, LIMITS.path);
}

export interface ReviewRow {
  id: number;
  uid: string;
  kind: string;
  time: number;
  event_ref: string;
  event_id: string | null;
  host: string;
  path: string;
  category: string | null;
  profile: string;
  note: string;
  client: string;
  status: string;
  shipped_at: number | null;
}

function toWireReview(row: ReviewRow): WireReviewRequest {
  return {
    id: row.uid,
    kind: row.kind === 'report' ? 'report' : 'review',
    time: row.time,
    host: row.host,
    path: row.path,
    category: row.category,
    profile: row.profile,
    event: row.event_id,
    reference: row.event_ref === '' ? null : row.event_ref,
    note: clip(row.note, REVIEW_LIMITS.note),
    client: row.client,
  };
}

function nullableClip(value: string | null, limit: number): string | null {
  return value === null || value.length === 0 ? null : text(value, limit);
}

export function toStored(row: DbRow): StoredEvent {
  return { ...wireFieldsOf(row), school: row.school, shippedAt: row.shipped_at };
}

type Statements = ReturnType<typeof prepareStatements>;

/** Every statement of the log, prepared once per connection. */
function prepareStatements(db: SqliteDatabase) {
  const insert = db.prepare(`INSERT OR IGNORE INTO events (${EVENT_COLUMNS}, school) VALUES (${EVENT_PLACEHOLDERS}, ?)`);
  // A repeat after the event was written (and perhaps shipped): the event goes out again with its new count.
  const addRepeats = db.prepare('UPDATE events SET count = count + ?, shipped_at = NULL WHERE id = ?');
  const markOne = db.prepare('UPDATE events SET shipped_at = ? WHERE id = ? AND shipped_at IS NULL');
  const markOneAsSent = db.prepare('UPDATE events SET shipped_at = ? WHERE id = ? AND shipped_at IS NULL AND count = ?');
  const markReview = db.prepare('UPDATE reviews SET shipped_at = ? WHERE uid = ? AND shipped_at IS NULL');
  return {
    /** Rows [from, to) of `rows`, then the repeats of visits written before, in one transaction. */
    write: db.transaction((rows: readonly Row[], from: number, to: number, repeats: readonly Visit[]) => {
      for (let i = from; i < to; i++) insert.run(rows[i]!);
      for (const visit of repeats) if (visit.pending > 0) addRepeats.run(visit.pending, visit.id);
    }),
    markMany: db.transaction((ids: readonly string[], at: number, sentCounts: ReadonlyMap<string, number> | null) => {
      let changed = 0;
      for (const id of ids) {
        const count = sentCounts?.get(id);
        changed += (count === undefined ? markOne.run(at, id) : markOneAsSent.run(at, id, count)).changes;
      }
      return changed;
    }),
    unshipped: db.prepare<[number], DbRow>(`SELECT ${EVENT_COLUMNS}, school, shipped_at FROM events WHERE shipped_at IS NULL ORDER BY id LIMIT ?`),
    pendingCount: db.prepare('SELECT count(*) FROM events WHERE shipped_at IS NULL').pluck(),
    storedCount: db.prepare('SELECT count(*) FROM events').pluck(),
    oldestPending: db.prepare('SELECT time FROM events WHERE shipped_at IS NULL ORDER BY id LIMIT 1').pluck(),
    expireOld: db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events WHERE shipped_at IS NOT NULL AND time < ? ORDER BY time LIMIT ?)'),
    expireOldAll: db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time < ? ORDER BY time LIMIT ?)'),
    expireOldestAll: db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY time LIMIT ?)'),
    expireOldest: db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events WHERE shipped_at IS NOT NULL ORDER BY time LIMIT ?)'),
    findByTail: db.prepare('SELECT id FROM events WHERE id >= ? AND substr(id, 19) = ? ORDER BY id DESC LIMIT 1').pluck(),
    insertReview: db.prepare(
      'INSERT INTO reviews (uid, kind, time, event_ref, event_id, host, path, category, profile, note, client) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    eventById: db.prepare<[string], { host: string; path: string; category: string | null; profile: string }>(
      'SELECT host, path, category, profile FROM events WHERE id = ?',
    ),
    unshippedReviews: db.prepare<[number], ReviewRow>('SELECT * FROM reviews WHERE shipped_at IS NULL ORDER BY id LIMIT ?'),
    markReviews: db.transaction((ids: readonly string[], at: number) => {
      let changed = 0;
      for (const id of ids) changed += markReview.run(at, id).changes;
      return changed;
    }),
    expireReviews: db.prepare('DELETE FROM reviews WHERE time < ? AND shipped_at IS NOT NULL'),
    expireReviewsAll: db.prepare('DELETE FROM reviews WHERE time < ?'),
    pageCount: db.prepare('PRAGMA page_count').pluck(),
    freePages: db.prepare('PRAGMA freelist_count').pluck(),
    pageSize: db.prepare('PRAGMA page_size').pluck(),
  };
}

/**
 * The gateway's event log. How it treats its disk (docs/events.md):
 * - Written at the end of each turn of the event loop in which events were recorded, so
 *   a killed process loses at most the events of the requests it was answering in that
 *   turn (at most one a client connection).
 * - A store that refuses writes (disk full, read-only, removed) never stops filtering:
 *   events wait in memory up to MAX_UNFLUSHED, past which each new one is dropped,
 *   counted (`dropped`) and logged; the store is retried with backoff (1 s doubling to
 *   30 s), each retry writing at most one chunk before it knows the store is back, and
 *   the log recovers by itself when space returns.
 */
class SqliteEventLog implements GatewayEventLog {
  readonly school: string | null;
  readonly file: string;
  readonly #dataDir: string;
  #db: SqliteDatabase | null = null;
  #statements: Statements | null = null;
  #pseudonyms: ClientPseudonymizer;
  /** The key of this run while the data folder could hold none; written there once it can. */
  #temporaryKey: Buffer | null = null;
  readonly #logger: EventLogger;
  readonly #flushSize: number;
  readonly #maxUnflushed: number;
  readonly #retentionMs: number;
  readonly #maxDbBytes: number;
  readonly #shipping: boolean;
  /** Recorded, not yet written, oldest first. */
  #batch: Row[] = [];
  /** Events recorded since start (kept or not); a visit's `seq` is its place here. */
  #recorded = 0;
  /** How many of #recorded are written (or lost): the batch holds the ones after. */
  #written = 0;
  readonly #visits = new Map<string, Visit>();
  /** Visits with repeats not yet added to their written event. */
  #repeats: Visit[] = [];
  #flushSoon: NodeJS.Immediate | null = null;
  readonly #maintenanceTimer: NodeJS.Timeout;
  #retryTimer: NodeJS.Timeout | null = null;
  #retryDelay = RETRY_FIRST_MS;
  #unwritableSince: number | null = null;
  #lastError: string | null = null;
  #lastRetention = 0;
  #stored = 0;
  #usedBytes = 0;
  #dropped = 0;
  #droppedUnlogged = 0;
  #lastLossLog = 0;
  #lastWarning = 0;
  #closed = false;

  constructor(options: EventLogOptions) {
    this.school = options.school ?? null;
    this.#dataDir = options.dataDir;
    this.file = path.join(options.dataDir, EVENTS_DB_FILE);
    this.#logger = options.logger ?? SILENT;
    this.#flushSize = options.flushSize ?? 500;
    this.#maxUnflushed = options.maxUnflushed ?? MAX_UNFLUSHED;
    this.#retentionMs = (options.retentionDays ?? GATEWAY_EVENT_RETENTION_DAYS) * DAY_MS;
    this.#maxDbBytes = options.maxDbBytes ?? 2 * 1024 ** 3;
    this.#shipping = options.shipping ?? true;
    this.#pseudonyms = this.#loadPseudonyms();
    if (!this.#open()) this.#scheduleRetry();
    this.#maintenanceTimer = setInterval(() => this.#maintain(), MAINTENANCE_INTERVAL_MS);
    this.#maintenanceTimer.unref();
    this.#maintain();
  }

  record(event: BlockEventInput): string {
    const time = Number.isFinite(event.time) ? Math.floor(event.time) : Date.now();
    const client = this.#pseudonyms.pseudonym(event.clientAddress);
    const host = cleanHost(event.host);
    const category = nullableClip(event.category, LIMITS.label);
    const key = `${client} ${host} ${category ?? ''}`;
    const visit = this.#visits.get(key);
    if (visit !== undefined && time - visit.start < VISIT_WINDOW_MS && time >= visit.start && !this.#closed) {
      // A repeat: counted on the row still in memory, or added to the written event at the next write.
      if (visit.seq >= this.#written) this.#batch[visit.seq - this.#written]![COUNT_INDEX]++;
      else if (visit.pending++ === 0) this.#repeats.push(visit);
      this.#scheduleFlush();
      return visit.reference;
    }
    const id = newEventId(time);
    const reference = shortReference(id);
    if (this.#closed || this.#batch.length >= this.#maxUnflushed || this.#refusesNewEvents()) {
      this.#drop(1);
      return reference;
    }
    this.#batch.push([
      id,
      time,
      text(event.profile, LIMITS.label) || 'unknown',
      category,
      text(event.reason, LIMITS.reason) || 'unknown',
      nullableClip(event.rule, LIMITS.rule),
      nullableClip(event.source, LIMITS.source),
      host,
      eventPath(event.path),
      cleanMethod(event.method),
      client,
      1,
      this.school,
    ]);
    if (visit !== undefined) this.#visits.delete(key);
    else if (this.#visits.size >= MAX_VISITS) this.#visits.delete(this.#visits.keys().next().value!);
    this.#visits.set(key, { id, reference, start: time, seq: this.#recorded++, pending: 0 });
    this.#scheduleFlush();
    return reference;
  }

  recordReviewRequest(input: ReviewRequestInput): number | null {
    try {
      this.flush();
      const statements = this.#ready();
      const now = Date.now();
      const kind: ReviewKind = input.kind ?? 'review';
      const reference = kind === 'review' ? clip(input.eventRef.trim(), REVIEW_LIMITS.reference) : '';
      const tail = reference === '' ? null : referenceTail(reference);
      // The event was recorded at most a few days ago; bounding the search keeps it off the whole table.
      const since = newEventId(now - 7 * DAY_MS).slice(0, 10);
      const eventId = tail === null ? null : ((statements.findByTail.get(since, tail) as string | undefined) ?? null);
      // What the block page posts back is the client's word; the recorded event is ours.
      const event = eventId === null ? undefined : statements.eventById.get(eventId);
      const info = statements.insertReview.run(
        newEventId(now),
        kind,
        now,
        reference,
        eventId,
        cleanHost(event?.host ?? input.host),
        event?.path ?? cleanPath(input.path),
        event !== undefined ? event.category : nullableClip(input.category, LIMITS.label),
        text(event?.profile ?? input.profile, LIMITS.label) || 'unknown',
        text(input.note.trim(), REVIEW_LIMITS.note),
        this.#pseudonyms.pseudonym(input.clientAddress),
      );
      return Number(info.lastInsertRowid);
    } catch (error) {
      this.#logger.error({ err: error }, 'cannot store a review request');
      return null;
    }
  }

  unshippedReviews(limit: number): WireReviewRequest[] {
    return this.#statements === null ? [] : this.#statements.unshippedReviews.all(limit).map(toWireReview);
  }

  markReviewsShipped(ids: readonly string[], at: number = Date.now()): number {
    return ids.length === 0 || this.#statements === null ? 0 : this.#statements.markReviews(ids, at);
  }

  /** Writes what is waiting, unless the store is known to refuse writes (then its retry timer tries). */
  flush(): void {
    if (this.#unwritableSince === null) this.#write();
  }

  query(query: EventQuery = {}): StoredEvent[] {
    this.flush();
    return queryEvents(this.#dbOrThrow(), query);
  }

  stats(): EventLogStats {
    const statements = this.#statements;
    let pending = 0;
    let oldest: number | undefined;
    if (statements !== null) {
      try {
        this.#refreshUsedBytes();
        pending = statements.pendingCount.get() as number;
        oldest = statements.oldestPending.get() as number | undefined;
      } catch {
        // An unreadable store: what is known from memory still answers.
      }
    }
    const oldestInMemory = this.#batch.length > 0 ? this.#batch[0]![1] : undefined;
    if (oldest === undefined || (oldestInMemory !== undefined && oldestInMemory < oldest)) oldest = oldestInMemory;
    return {
      pending: pending + this.#batch.length,
      stored: this.#stored,
      unflushed: this.#batch.length,
      dropped: this.#dropped,
      unwritable: this.#unwritableSince !== null,
      unwritableSince: this.#unwritableSince,
      dbBytes: fileSize(this.file) + fileSize(`${this.file}-wal`),
      usedBytes: this.#usedBytes,
      maxDbBytes: this.#maxDbBytes,
      overLimit: this.#usedBytes > this.#maxDbBytes,
      oldestPendingAge: oldest === undefined ? null : Math.max(0, Date.now() - oldest),
    };
  }

  unshipped(limit: number): WireEvent[] {
    this.flush();
    if (this.#statements === null) return [];
    return (this.#statements.unshipped.all(limit) as DbRow[]).map(wireFieldsOf);
  }

  markShipped(ids: readonly string[], at: number = Date.now(), sent?: readonly WireEvent[]): number {
    if (ids.length === 0 || this.#statements === null) return 0;
    const sentCounts = sent === undefined ? null : new Map(sent.map((e) => [e.id, e.count ?? 1]));
    return this.#statements.markMany(ids, at, sentCounts) as number;
  }

  expire(now: number = Date.now()): number {
    this.flush();
    const statements = this.#ready();
    let removed = 0;
    for (;;) {
      const statement = this.#shipping ? statements.expireOld : statements.expireOldAll;
      const changes = statement.run(now - this.#retentionMs, EXPIRE_CHUNK).changes;
      removed += changes;
      if (changes < EXPIRE_CHUNK) break;
    }
    // Over the size limit: shipped events go oldest first, however young; unshipped never do.
    this.#refreshUsedBytes();
    while (this.#usedBytes > this.#maxDbBytes) {
      const oldest = this.#shipping ? statements.expireOldest : statements.expireOldestAll;
      const changes = oldest.run(EXPIRE_CHUNK).changes;
      removed += changes;
      this.#refreshUsedBytes();
      if (changes === 0) break;
    }
    this.#stored = Math.max(0, this.#stored - removed);
    // Review requests follow the same rule: kept until the district has them, then for the retention period.
    (this.#shipping ? statements.expireReviews : statements.expireReviewsAll).run(now - this.#retentionMs);
    return removed;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#maintenanceTimer);
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    // One last try, even while the store refused writes: the space may be back.
    if (this.#db !== null || this.#open()) this.#write();
    // Repeats of written events are not events: their loss only leaves a count short, said so in the log.
    const repeats = this.#repeats.reduce((sum, v) => sum + v.pending, 0);
    if (repeats > 0)
      this.#logger.error({ repeats, file: this.file }, 'event store unwritable at shutdown: repeats of written visits not added to their counts');
    this.#repeats = [];
    if (this.#batch.length > 0) {
      const lost = this.#batch.length;
      this.#batch = [];
      this.#drop(lost);
    }
    this.#logLosses(true);
    this.#visits.clear();
    this.#db?.close();
    this.#db = null;
    this.#statements = null;
  }

  clientPseudonym(address: string): string {
    return this.#pseudonyms.pseudonym(address);
  }

  /** The pseudonym key; while the data folder cannot hold one, a key of this run only (kept once the folder is writable). */
  #loadPseudonyms(): ClientPseudonymizer {
    try {
      mkdirSync(this.#dataDir, { recursive: true, mode: 0o750 });
      return new ClientPseudonymizer(loadOrCreateClientKey(this.#dataDir));
    } catch (error) {
      this.#temporaryKey = randomBytes(32);
      this.#logger.error(
        { err: error, dataDir: this.#dataDir },
        'cannot read or create the client key: this run uses a key of its own, saved once the data folder is writable',
      );
      return new ClientPseudonymizer(this.#temporaryKey);
    }
  }

  /** Opens (or reopens) the store; false, with the reason kept, when it cannot. */
  #open(): boolean {
    this.#closeDb();
    let db: SqliteDatabase | null = null;
    try {
      mkdirSync(this.#dataDir, { recursive: true, mode: 0o750 });
      if (this.#temporaryKey !== null) {
        // Saved as the folder's key unless one appeared meanwhile (then that one is used from now on).
        this.#pseudonyms = new ClientPseudonymizer(loadOrCreateClientKey(this.#dataDir, this.#temporaryKey));
        this.#temporaryKey = null;
      }
      // Events are personal data: the file (and the WAL and shm files SQLite derives
      // from its mode) is readable by the gateway's user only.
      db = openPrivateDatabase(this.file);
      migrate(db, MIGRATIONS, this.file);
      this.#statements = prepareStatements(db);
      this.#db = db;
      this.#stored = this.#statements.storedCount.get() as number;
      this.#refreshUsedBytes();
      return true;
    } catch (error) {
      // A store written by a newer lachan is not a disk problem: refusing to start says so.
      if ((error as { code?: unknown }).code === 'LACHAN_SCHEMA_TOO_NEW') throw error;
      try {
        db?.close();
      } catch {
        // already unusable
      }
      this.#statements = null;
      this.#becameUnwritable(error);
      return false;
    }
  }

  #closeDb(): void {
    const db = this.#db;
    this.#db = null;
    this.#statements = null;
    try {
      db?.close();
    } catch {
      // A connection on a failing disk may not close cleanly; it is dropped either way.
    }
  }

  /** The statements, or the reason the store cannot be used now. */
  #ready(): Statements {
    if (this.#statements === null)
      throw Object.assign(new Error(`event store unwritable: ${this.#lastError ?? 'not open'}`), { code: 'LACHAN_EVENT_STORE_UNWRITABLE' });
    return this.#statements;
  }

  #dbOrThrow(): SqliteDatabase {
    this.#ready();
    return this.#db!;
  }

  /** Writes the batch in chunks of #flushSize, then the repeats; stops at the first failure, keeping what is not written. */
  #write(): void {
    if (this.#flushSoon !== null) {
      clearImmediate(this.#flushSoon);
      this.#flushSoon = null;
    }
    this.#forgetClosedVisits();
    if (this.#batch.length === 0 && this.#repeats.length === 0) return;
    const statements = this.#statements;
    if (statements === null) return;
    const rows = this.#batch;
    let done = 0;
    try {
      while (done < rows.length) {
        const to = Math.min(rows.length, done + this.#flushSize);
        statements.write(rows, done, to, to === rows.length ? this.#repeats : []);
        this.#stored += to - done;
        this.#written += to - done;
        done = to;
      }
      if (rows.length === 0) statements.write(rows, 0, 0, this.#repeats);
      this.#batch = [];
      for (const visit of this.#repeats) visit.pending = 0;
      this.#repeats = [];
      this.#becameWritable();
    } catch (error) {
      if (done > 0) this.#batch = rows.slice(done);
      this.#becameUnwritable(error);
      if (needsReopen(error)) this.#closeDb();
    }
  }

  #scheduleFlush(): void {
    // At the end of this turn of the event loop, after the responses it wrote: every
    // event recorded in the turn goes in one transaction.
    if (this.#flushSoon === null && this.#unwritableSince === null && !this.#closed) {
      this.#flushSoon = setImmediate(() => {
        this.#flushSoon = null;
        this.#write();
      });
    }
  }

  #becameUnwritable(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.#lastError = message;
    if (this.#unwritableSince === null) {
      this.#unwritableSince = Date.now();
      this.#retryDelay = RETRY_FIRST_MS;
      this.#logger.error(
        {
          err: error,
          code: sqliteErrorCode(error) ?? (error as { code?: unknown }).code,
          file: this.file,
          waiting: this.#batch.length,
          memoryBound: this.#maxUnflushed,
        },
        'event store unwritable: filtering continues; events wait in memory and the store is retried',
      );
    }
    this.#scheduleRetry();
  }

  #becameWritable(): void {
    if (this.#unwritableSince === null) return;
    this.#logger.warn(
      { file: this.file, unwritableMs: Date.now() - this.#unwritableSince, droppedSinceStart: this.#dropped },
      'event store writable again: waiting events written',
    );
    this.#unwritableSince = null;
    this.#lastError = null;
    this.#retryDelay = RETRY_FIRST_MS;
    this.#logLosses(true);
  }

  #scheduleRetry(): void {
    if (this.#retryTimer !== null || this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (this.#closed) return;
      if (this.#statements !== null || this.#open()) this.#write();
      if (this.#unwritableSince !== null) {
        this.#retryDelay = Math.min(RETRY_MAX_MS, this.#retryDelay * 2);
        this.#scheduleRetry();
      }
    }, this.#retryDelay);
    this.#retryTimer.unref();
  }

  /** Drops visits whose window has closed (the map is in order of first request). */
  #forgetClosedVisits(): void {
    if (this.#visits.size === 0) return;
    const before = Date.now() - VISIT_WINDOW_MS;
    for (const [key, visit] of this.#visits) {
      if (visit.start >= before) break;
      // Repeats still to be written keep their visit in #repeats.
      this.#visits.delete(key);
    }
  }

  #refusesNewEvents(): boolean {
    return this.#usedBytes > this.#maxDbBytes;
  }

  #drop(events: number): void {
    this.#dropped += events;
    this.#droppedUnlogged += events;
    this.#logLosses(false);
  }

  /** Logs the events lost since the last such line: at once when `now`, else at most every LOSS_LOG_INTERVAL_MS. */
  #logLosses(now: boolean): void {
    if (this.#droppedUnlogged === 0) return;
    const at = Date.now();
    if (!now && at - this.#lastLossLog < LOSS_LOG_INTERVAL_MS) return;
    this.#lastLossLog = at;
    this.#logger.error(
      {
        lost: this.#droppedUnlogged,
        droppedSinceStart: this.#dropped,
        reason: this.#closed ? 'closing' : this.#unwritableSince !== null ? 'unwritable' : 'over-size-limit',
        waiting: this.#batch.length,
        usedBytes: this.#usedBytes,
        maxDbBytes: this.#maxDbBytes,
      },
      'events lost: not recorded in the event store',
    );
    this.#droppedUnlogged = 0;
  }

  #warn(object: object, message: string): void {
    const now = Date.now();
    if (now - this.#lastWarning < 60_000) return;
    this.#lastWarning = now;
    this.#logger.warn(object, message);
  }

  #refreshUsedBytes(): void {
    const statements = this.#statements;
    if (statements === null) return;
    const pages = (statements.pageCount.get() as number) - (statements.freePages.get() as number);
    this.#usedBytes = pages * (statements.pageSize.get() as number);
  }

  #maintain(): void {
    if (this.#closed) return;
    this.#logLosses(false);
    if (this.#statements === null) return;
    try {
      this.#refreshUsedBytes();
      const now = Date.now();
      if (now - this.#lastRetention >= RETENTION_INTERVAL_MS || this.#usedBytes > this.#maxDbBytes) {
        this.#lastRetention = now;
        this.expire(now);
      }
      this.#stored = this.#statements.storedCount.get() as number;
      if (this.#usedBytes > this.#maxDbBytes) {
        this.#warn(
          { usedBytes: this.#usedBytes, maxDbBytes: this.#maxDbBytes },
          'event log over its size limit: new events are dropped until the collector acknowledges older ones',
        );
      }
    } catch (error) {
      this.#logger.error({ err: error }, 'event log maintenance failed');
    }
  }
}

export { readEventLog, readReviewRequests, type ReviewRequest } from './log-readers.js';
