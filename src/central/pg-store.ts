/**
 * The collector's store on PostgreSQL (docs/contract.md §10), behind the same
 * CentralStore interface as the SQLite store. Any number of collector processes may
 * share one database:
 * - An event is stored once per (school, id): one multi-row INSERT … ON CONFLICT a batch.
 * - The roll-ups are counted in the same statement from the rows it inserted (RETURNING),
 *   so an event is counted exactly when it is stored, once, whichever process stored it;
 *   statistics are never behind (`pendingRollup` is 0).
 * - Rows are written in key order, so two processes never wait on each other crosswise;
 *   should PostgreSQL still abort one for a deadlock, the transaction runs again.
 */
import type { WireEvent } from '../events/event-schema.js';
import type { QueryResult } from 'pg';
import { LOCKS, migratePostgres, numberPlaceholders, openPool, pgErrorCode, type PgClient, type PgPool } from '../storage/postgres.js';
import { eventsPage, planEventsPage, type EventRow } from './events-page.js';
import { PgAlertStore } from './alerts-pg.js';
import { GroupCommit, type SchoolBatch } from './group-commit.js';
import { monthOfPartition, partitionBounds, partitionName, PG_MIGRATIONS } from './pg-schema.js';
import { idsRise, IngestColumns, INSERT_ORDERED_SQL, INSERT_SQL, RAISE_COUNTS_SQL } from './pg-ingest-sql.js';
import { planStats, statsFromRows, type PlannedQuery, type StatsRows } from './stats-plan.js';
import { SyncPostgres } from '../storage/pg-sync.js';
import type { AccountStore } from './accounts.js';
import type { DashboardQueries } from './dashboard/queries.js';
import type { AuditSink } from './district-policy.js';
import type { District } from './district.js';
import { ERASED_CLIENT } from './erasures.js';
import { PgDistrictTables } from './pg-district.js';
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

export interface PostgresStoreOptions {
  readonly url: string;
  /** Connections in the pool (default 10). */
  readonly connections?: number;
}

interface SchoolRow {
  id: string;
  name: string;
  token_hash: Buffer;
  created_at: number;
  revoked_at: number | null;
}

function toSchool(row: SchoolRow): School {
  return { id: row.id, name: row.name, createdAt: row.created_at, revokedAt: row.revoked_at };
}

/** PostgreSQL found no partition for a row (check_violation): one was dropped or never made. */
const NO_PARTITION = '23514';
const DEADLOCK = '40P01';
/**
 * Ingest statements one process runs at once (group-commit.ts): every batch of the day
 * updates the same hot roll-up rows, so statements at once only wait on each other's row
 * locks, and PostgreSQL spends more CPU an event the more of them run together
 * (bench:ingest-postgres: 27,786 events/s with 2 in flight in each of two stores,
 * 15,480/s with 8; bench:province, two processes at load 11–13: 36 and 48 µs of
 * PostgreSQL CPU an event with 1 in flight each, 54 and 61 with 2). One, so a process's
 * batches that arrive meanwhile all go in the next statement, together.
 */
const INSERTS_IN_FLIGHT = 1;

const bySchool = (a: { school: string }, b: { school: string }) => (a.school < b.school ? -1 : a.school > b.school ? 1 : 0);

/** PostgreSQL's undefined_table: a partition named here was dropped meanwhile. */
const UNDEFINED_TABLE = '42P01';

/**
 * Statements sent as one simple query: PostgreSQL runs them as one transaction and ends it
 * itself, without waiting for this process between them. A lock the pool holds while it
 * waits for this process (a transaction open until its COMMIT is sent) would freeze it:
 * the district's tables are read through a connection that blocks the main thread
 * (pg-sync.ts) until its statement is answered, so a dashboard read of `events` queued
 * behind a partition's ACCESS EXCLUSIVE lock would wait for a COMMIT only the blocked
 * thread can send. Hence no pool transaction here spans two round trips. Interpolated
 * values are numbers and names made here, never input.
 */
function oneRoundTrip(statements: readonly string[]): string {
  return statements.join(';\n');
}

/** Events one group statement carries at most: a few full batches. */
const GROUP_EVENTS = 4_000;

