/**
 * The collector's store on one SQLite file (the embedded default; see docs/contract.md
 * §10): schools, ingest through the inbox (event-writer.ts), the events API and the
 * statistics (stats-plan.ts), and the district's tables for the dashboard.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { isBusy, migrate, openPrivateDatabase, type SqliteDatabase } from '../storage/sqlite.js';
import { sqliteConnection } from '../storage/sql.js';
import { loadOrCreateSigner } from './signing-key.js';
import type { WireEvent } from '../events/event-schema.js';
import { AccountStore } from './accounts.js';
import { SqliteAlertStore } from './alerts-sqlite.js';
import { eventsPage, planEventsPage, type EventRow } from './events-page.js';
import { DashboardQueries } from './dashboard/queries.js';
import { openDistrict, type District } from './district.js';
import type { AuditSink } from './district-policy.js';
import { eraseSchoolDevices } from './erasures.js';
import { CENTRAL_MIGRATIONS } from './sqlite-schema.js';
import { planStats, statsFromRows, type PlannedQuery } from './stats-plan.js';
import {
  StoreError,
  type CollectorDatabase,
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
import { INBOX_DRAIN_EVENTS, prepareEventWriter, prepareInboxCount, ROLLUP_CHUNK, ROLLUP_INTERVAL_MS, tuneWriter, type EventWriter } from './event-writer.js';
import { WriterThread } from './writer-thread.js';

export const CENTRAL_DB_FILE = 'central.db';

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

export { CENTRAL_MIGRATIONS, EVENT_INDEXES } from './sqlite-schema.js';
export { MONTHLY_AFTER_DAYS } from './stats-plan.js';

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
  /**
   * Every query first moves the whole inbox into `events`, however large (default false).
   * For one-shot readers such as the CLI: a serving collector leaves a burst to its
   * background, but a command that answers once and exits has no later to leave it to.
   */
  readonly exactQueries?: boolean;
}

export function openSqliteStore(options: SqliteStoreOptions): SqliteCentralStore {
  return new SqliteCentralStore(options);
}

function toSchool(row: SchoolRow): School {
  return { id: row.id, name: row.name, createdAt: row.created_at, revokedAt: row.revoked_at };
}

export class SqliteCentralStore implements CollectorDatabase {
  readonly file: string;
  readonly #db: SqliteDatabase;
  #accounts: AccountStore | null = null;
  #queries: DashboardQueries | null = null;
  #alerts: SqliteAlertStore | null = null;
  readonly #statements;
  readonly #writer: EventWriter;
  readonly #inboxCount: (max: number) => number;
  readonly #rollupTimer: NodeJS.Timeout;
  readonly #thread: WriterThread | null;
  readonly #exactQueries: boolean;
  #rollingUp = false;
  #closed = false;
  #pending: PendingIngest[] = [];
  #pendingEvents = 0;
  #groupTimer: NodeJS.Timeout | null = null;

  constructor(options: SqliteStoreOptions) {
    mkdirSync(options.dataDir, { recursive: true, mode: 0o750 });
    this.file = path.join(options.dataDir, CENTRAL_DB_FILE);
    const db = openPrivateDatabase(this.file);
    this.#db = db;
    const cacheMiB = options.cacheMiB ?? 256;
    tuneWriter(db, cacheMiB);
    migrate(db, CENTRAL_MIGRATIONS, this.file);

    this.#writer = prepareEventWriter(db);
    this.#inboxCount = prepareInboxCount(db);
    this.#exactQueries = options.exactQueries ?? false;
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
      batches.forEach((batch, i) => {
        batch.stored = stored[i]!;
      });
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
    return thread?.started ? thread.inboxSize() : this.#inboxCount(max);
  }

  /**
   * Before a query: a small inbox moved into `events` (on the writer thread when it
   * runs, else here) and a small roll-up backlog folded in, so the answer is exact; a
   * large one (a burst of ingest) is left to the background rather than charged to
   * this query, unless the store was opened with `exactQueries`.
   */
  async #settle(): Promise<void> {
    const exact = this.#exactQueries;
    const waiting = this.#inboxSize(exact ? Number.MAX_SAFE_INTEGER : QUERY_DRAIN_MAX + 1);
    try {
      if (waiting > 0 && (exact || waiting <= QUERY_DRAIN_MAX)) {
        const thread = this.#thread;
        if (thread?.started) await thread.drain();
        else this.#writer.drain();
      }
      if (exact || this.#writer.backlog() <= ROLLUP_CHUNK) this.rollUp();
    } catch (error) {
      // Busy (another process holds the write lock): answer from what is moved and
      // counted now; pendingRollup says how much is not. Anything else (a full disk, a
      // damaged file) is the caller's to see, not to be answered around.
      if (!isBusy(error)) throw error;
    }
  }

  async queryEvents(filter: EventFilter, page: PageRequest): Promise<EventPage> {
    const query = planEventsPage(filter, page);
    await this.#settle();
    return eventsPage(this.#db.prepare<(string | number)[], EventRow>(query.sql).all(...query.params), query.limit);
  }

  async stats(filter: StatsFilter): Promise<Stats> {
    const plan = planStats(filter);
    await this.#settle();
    const pendingRollup = this.#writer.backlog() + this.#inboxSize(Number.MAX_SAFE_INTEGER);
    const run = <Row>(query: PlannedQuery): Row[] => this.#db.prepare<unknown[], Row>(query.sql).all(...query.params);
    const names = new Map(this.#statements.schoolNames.all().map((s) => [s.id, s.name]));
    return statsFromRows(plan, pendingRollup, names, {
      byCategoryDay: run(plan.byCategoryDay),
      bySchool: run(plan.bySchool),
      topHosts: run(plan.topHosts),
    });
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

  async eraseDevices(school: string, clients: readonly string[]): Promise<{ events: number; reviews: number }> {
    const { events, reviews } = eraseSchoolDevices(
      this.#db,
      school,
      clients.map((client) => ({ id: client, client })),
    );
    return { events, reviews };
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

  get accounts(): AccountStore {
    this.#accounts ??= new AccountStore(sqliteConnection(this.#db));
    return this.#accounts;
  }

  get alerts(): SqliteAlertStore {
    this.#alerts ??= new SqliteAlertStore(this.#db);
    return this.#alerts;
  }

  get dashboardQueries(): DashboardQueries {
    this.#queries ??= new DashboardQueries(sqliteConnection(this.#db));
    return this.#queries;
  }

  openDistrict(dataDir: string, audit: AuditSink): District {
    return openDistrict(sqliteConnection(this.#db), loadOrCreateSigner(dataDir), audit);
  }

  /** The connection: for the bench, which loads synthetic data in bulk. */
  get database(): SqliteDatabase {
    return this.#db;
  }
}
