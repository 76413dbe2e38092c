import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import path from 'node:path';
import { newEventId, referenceTail, shortReference } from './ids.js';
import { ClientPseudonymizer, loadOrCreateClientKey } from './pseudonym.js';
import { migrate } from './schema.js';
import type { BlockEventInput, EventLog } from './types.js';
import { LIMITS, clip, stripQuery, wireFieldsOf, type WireEvent } from './wire.js';
import { REVIEW_LIMITS, type ReviewKind, type WireReviewRequest } from './review-wire.js';

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
  readonly flushIntervalMs?: number;
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
  /** Events lost since start because the log was over its size limit or the disk failed. */
  readonly dropped: number;
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
  query(query?: EventQuery): StoredEvent[];
  stats(): EventLogStats;
  /** The oldest unshipped events, in id order (for the shipper). */
  unshipped(limit: number): WireEvent[];
  /** Marks these ids acknowledged; returns how many changed. */
  markShipped(ids: readonly string[], at?: number): number;
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
];

const DAY_MS = 86_400_000;
const MAINTENANCE_INTERVAL_MS = 60_000;
const RETENTION_INTERVAL_MS = 3_600_000;
/** Events kept in memory while the disk refuses writes, before new ones are dropped. */
const MAX_UNFLUSHED = 50_000;
const EXPIRE_CHUNK = 5_000;
const METHOD_RE = /^[A-Z][A-Z-]{0,15}$/;

type Row = [string, number, string | null, string, string | null, string, string | null, string | null, string, string, string, string];

interface DbRow {
  id: string;
  time: number;
  school: string | null;
  profile: string;
  category: string | null;
  reason: string;
  rule: string | null;
  source: string | null;
  host: string;
  path: string;
  method: string;
  client: string;
  shipped_at: number | null;
}

/** Configures a connection the way every lachan SQLite file is used. */
export function tuneConnection(db: Database.Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
}

/** SQLite's error code (`SQLITE_BUSY`, `SQLITE_CONSTRAINT_UNIQUE`…) of an error better-sqlite3 raised; undefined for any other error. */
export function sqliteErrorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

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