/** A stored event as `central migrate` copies it. */
export type ImportedEvent = WireEvent & { readonly school: string; readonly received_at: number };

/** A statement run again when PostgreSQL aborted it for a deadlock (rows go in key order, so rarely). */
async function retried<T>(run: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (attempt >= attempts || pgErrorCode(error) !== DEADLOCK) throw error;
    }
  }
}

export function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresCentralStore> {
  return PostgresCentralStore.open(options);
}

export class PostgresCentralStore implements CollectorDatabase {
  readonly #pool: PgPool;
  readonly #url: string;
  /** Months whose partition is known to exist (created here or found). */
  readonly #partitions = new Set<number>();
  /** The partitions being made now: concurrent batches of a new month wait for one transaction, not queue a transaction each behind its lock. */
  #making: Promise<void> | null = null;
  readonly alerts: PgAlertStore;
  /** The district's tables, on a connection of their own, opened when first used. */
  #sync: SyncPostgres | null = null;
  readonly #groups = new GroupCommit((group) => this.#insertGroup(group), INSERTS_IN_FLIGHT, GROUP_EVENTS);
  #district: PgDistrictTables | null = null;

  private constructor(pool: PgPool, url: string) {
    this.#pool = pool;
    this.alerts = new PgAlertStore(pool);
    this.#url = url;
  }

  static async open(options: PostgresStoreOptions): Promise<PostgresCentralStore> {
    const pool = openPool(options.url, options.connections);
    try {
      await migratePostgres(pool, PG_MIGRATIONS, 'the collector database');
    } catch (error) {
      await pool.end();
      throw error;
    }
    return new PostgresCentralStore(pool, options.url);
  }

  /** For `central migrate` and the tests: the pool itself. */
  get pool(): PgPool {
    return this.#pool;
  }

  async addSchool(name: string): Promise<NewSchool> {
    const trimmed = name.trim();
    if (trimmed.length === 0 || trimmed.length > 200) throw new StoreError('LACHAN_BAD_NAME', 'a school name is 1–200 characters');
    const id = newSchoolId();
    const token = newSchoolToken(id);
    await this.#pool.query('INSERT INTO schools (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)', [id, trimmed, hashToken(token), Date.now()]);
    return { id, token };
  }

  async listSchools(): Promise<School[]> {
    return (await this.#pool.query<SchoolRow>('SELECT * FROM schools ORDER BY created_at, id')).rows.map(toSchool);
  }

  async revokeSchool(id: string): Promise<boolean> {
    const found = await this.#pool.query('SELECT 1 FROM schools WHERE id = $1', [id]);
    if (found.rowCount === 0) return false;
    await this.#pool.query('UPDATE schools SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [Date.now(), id]);
    return true;
  }

  async authenticate(token: string): Promise<School | null> {
    const id = schoolIdOfToken(token);
    if (id === null) return null;
    // Named: every ingest request asks, and PostgreSQL parses and plans it once a connection.
    const row = (await this.#pool.query<SchoolRow>({ name: 'lachan_school_by_id', text: 'SELECT * FROM schools WHERE id = $1', values: [id] })).rows[0];
    if (row === undefined || row.revoked_at !== null) return null;
    return sameHash(hashToken(token), row.token_hash) ? toSchool(row) : null;
  }

  async ingest(school: string, events: readonly WireEvent[], receivedAt: number): Promise<IngestResult> {
    const acked = events.map((e) => e.id);
    if (events.length === 0) {
      await this.#touch(school, receivedAt);
      return { acked, stored: 0, duplicates: 0 };
    }
    const stored = await this.#groups.add({ school, events, receivedAt });
    // Only an event stored before may need its count raised: when every event was new (a
    // gateway's first send, the usual case), each went in with its count already.
    const raised = stored === events.length ? [] : events.filter((e) => (e.count ?? 1) > 1).sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    if (raised.length > 0) {
      await retried(() =>
        this.#pool.query({
          name: 'lachan_raise_counts',
          text: RAISE_COUNTS_SQL,
          values: [raised.map((e) => e.id), raised.map((e) => e.time), raised.map((e) => e.count), school],
        }),
      );
    }
    return { acked, stored, duplicates: events.length - stored };
  }

