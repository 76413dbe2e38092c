/**
 * The lists mirror of collector processes sharing one PostgreSQL database
 * (docs/scaling.md, "One lists mirror"): the versions kept, each list's state (version in
 * force, validators, history) and what every school last said it holds are rows, so
 * every process answers 304, a delta or the whole list from the same versions, and the
 * dashboard sees every school whichever process it asked.
 *
 * One process at a time fetches upstream: a tick takes a session advisory lock without
 * waiting (another process holding it is fetching), reads the shared states under it and
 * fetches only what is due by them, so a district asks a list's host once an interval,
 * not once a process. The fetch itself is the gateway's (src/lists/update.ts, on a worker
 * thread) on a scratch folder seeded with the shared state; its outcome is published
 * back, and the scratch removed.
 */
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { readListsConfig, type ListSubscription } from '../lists/config.js';
import { logUpdate, type RefresherLogger } from '../lists/refresher.js';
import { emptyState, LISTS_DIR, listDir, readState, readVersionText, writeState, type ListState } from '../lists/store.js';
import { dueLists } from '../lists/update.js';
import { updateListInThread } from '../lists/update-thread.js';
import type { PgClient, PgPool } from '../storage/postgres.js';
import { DEFAULT_KEPT_VERSIONS, type ListsBacking, loadReports, REPORTS_FILE, type SchoolListReport } from './lists-mirror.js';

/** The mirror's schema step (appended to PG_MIGRATIONS). */
export const LISTS_PG_MIGRATIONS: readonly string[] = [
  `CREATE TABLE list_states (name text COLLATE "C" PRIMARY KEY, state jsonb NOT NULL);
   CREATE TABLE list_versions (
     name text COLLATE "C" NOT NULL,
     version text COLLATE "C" NOT NULL,
     body text NOT NULL,
     PRIMARY KEY (name, version)
   );
   CREATE TABLE list_reports (
     school text COLLATE "C" NOT NULL,
     list text COLLATE "C" NOT NULL,
     version text COLLATE "C",
     seen_at bigint NOT NULL,
     PRIMARY KEY (school, list)
   );`,
];

/** Held by the process fetching upstream (next to LOCKS in src/storage/postgres.ts: 0x6c6163_0001, _0002). */
const FETCH_LOCK = 0x6c6163_0003;
const MIN_TICK_MS = 1_000;
const MAX_TICK_MS = 30_000;
/** The scratch folder under `--data` an update runs in. */
const SCRATCH_DIR = 'lists-fetching';

export interface PgListsOptions {
  readonly pool: PgPool;
  readonly dataDir: string;
  readonly listsFile: string;
  readonly logger: RefresherLogger;
  readonly keep?: number;
}

function stateOf(name: string, stored: Partial<ListState> | undefined): ListState {
  return stored === undefined ? emptyState(name) : { ...emptyState(name), ...stored, name };
}

