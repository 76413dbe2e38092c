/**
 * The collector's SQLite schema: its steps, oldest first. Append; never edit a step that
 * has shipped (every existing central.db is brought forward through them).
 */
import { ALERT_SQLITE_MIGRATIONS } from './alerts-sqlite.js';
import { DISTRICT_LATER_MIGRATIONS, DISTRICT_MIGRATIONS } from './district-schema.js';
import { EVENT_FIELDS_V1, INBOX_MIGRATION, ROLLUPS, schoolScopedMigration, type RollupKey } from './event-writer.js';

/** Lets a category or profile filter over a few weeks of all schools seek instead of scan. */
const ROLLUP_INDEXES = [
  'CREATE INDEX r_school_category_day_by_category ON r_school_category_day(category, day);',
  'CREATE INDEX r_school_category_day_by_profile ON r_school_category_day(profile, day);',
];

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
  // Safeguarding alerts and the counsellor's role (alerts-sqlite.ts).
  ...ALERT_SQLITE_MIGRATIONS,
];