function cleanHost(host: string): string {
  const lower = clip(host.trim().toLowerCase(), LIMITS.host);
  return lower.length === 0 ? '-' : lower.replace(/[\s/?#@]/g, '_');
}

function cleanMethod(method: string): string {
  const upper = method.trim().toUpperCase();
  return METHOD_RE.test(upper) ? upper : 'OTHER';
}

/** A page path as stored for a review request: no query, no fragment, bounded. */
function cleanPath(value: string | undefined): string {
  const path = stripQuery(value ?? '/').split('#', 1)[0]!;
  return clip(path.startsWith('/') ? path : `/${path}`, LIMITS.path);
}

interface ReviewRow {
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
  return value === null || value.length === 0 ? null : clip(value, limit);
}

function toStored(row: DbRow): StoredEvent {
  return { ...wireFieldsOf(row), school: row.school, shippedAt: row.shipped_at };
}

class SqliteEventLog implements GatewayEventLog {
  readonly school: string | null;
  readonly file: string;
  readonly #db: Database.Database;
  readonly #pseudonyms: ClientPseudonymizer;
  readonly #logger: EventLogger;
  readonly #flushIntervalMs: number;
  readonly #flushSize: number;
  readonly #retentionMs: number;
  readonly #maxDbBytes: number;
  readonly #shipping: boolean;
  readonly #insertMany: (rows: readonly Row[]) => void;
  readonly #statements;
  #batch: Row[] = [];
  #flushTimer: NodeJS.Timeout | null = null;
  #flushSoon: NodeJS.Immediate | null = null;
  readonly #maintenanceTimer: NodeJS.Timeout;
  #lastRetention = 0;
  #stored: number;
  #usedBytes = 0;
  #dropped = 0;
  #lastWarning = 0;
  #closed = false;

  constructor(options: EventLogOptions) {
    mkdirSync(options.dataDir, { recursive: true, mode: 0o750 });
    this.school = options.school ?? null;
    this.file = path.join(options.dataDir, EVENTS_DB_FILE);
    this.#logger = options.logger ?? SILENT;
    this.#flushIntervalMs = options.flushIntervalMs ?? 200;
    this.#flushSize = options.flushSize ?? 500;
    this.#retentionMs = (options.retentionDays ?? 30) * DAY_MS;
    this.#maxDbBytes = options.maxDbBytes ?? 2 * 1024 ** 3;
    this.#shipping = options.shipping ?? true;
    this.#pseudonyms = new ClientPseudonymizer(loadOrCreateClientKey(options.dataDir));

    // Events are personal data: the file (and the WAL and shm files SQLite derives
    // from its mode) is readable by the gateway's user only.
    closeSync(openSync(this.file, 'a', 0o600));
    const db = new Database(this.file);
    this.#db = db;
    tuneConnection(db);
    migrate(db, MIGRATIONS, this.file);

    const insert = db.prepare(
      'INSERT OR IGNORE INTO events (id, time, school, profile, category, reason, rule, source, host, path, method, client) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.#insertMany = db.transaction((rows: readonly Row[]) => {
      for (const row of rows) insert.run(row);
    });
    const markOne = db.prepare('UPDATE events SET shipped_at = ? WHERE id = ? AND shipped_at IS NULL');
    const markReview = db.prepare('UPDATE reviews SET shipped_at = ? WHERE uid = ? AND shipped_at IS NULL');
    this.#statements = {
      markMany: db.transaction((ids: readonly string[], at: number) => {
        let changed = 0;
        for (const id of ids) changed += markOne.run(at, id).changes;
        return changed;
      }),
      unshipped: db.prepare<[number], DbRow>(
        'SELECT id, time, school, profile, category, reason, rule, source, host, path, method, client, shipped_at FROM events WHERE shipped_at IS NULL ORDER BY id LIMIT ?',
      ),
      pendingCount: db.prepare('SELECT count(*) FROM events WHERE shipped_at IS NULL').pluck(),
      storedCount: db.prepare('SELECT count(*) FROM events').pluck(),
      oldestPending: db.prepare('SELECT time FROM events WHERE shipped_at IS NULL ORDER BY id LIMIT 1').pluck(),
      expireOld: db.prepare(
        'DELETE FROM events WHERE id IN (SELECT id FROM events WHERE shipped_at IS NOT NULL AND time < ? ORDER BY time LIMIT ?)',
      ),
      expireOldAll: db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time < ? ORDER BY time LIMIT ?)'),
      expireOldestAll: db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY time LIMIT ?)'),
      expireOldest: db.prepare(
        'DELETE FROM events WHERE id IN (SELECT id FROM events WHERE shipped_at IS NOT NULL ORDER BY time LIMIT ?)',
      ),
      findByTail: db.prepare('SELECT id FROM events WHERE id >= ? AND substr(id, 19) = ? ORDER BY id DESC LIMIT 1').pluck(),
      insertReview: db.prepare(
        'INSERT INTO reviews (uid, kind, time, event_ref, event_id, host, path, category, profile, note, client) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      eventById: db.prepare<[string], { host: string; path: string; category: string | null; profile: string }>('SELECT host, path, category, profile FROM events WHERE id = ?'),
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
    this.#stored = this.#statements.storedCount.get() as number;
    this.#refreshUsedBytes();
    this.#maintenanceTimer = setInterval(() => this.#maintain(), MAINTENANCE_INTERVAL_MS);
    this.#maintenanceTimer.unref();
    this.#maintain();
  }

  record(event: BlockEventInput): string {
    const time = Number.isFinite(event.time) ? Math.floor(event.time) : Date.now();
    const id = newEventId(time);
    if (this.#closed || this.#batch.length >= MAX_UNFLUSHED || this.#refusesNewEvents()) {
      this.#drop();
      return shortReference(id);
    }
    this.#batch.push([
      id,
      time,
      this.school,
      clip(event.profile, LIMITS.label) || 'unknown',
      nullableClip(event.category, LIMITS.label),
      clip(event.reason, LIMITS.reason) || 'unknown',
      nullableClip(event.rule, LIMITS.rule),
      nullableClip(event.source, LIMITS.source),
      cleanHost(event.host),
      stripQuery(event.path),
      cleanMethod(event.method),
      this.#pseudonyms.pseudonym(event.clientAddress),
    ]);
    this.#scheduleFlush();
    return shortReference(id);
  }

  recordReviewRequest(input: ReviewRequestInput): number | null {
    try {
      this.flush();
      const now = Date.now();
      const kind: ReviewKind = input.kind ?? 'review';
      const reference = kind === 'review' ? clip(input.eventRef.trim(), REVIEW_LIMITS.reference) : '';
      const tail = reference === '' ? null : referenceTail(reference);
      // The event was recorded at most a few days ago; bounding the search keeps it off the whole table.
      const since = newEventId(now - 7 * DAY_MS).slice(0, 10);
      const eventId = tail === null ? null : ((this.#statements.findByTail.get(since, tail) as string | undefined) ?? null);
      // What the block page posts back is the client's word; the recorded event is ours.
      const event = eventId === null ? undefined : this.#statements.eventById.get(eventId);
      const info = this.#statements.insertReview.run(
        newEventId(now),
        kind,
        now,
        reference,
        eventId,
        cleanHost(event?.host ?? input.host),
        event?.path ?? cleanPath(input.path),
        event !== undefined ? event.category : nullableClip(input.category, LIMITS.label),
        clip(event?.profile ?? input.profile, LIMITS.label) || 'unknown',
        clip(input.note.trim(), REVIEW_LIMITS.note),
        this.#pseudonyms.pseudonym(input.clientAddress),
      );
      return Number(info.lastInsertRowid);
    } catch (error) {
      this.#logger.error({ err: error }, 'cannot store a review request');
      return null;
    }
  }

  unshippedReviews(limit: number): WireReviewRequest[] {
    return this.#statements.unshippedReviews.all(limit).map(toWireReview);
  }

  markReviewsShipped(ids: readonly string[], at: number = Date.now()): number {
    return ids.length === 0 ? 0 : this.#statements.markReviews(ids, at);
  }

  flush(): void {
    if (this.#flushTimer !== null) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = null;
    }
    if (this.#flushSoon !== null) {
      clearImmediate(this.#flushSoon);
      this.#flushSoon = null;
    }
    if (this.#batch.length === 0) return;
    const rows = this.#batch;
    this.#batch = [];
    try {
      this.#insertMany(rows);
      this.#stored += rows.length;
    } catch (error) {
      // Disk full or locked: keep the rows for the next attempt, up to the memory bound.
      this.#batch = rows.concat(this.#batch).slice(0, MAX_UNFLUSHED);
      this.#warn({ err: error, unflushed: this.#batch.length }, 'event log write failed; will retry');
      if (!this.#closed) this.#scheduleFlush();
    }
  }

  query(query: EventQuery = {}): StoredEvent[] {
    this.flush();
    return queryEvents(this.#db, query);
  }

  stats(): EventLogStats {
    this.#refreshUsedBytes();
    const pending = this.#statements.pendingCount.get() as number;
    const oldest = this.#statements.oldestPending.get() as number | undefined;
    return {
      pending: pending + this.#batch.length,
      stored: this.#stored,
      unflushed: this.#batch.length,
      dropped: this.#dropped,
      dbBytes: fileSize(this.file) + fileSize(`${this.file}-wal`),
      usedBytes: this.#usedBytes,
      maxDbBytes: this.#maxDbBytes,
      overLimit: this.#usedBytes > this.#maxDbBytes,
      oldestPendingAge: oldest === undefined ? null : Math.max(0, Date.now() - oldest),
    };
  }

  unshipped(limit: number): WireEvent[] {
    this.flush();
    return (this.#statements.unshipped.all(limit) as DbRow[]).map(wireFieldsOf);
  }

  markShipped(ids: readonly string[], at: number = Date.now()): number {
    if (ids.length === 0) return 0;
    return this.#statements.markMany(ids, at) as number;
  }

  expire(now: number = Date.now()): number {
    this.flush();
    let removed = 0;
    for (;;) {
      const statement = this.#shipping ? this.#statements.expireOld : this.#statements.expireOldAll;
      const changes = statement.run(now - this.#retentionMs, EXPIRE_CHUNK).changes;
      removed += changes;
      if (changes < EXPIRE_CHUNK) break;
    }
    // Over the size limit: shipped events go oldest first, however young; unshipped never do.
    this.#refreshUsedBytes();
    while (this.#usedBytes > this.#maxDbBytes) {
      const oldest = this.#shipping ? this.#statements.expireOldest : this.#statements.expireOldestAll;
      const changes = oldest.run(EXPIRE_CHUNK).changes;
      removed += changes;
      this.#refreshUsedBytes();
      if (changes === 0) break;
    }
    this.#stored = Math.max(0, this.#stored - removed);
    // Review requests follow the same rule: kept until the district has them, then for the retention period.
    (this.#shipping ? this.#statements.expireReviews : this.#statements.expireReviewsAll).run(now - this.#retentionMs);
    return removed;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#maintenanceTimer);
    this.flush();
    this.#db.close();
  }

  #scheduleFlush(): void {
    if (this.#batch.length >= this.#flushSize) {
      // Full batch: write on the next turn of the event loop, not inside the request.
      if (this.#flushSoon === null) this.#flushSoon = setImmediate(() => this.flush());
      return;
    }
    if (this.#flushTimer === null) {
      this.#flushTimer = setTimeout(() => this.flush(), this.#flushIntervalMs);
      this.#flushTimer.unref();
    }
  }

  #refusesNewEvents(): boolean {
    return this.#usedBytes > this.#maxDbBytes;
  }

  #drop(): void {
    this.#dropped++;
    this.#warn({ dropped: this.#dropped, usedBytes: this.#usedBytes, maxDbBytes: this.#maxDbBytes }, 'event log full or closed: event dropped');
  }

  #warn(object: object, message: string): void {
    const now = Date.now();
    if (now - this.#lastWarning < 60_000) return;
    this.#lastWarning = now;
    this.#logger.warn(object, message);
  }

  #refreshUsedBytes(): void {
    const pages = (this.#statements.pageCount.get() as number) - (this.#statements.freePages.get() as number);
    this.#usedBytes = pages * (this.#statements.pageSize.get() as number);
  }

  #maintain(): void {
    if (this.#closed) return;
    try {
      this.#refreshUsedBytes();
      const now = Date.now();
      if (now - this.#lastRetention >= RETENTION_INTERVAL_MS || this.#usedBytes > this.#maxDbBytes) {
        this.#lastRetention = now;
        this.expire(now);
      }
      this.#stored = this.#statements.storedCount.get() as number;
      if (this.#usedBytes > this.#maxDbBytes) {
        this.#warn({ usedBytes: this.#usedBytes, maxDbBytes: this.#maxDbBytes }, 'event log over its size limit: new events are dropped until the collector acknowledges older ones');
      }
    } catch (error) {
      this.#logger.error({ err: error }, 'event log maintenance failed');
    }
  }
}


function queryEvents(db: Database.Database, query: EventQuery): StoredEvent[] {
  const where: string[] = [];
  const params: (string | number)[] = [];
  if (query.since !== undefined) {
    where.push('time >= ?');
    params.push(query.since);
  }
  if (query.until !== undefined) {
    where.push('time < ?');
    params.push(query.until);
  }
  if (query.category !== undefined) {
    where.push('category = ?');
    params.push(query.category);
  }
  if (query.profile !== undefined) {
    where.push('profile = ?');
    params.push(query.profile);
  }
  const sql =
    'SELECT id, time, school, profile, category, reason, rule, source, host, path, method, client, shipped_at FROM events' +
    (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
    ' ORDER BY time, id' +
    (query.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(query.limit))}` : '');
  return (db.prepare(sql).all(...params) as DbRow[]).map(toStored);
}

/**
 * Reads events from `<dataDir>/events.db` without creating anything (for `lachan logs`,
 * which may run beside the proxy that writes the file).
 */
export function readEventLog(dataDir: string, query: EventQuery = {}): StoredEvent[] {
  const file = path.join(dataDir, EVENTS_DB_FILE);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    return queryEvents(db, query);
  } finally {
    db.close();
  }
}

/** A request from the block page to review a block, or a report of a page that was not blocked. */
export interface ReviewRequest {
  readonly id: number;
  readonly kind: ReviewKind;
  readonly time: number;
  readonly eventRef: string;
  /** The event the reference named, when it was found. */
  readonly eventId: string | null;
  readonly host: string;
  readonly path: string;
  readonly category: string | null;
  readonly profile: string;
  readonly note: string;
  readonly client: string;
  readonly status: string;
  /** When the district collector acknowledged it (null: not yet, or this gateway does not ship). */
  readonly shippedAt: number | null;
}

/** Reads review requests from `<dataDir>/events.db` (oldest first) without creating anything. */
export function readReviewRequests(dataDir: string, since?: number): ReviewRequest[] {
  const db = new Database(path.join(dataDir, EVENTS_DB_FILE), { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    // A file the proxy has not migrated yet lacks the newer columns: they read as their defaults.
    const rows = db.prepare<[number], Partial<ReviewRow> & Omit<ReviewRow, 'uid' | 'kind' | 'path' | 'shipped_at'>>('SELECT * FROM reviews WHERE time >= ? ORDER BY time, id').all(since ?? 0);
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind === 'report' ? 'report' : 'review',
      time: r.time,
      eventRef: r.event_ref,
      eventId: r.event_id,
      host: r.host,
      path: r.path ?? '/',
      category: r.category,
      profile: r.profile,
      note: r.note,
      client: r.client,
      status: r.status,
      shippedAt: r.shipped_at ?? null,
    }));
  } finally {
    db.close();
  }
}