  /**
   * Copies stored events in (for `central migrate`); `counted` says whether the roll-ups
   * already hold them (copied with the roll-up tables) or must count them now.
   */
  async importEvents(events: readonly ImportedEvent[], counted: boolean): Promise<number> {
    const rows = new IngestColumns(events.length);
    for (const e of events) rows.add(e, e.school, e.received_at);
    const stored = await this.#insert(rows, !counted, []);
    return [...stored.values()].reduce((sum, n) => sum + n, 0);
  }

  /** One statement for a group of schools' batches (group-commit.ts); the rows stored new, by school. */
  #insertGroup(group: readonly SchoolBatch[]): Promise<Map<string, number>> {
    // In school order (one batch a school: group-commit.ts), so rows and contacts go in key order as every statement locks them.
    const batches = [...group].sort(bySchool);
    const rows = new IngestColumns(batches.reduce((n, b) => n + b.events.length, 0));
    let ordered = true;
    for (const batch of batches) {
      ordered &&= idsRise(batch.events);
      for (const e of batch.events) rows.add(e, batch.school, batch.receivedAt);
    }
    return this.#insert(
      rows,
      true,
      batches.map((b) => ({ school: b.school, at: b.receivedAt })),
      ordered,
    );
  }

  /**
   * Inserts `rows` in one statement (recording `contacts`, in school order); how many were
   * new, by school. `ordered`: the rows are unique by (school, id) and in that order.
   */
  async #insert(
    { columns, months }: IngestColumns,
    count: boolean,
    contacts: readonly { school: string; at: number }[],
    ordered = false,
  ): Promise<Map<string, number>> {
    for (let attempt = 0; ; attempt++) {
      await this.#ensurePartitions(months);
      try {
        // Named: each connection plans the statement (a dozen CTEs) once, not for every batch.
        const values = [...columns, count, contacts.map((c) => c.school), contacts.map((c) => c.at)];
        const statement = ordered ? { name: 'lachan_ingest_ordered', text: INSERT_ORDERED_SQL } : { name: 'lachan_ingest', text: INSERT_SQL };
        const result = await retried(() => this.#pool.query<{ school: string; stored: number }>({ ...statement, values }));
        return new Map(result.rows.map((row) => [row.school, row.stored]));
      } catch (error) {
        // A partition dropped by another process's retention since this one saw it: made again.
        if (pgErrorCode(error) !== NO_PARTITION || attempt > 0) throw error;
        this.#partitions.clear();
      }
    }
  }

  /** One row a school, so the dashboard can tell a silent gateway from a quiet school. */
  async #touch(school: string, at: number, client: PgPool | PgClient = this.#pool): Promise<void> {
    await client.query(
      'INSERT INTO school_contact AS c (school, last_at) VALUES ($1, $2) ON CONFLICT (school) DO UPDATE SET last_at = greatest(c.last_at, excluded.last_at)',
      [school, at],
    );
  }

  async #ensurePartitions(months: ReadonlySet<number>): Promise<void> {
    while (this.#making !== null) {
      if ([...months].every((m) => this.#partitions.has(m))) return;
      await this.#making.catch(() => {});
    }
    const missing = [...months].filter((m) => !this.#partitions.has(m));
    if (missing.length === 0) return;
    this.#making = this.#makePartitions(missing).finally(() => {
      this.#making = null;
    });
    await this.#making;
  }

  async #makePartitions(missing: readonly number[]): Promise<void> {
    const creates = missing.map((month) => {
      const [from, to] = partitionBounds(month);
      return `CREATE TABLE IF NOT EXISTS ${partitionName(month)} PARTITION OF events FOR VALUES FROM (${from}) TO (${to})`;
    });
    await retried(() => this.#pool.query(oneRoundTrip([`SELECT pg_advisory_xact_lock(${LOCKS.partitions})`, ...creates])));
    for (const month of missing) this.#partitions.add(month);
  }

  async queryEvents(filter: EventFilter, page: PageRequest): Promise<EventPage> {
    const query = planEventsPage(filter, page);
    return eventsPage((await this.#pool.query<EventRow>(numberPlaceholders(query.sql), query.params)).rows, query.limit);
  }

  async stats(filter: StatsFilter): Promise<Stats> {
    const plan = planStats(filter);
    const run = async <Row extends object>(query: PlannedQuery): Promise<Row[]> =>
      (await this.#pool.query<Row>(numberPlaceholders(query.sql), query.params)).rows;
    const [byCategoryDay, bySchool, topHosts, schools] = await Promise.all([
      run<StatsRows['byCategoryDay'][number]>(plan.byCategoryDay),
      run<StatsRows['bySchool'][number]>(plan.bySchool),
      run<StatsRows['topHosts'][number]>(plan.topHosts),
      run<{ id: string; name: string }>({ sql: 'SELECT id, name FROM schools', params: [] }),
    ]);
    return statsFromRows(plan, 0, new Map(schools.map((s) => [s.id, s.name])), { byCategoryDay, bySchool, topHosts });
  }

  async eraseDevices(school: string, clients: readonly string[]): Promise<{ events: number; reviews: number }> {
    // One statement, not a transaction of two: see oneRoundTrip.
    const { rows } = await retried(() =>
      this.#pool.query<{ events: number; reviews: number }>(
        `WITH erased AS (DELETE FROM events WHERE school = $1 AND client = ANY($2) RETURNING 1),
            reviewed AS (UPDATE review_requests SET client = $3, note = '' WHERE school = $1 AND client = ANY($2) RETURNING 1)
       SELECT (SELECT count(*) FROM erased) AS events, (SELECT count(*) FROM reviewed) AS reviews`,
        [school, [...clients], ERASED_CLIENT],
      ),
    );
    return rows[0]!;
  }

  #districtTables(): PgDistrictTables {
    if (this.#district === null) {
      this.#sync = new SyncPostgres(this.#url);
      this.#district = new PgDistrictTables(this.#sync);
    }
    return this.#district;
  }

  get accounts(): AccountStore {
    return this.#districtTables().accounts;
  }

  get dashboardQueries(): DashboardQueries {
    return this.#districtTables().dashboardQueries;
  }

  /** The policy and review queue in the database; the signing key too (taken from `dataDir` once, when the district had one). */
  openDistrict(dataDir: string | null, audit: AuditSink): District {
    return this.#districtTables().openDistrict(dataDir, audit);
  }

  /**
   * Drops the partitions wholly before `before` and deletes the older rows of the one
   * it falls in; the roll-ups stay. Returns how many events went.
   */
  async expire(before: number): Promise<number> {
    if (!Number.isSafeInteger(before)) throw new RangeError(`expire: ${before} is not a time in ms`);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#expireOnce(before);
      } catch (error) {
        // A partition another process's retention dropped since it was listed: listed again.
        if (pgErrorCode(error) !== UNDEFINED_TABLE || attempt > 0) throw error;
      }
    }
  }

  async #expireOnce(before: number): Promise<number> {
    const { rows } = await this.#pool.query<{ name: string }>(
      "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass",
    );
    const dropped: number[] = [];
    const statements: string[] = [];
    for (const { name } of rows) {
      const month = monthOfPartition(name);
      if (month === null) continue;
      const [from, to] = partitionBounds(month);
      if (to <= before) {
        dropped.push(month);
        statements.push(`SELECT count(*) AS n FROM ${name}`, `DROP TABLE ${name}`);
      } else if (from < before) {
        statements.push(`DELETE FROM ${name} WHERE time < ${before}`);
      }
    }
    if (statements.length === 0) return 0;
    // One result a statement (node-postgres answers a simple query of several with an array).
    const results = (await retried(() => this.#pool.query(oneRoundTrip([`SELECT pg_advisory_xact_lock(${LOCKS.partitions})`, ...statements])))) as unknown as
      | QueryResult<{ n?: number }>
      | QueryResult<{ n?: number }>[];
    for (const month of dropped) this.#partitions.delete(month);
    let removed = 0;
    for (const result of [results].flat()) {
      if (result.command === 'SELECT' && result.rows[0]?.n !== undefined) removed += result.rows[0].n;
      else if (result.command === 'DELETE') removed += result.rowCount ?? 0;
    }
    return removed;
  }

  async close(): Promise<void> {
    await this.#sync?.close();
    await this.#pool.end();
  }
}
