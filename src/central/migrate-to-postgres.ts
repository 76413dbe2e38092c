/**
 * `lachan central migrate --from sqlite:DIR --to postgres://…`: a district's collector
 * data moved from its SQLite file into an empty PostgreSQL database, then verified by
 * counts. Copied: schools (with their token hashes, so gateways keep their tokens), the
 * last contact of each, every raw event (the inbox too) and the roll-up tables (which
 * hold the counts of events retention has removed), the district's accounts, audit log,
 * policy with its versions, review queue, the policy signing key (from DIR's key
 * file) and the lists mirror DIR kept (each list's state and kept versions, what every
 * school last reported), so schools keep getting deltas. Events the SQLite store had not yet counted (its inbox, or past its roll-up
 * watermark) are counted on the way in. Sessions are not moved: users log in again.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { EVENT_COLUMNS, EVENT_FIELDS } from '../events/event-schema.js';
import { withoutNul } from '../events/wire.js';
import { openReadOnly, type SqliteDatabase } from '../storage/sqlite.js';
import { ROLLUPS } from './event-writer.js';
import { importFileMirror } from './lists-mirror-pg.js';
import type { ImportedEvent, PostgresCentralStore } from './pg-store.js';
import { SIGNING_KEY_FILE } from './signing-key.js';

const CHUNK = 5_000;

/**
 * A value read from the SQLite file, with each NUL in a text replaced by U+FFFD: a SQLite
 * store took NUL before the collector replaced it on the way in (wire.ts withoutNul), and
 * PostgreSQL's text refuses it. (SQLite's replace() stops at a NUL, so done here.)
 */
const nulFree = (value: unknown): unknown => (typeof value === 'string' ? withoutNul(value) : value);
const TEXT_FIELDS = EVENT_FIELDS.filter((f) => f.type === 'text').map((f) => f.name);

function nulFreeEvent(row: ImportedEvent): ImportedEvent {
  if (!TEXT_FIELDS.some((name) => (row[name] ?? '').includes('\0'))) return row;
  const copy: Record<string, unknown> = { ...row };
  for (const name of TEXT_FIELDS) copy[name] = nulFree(copy[name]);
  return copy as ImportedEvent;
}

export interface MigrationCount {
  readonly what: string;
  readonly source: number;
  readonly target: number;
}

export class MigrationError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

function* chunks<T>(rows: Iterable<T>): Generator<T[]> {
  let chunk: T[] = [];
  for (const row of rows) {
    chunk.push(row);
    if (chunk.length === CHUNK) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length > 0) yield chunk;
}

function scalar(db: SqliteDatabase, sql: string): number {
  return db.prepare(sql).pluck().get() as number;
}

