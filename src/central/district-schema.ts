/**
 * Tables of the district's own work (review queue and policy overlay), appended to the
 * collector's migrations by sqlite-store.ts. Kept here so the review and policy modules
 * own their schema.
 *
 * - `review_requests`: what gateways sent from block pages and report forms; stored once
 *   per (school, id), decided at most once.
 * - `policy_rules`: the overlay's rules; a removal is a tombstone so the history stays.
 * - `policy_versions`: one row per change; the newest row is the version gateways see.
 */
export const DISTRICT_MIGRATIONS: readonly string[] = [
  `CREATE TABLE review_requests (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     school TEXT NOT NULL,
     id TEXT NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('review', 'report')),
     time INTEGER NOT NULL,
     received_at INTEGER NOT NULL,
     host TEXT NOT NULL,
     path TEXT NOT NULL,
     category TEXT,
     profile TEXT NOT NULL,
     event_id TEXT,
     reference TEXT,
     note TEXT NOT NULL,
     client TEXT NOT NULL,
     status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'approved', 'rejected', 'blocked')),
     decided_by TEXT,
     decided_at INTEGER,
     decision_note TEXT,
     rule_id INTEGER,
     UNIQUE (school, id)
   );
   CREATE INDEX review_requests_status ON review_requests(status, time);
   CREATE TABLE policy_rules (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     action TEXT NOT NULL CHECK (action IN ('allow', 'block')),
     kind TEXT NOT NULL CHECK (kind IN ('domain', 'keyword')),
     value TEXT NOT NULL,
     profile TEXT,
     category TEXT,
     school TEXT,
     note TEXT NOT NULL DEFAULT '',
     review_seq INTEGER,
     created_by TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     removed_by TEXT,
     removed_at INTEGER,
     CHECK ((profile IS NULL) <> (category IS NULL))
   );
   CREATE INDEX policy_rules_live ON policy_rules(removed_at);
   CREATE TABLE policy_versions (
     version INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     actor TEXT NOT NULL,
     summary TEXT NOT NULL
   );`,
];

/**
 * Appended after the collector's inbox migration (sqlite-store.ts):
 * - `policy_rules` gains scoped allows: kind `url` (a page or a path, `match`), and
 *   `keywords` = 1 where keyword rules still apply inside the allow. SQLite cannot widen
 *   a CHECK in place, so the table is rebuilt; existing allows keep their meaning
 *   (whole site, keywords off).
 * - `users.disabled_at`: a disabled account cannot log in and has no sessions.
 * - `login_throttle`: failed logins counted per source address and per (address, name),
 *   so guessing from one address neither sprays many names nor locks the real user out
 *   (it replaces `login_failures`, which counted per name only).
 */
export const DISTRICT_LATER_MIGRATIONS: readonly string[] = [
  `CREATE TABLE policy_rules_scoped (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     action TEXT NOT NULL CHECK (action IN ('allow', 'block')),
     kind TEXT NOT NULL CHECK (kind IN ('domain', 'keyword', 'url')),
     value TEXT NOT NULL,
     match TEXT CHECK (match IN ('page', 'path')),
     keywords INTEGER NOT NULL DEFAULT 0,
     profile TEXT,
     category TEXT,
     school TEXT,
     note TEXT NOT NULL DEFAULT '',
     review_seq INTEGER,
     created_by TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     removed_by TEXT,
     removed_at INTEGER,
     CHECK ((profile IS NULL) <> (category IS NULL)),
     CHECK ((kind = 'url') = (match IS NOT NULL))
   );
   INSERT INTO policy_rules_scoped (id, action, kind, value, profile, category, school, note, review_seq, created_by, created_at, removed_by, removed_at)
     SELECT id, action, kind, value, profile, category, school, note, review_seq, created_by, created_at, removed_by, removed_at FROM policy_rules;
   DROP TABLE policy_rules;
   ALTER TABLE policy_rules_scoped RENAME TO policy_rules;
   CREATE INDEX policy_rules_live ON policy_rules(removed_at);
   ALTER TABLE users ADD COLUMN disabled_at INTEGER;
   DROP TABLE login_failures;
   CREATE TABLE login_throttle (
     key TEXT PRIMARY KEY,
     failures INTEGER NOT NULL,
     last_at INTEGER NOT NULL,
     blocked_until INTEGER NOT NULL
   ) WITHOUT ROWID;`,
];