export class PgListsBacking implements ListsBacking {
  readonly #options: PgListsOptions;
  readonly #pool: PgPool;
  readonly #scratch: string;
  #stopped = false;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  constructor(options: PgListsOptions) {
    this.#options = options;
    this.#pool = options.pool;
    this.#scratch = path.join(options.dataDir, SCRATCH_DIR);
    void this.refreshNow();
  }

  async state(name: string): Promise<ListState> {
    const { rows } = await this.#pool.query<{ state: Partial<ListState> }>('SELECT state FROM list_states WHERE name = $1', [name]);
    return stateOf(name, rows[0]?.state);
  }

  async versionText(name: string, version: string): Promise<string | null> {
    const { rows } = await this.#pool.query<{ body: string }>('SELECT body FROM list_versions WHERE name = $1 AND version = $2', [name, version]);
    return rows[0]?.body ?? null;
  }

  async report(schoolId: string, name: string, version: string | null): Promise<void> {
    await this.#pool.query(
      `INSERT INTO list_reports (school, list, version, seen_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (school, list) DO UPDATE SET version = excluded.version, seen_at = greatest(list_reports.seen_at, excluded.seen_at)`,
      [schoolId, name, version, Date.now()],
    );
  }

  async reports(schoolIds: readonly string[]): Promise<ReadonlyMap<string, ReadonlyMap<string, SchoolListReport>>> {
    const { rows } = await this.#pool.query<{ school: string; list: string; version: string | null; seen_at: number }>(
      'SELECT school, list, version, seen_at FROM list_reports WHERE school = ANY($1::text[])',
      [schoolIds],
    );
    const reports = new Map<string, Map<string, SchoolListReport>>();
    for (const row of rows) {
      let lists = reports.get(row.school);
      if (lists === undefined) reports.set(row.school, (lists = new Map()));
      lists.set(row.list, { version: row.version, seenAt: row.seen_at });
    }
    return reports;
  }

  refreshNow(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#running ??= this.#tick()
      .catch((error: Error): readonly ListSubscription[] => {
        this.#options.logger.warn({ err: error.message }, 'list refresh failed');
        return [];
      })
      .then((subscriptions) => this.#schedule(subscriptions))
      .finally(() => {
        this.#running = null;
      });
    return this.#running;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
  }

  #schedule(subscriptions: readonly ListSubscription[]): void {
    if (this.#stopped) return;
    const shortest = subscriptions.reduce((min, s) => Math.min(min, s.refreshMs), MAX_TICK_MS);
    this.#timer = setTimeout(() => void this.refreshNow(), Math.max(MIN_TICK_MS, shortest));
    this.#timer.unref();
  }

  async #tick(): Promise<readonly ListSubscription[]> {
    let subscriptions: ListSubscription[];
    try {
      subscriptions = await readListsConfig(this.#options.listsFile);
    } catch (error) {
      this.#options.logger.warn({ err: (error as Error).message }, 'lists.yaml refused; lists are not refreshed until it is fixed');
      return [];
    }
    if (subscriptions.length === 0 || this.#stopped) return subscriptions;
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [FETCH_LOCK]);
      // Another process is fetching; what it publishes is served from the database.
      if (!rows[0]!.locked) return subscriptions;
      try {
        await this.#fetchDue(client, subscriptions);
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [FETCH_LOCK]);
      }
    } catch (error) {
      broken = error as Error;
      throw error;
    } finally {
      // A connection that failed may still hold the lock: closed, not pooled, so the lock goes with it.
      client.release(broken);
    }
    return subscriptions;
  }

  /** Under the lock: what is due by the shared states, fetched one list at a time and published. */
  async #fetchDue(client: PgClient, subscriptions: readonly ListSubscription[]): Promise<void> {
    const { rows } = await client.query<{ name: string; state: Partial<ListState> }>('SELECT name, state FROM list_states WHERE name = ANY($1::text[])', [
      subscriptions.map((s) => s.name),
    ]);
    const states = new Map(subscriptions.map((s) => [s.name, stateOf(s.name, rows.find((r) => r.name === s.name)?.state)]));
    for (const subscription of dueLists(subscriptions, states, Date.now())) {
      if (this.#stopped) break;
      const before = states.get(subscription.name)!;
      const scratch = listDir(this.#scratch, subscription.name);
      await rm(scratch, { recursive: true, force: true });
      try {
        await writeState(this.#scratch, before);
        logUpdate(this.#options.logger, await updateListInThread(subscription, { dataDir: this.#scratch, keep: this.#options.keep ?? DEFAULT_KEPT_VERSIONS }));
        await this.#publish(client, before, await readState(this.#scratch, subscription.name));
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    }
  }

  /** The update's outcome, as one transaction: the new version's text, the state naming it, the versions no longer kept gone. */
  async #publish(client: PgClient, before: ListState, after: ListState): Promise<void> {
    const text = after.version !== null && after.version !== before.version ? await readVersionText(this.#scratch, after.name, after.version) : null;
    if (after.version !== null && after.version !== before.version && text === null)
      throw new Error(`list ${after.name}: version ${after.version} missing after its update`);
    await client.query('BEGIN');
    try {
      if (text !== null)
        await client.query('INSERT INTO list_versions (name, version, body) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [after.name, after.version, text]);
      await client.query('INSERT INTO list_states (name, state) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET state = excluded.state', [
        after.name,
        JSON.stringify(after),
      ]);
      await client.query('DELETE FROM list_versions WHERE name = $1 AND NOT (version = ANY($2::text[]))', [after.name, after.history]);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }
}

/** What a file-backed mirror held, as found on disk and written to the tables. */
export interface ImportedLists {
  readonly states: number;
  readonly versions: number;
  readonly reports: number;
}

/**
 * `central migrate`: the mirror one SQLite collector kept under its data folder (each
 * list's state and kept versions under `lists/`, the schools' reports in
 * `lists-schools.json`) copied into the tables, so the processes on PostgreSQL answer
 * deltas from the versions the schools already hold instead of sending whole lists.
 * A kept version whose file is gone is left out of the state's history as well.
 */
export async function importFileMirror(dataDir: string, pool: PgPool): Promise<ImportedLists> {
  const root = path.join(dataDir, LISTS_DIR);
  const names = await readdir(root, { withFileTypes: true }).then(
    (entries) => entries.filter((e) => e.isDirectory()).map((e) => e.name),
    () => [],
  );
  let states = 0;
  let versions = 0;
  for (const name of names.sort()) {
    const state = await readState(dataDir, name);
    // A folder without a state (a fetch that never finished) holds nothing served.
    if (state.version === null && state.history.length === 0 && state.checkedAt === null && state.attemptedAt === null) continue;
    const kept: string[] = [];
    for (const version of state.history) {
      const text = await readVersionText(dataDir, name, version);
      if (text === null) continue;
      await pool.query('INSERT INTO list_versions (name, version, body) VALUES ($1, $2, $3)', [name, version, text]);
      kept.push(version);
      versions++;
    }
    const history = { history: kept, appliedAt: Object.fromEntries(Object.entries(state.appliedAt).filter(([v]) => kept.includes(v))) };
    await pool.query('INSERT INTO list_states (name, state) VALUES ($1, $2)', [name, JSON.stringify({ ...state, ...history })]);
    states++;
  }
  let reports = 0;
  for (const [school, lists] of loadReports(path.join(dataDir, REPORTS_FILE))) {
    for (const [list, report] of lists) {
      await pool.query('INSERT INTO list_reports (school, list, version, seen_at) VALUES ($1, $2, $3, $4)', [school, list, report.version, report.seenAt]);
      reports++;
    }
  }
  return { states, versions, reports };
}