/** Copies, then compares the counts; throws MigrationError when the target was not empty or a count differs. */
export async function migrateToPostgres(sqliteFile: string, target: PostgresCentralStore): Promise<MigrationCount[]> {
  const pool = target.pool;
  const existing = (await pool.query<{ n: number }>('SELECT (SELECT count(*) FROM schools) + (SELECT count(*) FROM events) AS n')).rows[0]!.n;
  if (existing > 0) throw new MigrationError('LACHAN_TARGET_NOT_EMPTY', 'the PostgreSQL database already holds schools or events');
  const db = openReadOnly(sqliteFile);
  try {
    // One read transaction: a collector still running cannot make the copy inconsistent.
    db.exec('BEGIN');
    const schools = db.prepare('SELECT id, name, token_hash, created_at, revoked_at FROM schools').all() as {
      id: string;
      name: string;
      token_hash: Buffer;
      created_at: number;
      revoked_at: number | null;
    }[];
    for (const s of schools) {
      await pool.query('INSERT INTO schools (id, name, token_hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5)', [
        s.id,
        s.name,
        s.token_hash,
        s.created_at,
        s.revoked_at,
      ]);
    }
    const contacts = db.prepare('SELECT school, last_at FROM school_contact').all() as { school: string; last_at: number }[];
    for (const c of contacts) await pool.query('INSERT INTO school_contact (school, last_at) VALUES ($1, $2)', [c.school, c.last_at]);

    for (const r of ROLLUPS) {
      const columns = [...r.keys, 'n'];
      for (const rows of chunks(
        db
          .prepare(`SELECT ${columns.join(', ')} FROM ${r.table}`)
          .raw()
          .iterate() as Iterable<unknown[]>,
      )) {
        const params = columns.map((_, i) => rows.map((row) => nulFree(row[i])));
        const types = columns.map((c) => (c === 'day' || c === 'month' ? 'integer[]' : c === 'n' ? 'bigint[]' : 'text[]'));
        // Two keys that differed by a NUL and its replacement alone become one row: their
        // counts add, within a chunk by the GROUP BY (ON CONFLICT cannot touch a row twice
        // in one statement), across chunks by the ON CONFLICT.
        const keys = r.keys.join(', ');
        await pool.query(
          `INSERT INTO ${r.table} AS t (${columns.join(', ')})
           SELECT ${keys}, sum(n) FROM unnest(${types.map((t, i) => `$${i + 1}::${t}`).join(', ')}) AS u(${columns.join(', ')}) GROUP BY ${keys}
           ON CONFLICT (${keys}) DO UPDATE SET n = t.n + excluded.n`,
          params,
        );
      }
    }

    const district = await copyDistrictTables(db, pool);
    // The key the gateways pinned signs on: the same policy keeps verifying after the move.
    const keyFile = path.join(path.dirname(sqliteFile), SIGNING_KEY_FILE);
    const hasKey = existsSync(keyFile);
    if (hasKey)
      await pool.query('INSERT INTO signing_key (id, private_pem, created_at) VALUES (1, $1, $2)', [readFileSync(keyFile, 'utf8').trim(), Date.now()]);
    district.push({
      what: 'signing_key',
      source: hasKey ? 1 : 0,
      target: (await pool.query<{ n: number }>('SELECT count(*) AS n FROM signing_key')).rows[0]!.n,
    });

    const lists = await importFileMirror(path.dirname(sqliteFile), pool);
    for (const [what, source] of [
      ['list_states', lists.states],
      ['list_versions', lists.versions],
      ['list_reports', lists.reports],
    ] as const) {
      district.push({ what, source, target: (await pool.query<{ n: number }>(`SELECT count(*) AS n FROM ${what}`)).rows[0]!.n });
    }

    const watermark = scalar(db, 'SELECT last_seq FROM rollup_state WHERE id = 1');
    const copy = async (sql: string, counted: boolean) => {
      for (const rows of chunks(db.prepare(sql).iterate() as Iterable<ImportedEvent>)) await target.importEvents(rows.map(nulFreeEvent), counted);
    };
    await copy(`SELECT ${EVENT_COLUMNS}, school, received_at FROM events WHERE seq <= ${watermark} ORDER BY seq`, true);
    await copy(`SELECT ${EVENT_COLUMNS}, school, received_at FROM events WHERE seq > ${watermark} ORDER BY seq`, false);
    await copy(`SELECT ${EVENT_COLUMNS}, school, received_at FROM events_inbox`, false);

    const uncounted = scalar(db, `SELECT count(*) FROM events WHERE seq > ${watermark}`) + scalar(db, 'SELECT count(*) FROM events_inbox');
    const targetCount = async (sql: string) => (await pool.query<{ n: number }>(sql)).rows[0]!.n;
    const counts: MigrationCount[] = [
      { what: 'schools', source: schools.length, target: await targetCount('SELECT count(*) AS n FROM schools') },
      { what: 'school_contact', source: contacts.length, target: await targetCount('SELECT count(*) AS n FROM school_contact') },
      {
        what: 'events',
        source: scalar(db, 'SELECT count(*) FROM events') + scalar(db, 'SELECT count(*) FROM events_inbox'),
        target: await targetCount('SELECT count(*) AS n FROM events'),
      },
    ];
    counts.push(...district);
    for (const r of ROLLUPS) {
      counts.push({
        what: `${r.table} (sum of counts)`,
        source: scalar(db, `SELECT coalesce(sum(n), 0) FROM ${r.table}`) + uncounted,
        target: await targetCount(`SELECT coalesce(sum(n), 0)::bigint AS n FROM ${r.table}`),
      });
    }
    db.exec('COMMIT');
    const wrong = counts.filter((c) => c.source !== c.target);
    if (wrong.length > 0) {
      throw new MigrationError('LACHAN_MIGRATION_MISMATCH', `counts differ: ${wrong.map((c) => `${c.what} ${c.source} → ${c.target}`).join(', ')}`);
    }
    return counts;
  } finally {
    db.close();
  }
}

