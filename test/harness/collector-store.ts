/**
 * Which store the collector tests run on. `LACHAN_TEST_STORE=postgres` (npm run
 * test:collector-pg) runs them on PostgreSQL: one server for the whole run, started by
 * test/harness/pg-global-setup.ts, and one database for each collector data folder, so
 * that `central serve` and the `central …` commands a test runs on that folder meet in it.
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { openPostgresStore } from '../../src/central/pg-store.js';
import { openSqliteStore } from '../../src/central/sqlite-store.js';
import type { CentralStore } from '../../src/central/store.js';
import { postgresBinDir } from './postgres.js';

export const PG_URL_ENV = 'LACHAN_TEST_PG_URL';

export function collectorOnPostgres(): boolean {
  return process.env.LACHAN_TEST_STORE === 'postgres';
}

const created = new Set<string>();

/** The database of a collector data folder (made on first use), or null on SQLite. */
export function databaseFor(dataDir: string): string | null {
  if (!collectorOnPostgres()) return null;
  const server = process.env[PG_URL_ENV];
  if (server === undefined) throw new Error(`LACHAN_TEST_STORE=postgres needs ${PG_URL_ENV} (vitest --globalSetup test/harness/pg-global-setup.ts)`);
  let folder = path.resolve(dataDir);
  try {
    folder = realpathSync(folder);
  } catch {
    // not made yet: its path as given
  }
  const name = `lachan_${createHash('sha256').update(folder).digest('hex').slice(0, 24)}`;
  const url = new URL(server);
  if (!created.has(name)) {
    const result = spawnSync(path.join(postgresBinDir(), 'createdb'), ['-h', url.hostname, '-p', url.port, '-U', url.username, name], { encoding: 'utf8' });
    if (result.status !== 0 && !result.stderr.includes('already exists')) throw new Error(`createdb ${name}: ${result.stderr}`);
    created.add(name);
  }
  url.pathname = `/${name}`;
  return url.toString();
}

/** Commands that take --database (backup and migrate are about SQLite files themselves). */
const TAKES_DATABASE = new Set(['serve', 'school', 'user', 'events', 'key']);

/** `args` of a `lachan central …` or `lachan report` command, pointed at the folder's database on PostgreSQL. */
export function withCollectorDatabase(args: readonly string[]): readonly string[] {
  if (!collectorOnPostgres() || args.includes('--database')) return args;
  const applies = (args[0] === 'central' && TAKES_DATABASE.has(args[1] ?? '')) || args[0] === 'report';
  const data = args.indexOf('--data');
  if (!applies || data === -1 || args[data + 1] === undefined) return args;
  return [...args, '--database', databaseFor(args[data + 1]!)!];
}

/** Everything the collector's database holds, as bytes: its SQLite file, or a pg_dump of its PostgreSQL database. */
export function collectorDatabaseBytes(dataDir: string): Buffer {
  const database = databaseFor(dataDir);
  if (database === null) return readFileSync(path.join(dataDir, 'central.db'));
  const result = spawnSync(path.join(postgresBinDir(), 'pg_dump'), ['--dbname', database]);
  if (result.status !== 0) throw new Error(`pg_dump: ${result.stderr.toString()}`);
  return result.stdout;
}

/**
 * Rows of a query on the collector's database, read as the store sees them: SQLite
 * opened read-only, or psql on PostgreSQL (rows as JSON; `?` placeholders, test values).
 */
export function collectorRows<Row = Record<string, unknown>>(dataDir: string, sql: string, params: readonly (string | number)[] = []): Row[] {
  const database = databaseFor(dataDir);
  if (database === null) {
    const db = new Database(path.join(dataDir, 'central.db'), { readonly: true });
    try {
      return db.prepare(sql).all(...params) as Row[];
    } finally {
      db.close();
    }
  }
  let n = 0;
  const literal = (value: string | number) => (typeof value === 'number' ? String(value) : `'${value.replaceAll("'", "''")}'`);
  const inlined = sql.replace(/\?/g, () => literal(params[n++]!));
  const result = spawnSync(
    path.join(postgresBinDir(), 'psql'),
    ['--dbname', database, '-AtX', '-v', 'ON_ERROR_STOP=1', '-c', `SELECT coalesce(json_agg(q), '[]') FROM (${inlined}) AS q`],
    {
      encoding: 'utf8',
    },
  );
  if (result.status !== 0) throw new Error(`psql: ${result.stderr}`);
  return JSON.parse(result.stdout) as Row[];
}

/** The collector's store on a data folder, opened in the test's own process (closed before `central serve` starts on it). */
export async function openCollectorStore(dataDir: string): Promise<CentralStore> {
  const database = databaseFor(dataDir);
  return database === null ? openSqliteStore({ dataDir, writerThread: false }) : openPostgresStore({ url: database, connections: 2 });
}
