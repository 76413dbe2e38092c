import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../src/central/sqlite-store.js';
import { EVENT_FIELDS } from '../src/events/event-schema.js';
import { EVENTS_DB_FILE, openEventLog } from '../src/events/log.js';

/**
 * The event's fields are declared once (event-schema.ts); the SQLite tables were built by
 * migrations that have shipped and are never edited. A new file of either store must
 * come out with every declared field, of the declared type and nullability.
 */
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'lachan-schema-'));
  dirs.push(dir);
  return dir;
}

function columnsOf(file: string, table: string): Map<string, { type: string; notnull: number }> {
  const db = new Database(file, { readonly: true });
  try {
    const rows = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string; type: string; notnull: number }[];
    return new Map(rows.map((r) => [r.name, { type: r.type, notnull: r.notnull }]));
  } finally {
    db.close();
  }
}

function expectDeclaredFields(columns: Map<string, { type: string; notnull: number }>): void {
  for (const field of EVENT_FIELDS) {
    expect({ field: field.name, ...columns.get(field.name) }).toEqual({ field: field.name, type: field.sqlite, notnull: field.nullable ? 0 : 1 });
  }
}

describe('the event schema', () => {
  it('matches the gateway log built by its migrations', async () => {
    const dir = tempDir();
    const log = openEventLog({ dataDir: dir });
    await log.close();
    expectDeclaredFields(columnsOf(path.join(dir, EVENTS_DB_FILE), 'events'));
  });

  it("matches the collector's events and inbox built by its migrations", async () => {
    const dir = tempDir();
    const store = openSqliteStore({ dataDir: dir, writerThread: false });
    await store.close();
    expectDeclaredFields(columnsOf(store.file, 'events'));
    expectDeclaredFields(columnsOf(store.file, 'events_inbox'));
  });
});