/**
 * The district's own tables, as they are (ids included, so review requests still name
 * their rules): accounts, the audit log, the policy and its versions, the review queue,
 * the safeguarding alerts with their contacts and undelivered messages.
 * Sessions and login throttling stay behind: everyone logs in again. Each identity then
 * continues after the largest id copied.
 */
const DISTRICT_TABLES: readonly { table: string; columns: readonly string[]; identity?: string }[] = [
  { table: 'users', columns: ['name', 'role', 'school', 'password_hash', 'created_at', 'disabled_at'] },
  { table: 'audit_log', columns: ['seq', 'at', 'actor', 'action', 'target', 'before', 'after'], identity: 'seq' },
  {
    table: 'policy_rules',
    columns: [
      'id',
      'action',
      'kind',
      'value',
      'match',
      'keywords',
      'profile',
      'category',
      'school',
      'note',
      'review_seq',
      'created_by',
      'created_at',
      'removed_by',
      'removed_at',
    ],
    identity: 'id',
  },
  { table: 'policy_versions', columns: ['version', 'at', 'actor', 'summary'], identity: 'version' },
  {
    table: 'review_requests',
    columns: [
      'seq',
      'school',
      'id',
      'kind',
      'time',
      'received_at',
      'host',
      'path',
      'category',
      'profile',
      'event_id',
      'reference',
      'note',
      'client',
      'status',
      'decided_by',
      'decided_at',
      'decision_note',
      'rule_id',
    ],
    identity: 'seq',
  },
  // Safeguarding alerts (docs/safeguarding.md), who hears of them, and the messages still owed.
  {
    table: 'alerts',
    columns: [
      'school',
      'ref',
      'time',
      'last_time',
      'severity',
      'category',
      'signal',
      'trigger_text',
      'host',
      'device',
      'profile',
      'count',
      'status',
      'note',
      'received_at',
      'updated_at',
    ],
  },
  { table: 'alert_contacts', columns: ['school', 'emails', 'webhook'] },
  { table: 'alert_deliveries', columns: ['id', 'school', 'ref', 'event', 'channel', 'target', 'attempts', 'next_at', 'created_at'], identity: 'id' },
];

async function copyDistrictTables(db: SqliteDatabase, pool: PostgresCentralStore['pool']): Promise<MigrationCount[]> {
  const counts: MigrationCount[] = [];
  for (const { table, columns, identity } of DISTRICT_TABLES) {
    const insert = `INSERT INTO ${table} (${columns.map((c) => `"${c}"`).join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`;
    let source = 0;
    for (const row of db
      .prepare(`SELECT ${columns.map((c) => `"${c}"`).join(', ')} FROM ${table}`)
      .raw()
      .iterate() as Iterable<unknown[]>) {
      await pool.query(insert, row.map(nulFree));
      source++;
    }
    if (identity !== undefined) {
      await pool.query(`SELECT setval(pg_get_serial_sequence('${table}', '${identity}'), coalesce(max("${identity}"), 0) + 1, false) FROM ${table}`);
    }
    const target = (await pool.query<{ n: number }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n;
    counts.push({ what: table, source, target });
  }
  return counts;
}
