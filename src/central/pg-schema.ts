/**
 * The collector's schema on PostgreSQL (docs/contract.md §10): the same tables as the
 * SQLite store where the API reads them, with `events` partitioned by month (Vietnam
 * time, as the roll-ups count) so retention drops whole partitions. Steps are applied
 * by migratePostgres (src/storage/postgres.ts); append, never edit a shipped step.
 * Text is COLLATE "C" throughout: ordered as SQLite orders it, whatever the locale.
 */
import { eventColumnDefinitions } from '../events/event-schema.js';
import { ADMIN_TOKEN_PG_MIGRATIONS } from './admin-token-pg.js';
import { ALERT_PG_MIGRATIONS } from './alerts-pg.js';
import { LISTS_PG_MIGRATIONS } from './lists-mirror-pg.js';
import { dayStart, firstDayOfMonth } from './days.js';
import { ROLLUPS, type RollupKey } from './event-writer.js';
import { PG_DISTRICT_STEP } from './pg-district-schema.js';

const KEY_TYPES: Readonly<Record<RollupKey, string>> = {
  day: 'integer NOT NULL',
  month: 'integer NOT NULL',
  school: 'text COLLATE "C" NOT NULL',
  profile: 'text COLLATE "C" NOT NULL',
  category: 'text COLLATE "C" NOT NULL',
  host: 'text COLLATE "C" NOT NULL',
};

/** Each roll-up key computed from an events row in PostgreSQL (the twins of KEY_SQL in event-writer.ts). */
const VN_DAY = '((time + 25200000) / 86400000)::integer';
const VN_DATE = `(DATE '1970-01-01' + ${VN_DAY})`;
export const PG_KEY_SQL: Readonly<Record<RollupKey, string>> = {
  day: VN_DAY,
  month: `(EXTRACT(YEAR FROM ${VN_DATE})::integer * 12 + EXTRACT(MONTH FROM ${VN_DATE})::integer - 1)`,
  school: 'school',
  profile: 'profile',
  category: "coalesce(category, '')",
  host: 'host',
};

/**
 * The roll-ups' hot rows are updated by every batch (a school's day, a host's day), so
 * each table is a small set of rows rewritten all day. At the defaults (pages filled to
 * 100 %, autovacuum at 20 % dead rows, throttled) dead versions pile up between vacuums
 * and the first statistics query after a busy hour reads the bloated pages and sets
 * their hint bits itself (docs/scaling.md, "The dashboard's aggregates"). Room on each
 * page keeps updates HOT (same page, no index entry, pruned in place); an unthrottled
 * vacuum after 2 % of rows changed (or 1 % added: a new day's rows, then marked
 * all-visible for index-only scans) keeps the tables their live size; statistics are
 * refreshed as new days arrive, so a range ending today is estimated from its rows.
 *
 * One category's schools (bySchool with a category filter, up to MONTHLY_AFTER_DAYS)
 * read a row per school and day, spread over every page of r_school_category_day: the
 * covering index answers from its own pages, one category's days side by side. It makes
 * this table's updates non-HOT (n is in an index); it is the least updated roll-up (a
 * school's few categories a batch).
 */
const ROLLUP_STORAGE_STEP = [
  ...ROLLUPS.map(
    (r) =>
      `ALTER TABLE ${r.table} SET (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 500, autovacuum_vacuum_insert_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.02);`,
  ),
  'CREATE INDEX r_school_category_day_for_category ON r_school_category_day (category, day) INCLUDE (school, profile, n);',
  'DROP INDEX r_school_category_day_by_category;',
].join('\n');

export const PG_MIGRATIONS: readonly string[] = [
  `CREATE TABLE schools (
     id text COLLATE "C" PRIMARY KEY,
     name text COLLATE "C" NOT NULL,
     token_hash bytea NOT NULL,
     created_at bigint NOT NULL,
     revoked_at bigint
   );
   CREATE TABLE school_contact (school text COLLATE "C" PRIMARY KEY, last_at bigint NOT NULL);
   CREATE SEQUENCE events_seq AS bigint;
   -- (school, id) is the idempotency key; time joins it because a partitioned table's
   -- keys must hold the partition key, and an event's id is made from its time (ids.ts).
   CREATE TABLE events (
     seq bigint NOT NULL DEFAULT nextval('events_seq'),
     ${eventColumnDefinitions('postgres')},
     school text COLLATE "C" NOT NULL,
     received_at bigint NOT NULL,
     PRIMARY KEY (school, id, time)
   ) PARTITION BY RANGE (time);
   CREATE INDEX events_time ON events (time);
   CREATE INDEX events_school_time ON events (school, time);
   CREATE INDEX events_host_time ON events (host, time);
   ${ROLLUPS.map((r) => `CREATE TABLE ${r.table} (${r.keys.map((k) => `${k} ${KEY_TYPES[k]}`).join(', ')}, n bigint NOT NULL, PRIMARY KEY (${r.keys.join(', ')}));`).join('\n   ')}
   CREATE INDEX r_school_category_day_by_category ON r_school_category_day (category, day);
   CREATE INDEX r_school_category_day_by_profile ON r_school_category_day (profile, day);`,
  // A step keeps its number once released: a database at that version has run it. Steps
  // are only appended; a module with tables of its own exports its step from its file.
  ...ALERT_PG_MIGRATIONS,
  // Accounts, sessions, audit, reviews, policy and its key: every process serves the dashboard.
  PG_DISTRICT_STEP,
  // What each process kept in its --data, now shared (docs/scaling.md).
  ...ADMIN_TOKEN_PG_MIGRATIONS,
  ...LISTS_PG_MIGRATIONS,
  ROLLUP_STORAGE_STEP,
];

/** The partition of `events` holding month `month` (year × 12 + month − 1, Vietnam time). */
export function partitionName(month: number): string {
  return `events_m${month}`;
}

/** The month a partition name stands for, or null for another table. */
export function monthOfPartition(name: string): number | null {
  const match = /^events_m(\d+)$/.exec(name);
  return match ? Number(match[1]) : null;
}

/** [from, to) in ms of month `month`'s partition. */
export function partitionBounds(month: number): [number, number] {
  return [dayStart(firstDayOfMonth(month)), dayStart(firstDayOfMonth(month + 1))];
}
