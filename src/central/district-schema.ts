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
