import type Database from 'better-sqlite3';

/**
 * Applies the migrations a database has not seen yet and records progress in
 * `PRAGMA user_version`. Each step reads the version inside its own write transaction,
 * so two processes opening a new file at once (the collector and `central school add`)
 * apply each migration exactly once. Append to the list; never edit an entry that has
 * shipped, so every existing file can be brought forward.
 */
export function migrate(db: Database.Database, migrations: readonly string[], what: string): void {
  const step = db.transaction((): boolean => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > migrations.length) {
      throw Object.assign(new Error(`${what} was written by a newer lachan (schema ${current}, this one knows ${migrations.length})`), {
        code: 'LACHAN_SCHEMA_TOO_NEW',
      });
    }
    if (current === migrations.length) return false;
    db.exec(migrations[current]!);
    db.pragma(`user_version = ${current + 1}`);
    return true;
  });
  while (step.immediate()) {
    // next migration
  }
}
