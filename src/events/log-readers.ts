/**
 * Reading the gateway's event log from outside the proxy (`lachan logs`, tests): opened
 * read-only, beside the proxy that may be writing it, creating nothing.
 */
import path from 'node:path';
import { openReadOnly, type SqliteDatabase } from '../storage/sqlite.js';
import type { ReviewKind } from './review-wire.js';
import { EVENTS_DB_FILE, toStored, type DbRow, type EventQuery, type ReviewRow, type StoredEvent } from './log.js';

export function queryEvents(db: SqliteDatabase, query: EventQuery): StoredEvent[] {
  const where: string[] = [];
  const params: (string | number)[] = [];
  if (query.since !== undefined) {
    where.push('time >= ?');
    params.push(query.since);
  }
  if (query.until !== undefined) {
    where.push('time < ?');
    params.push(query.until);
  }
  if (query.category !== undefined) {
    where.push('category = ?');
    params.push(query.category);
  }
  if (query.profile !== undefined) {
    where.push('profile = ?');
    params.push(query.profile);
  }
  // Every column: a file an older proxy wrote lacks `count` (read as 1 by wireFieldsOf).
  const sql =
    'SELECT * FROM events' +
    (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
    ' ORDER BY time, id' +
    (query.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(query.limit))}` : '');
  return (db.prepare(sql).all(...params) as DbRow[]).map(toStored);
}

/**
 * Reads events from `<dataDir>/events.db` without creating anything (for `lachan logs`,
 * which may run beside the proxy that writes the file).
 */
export function readEventLog(dataDir: string, query: EventQuery = {}): StoredEvent[] {
  const file = path.join(dataDir, EVENTS_DB_FILE);
  const db = openReadOnly(file);
  try {
    return queryEvents(db, query);
  } finally {
    db.close();
  }
}

/** A request from the block page to review a block, or a report of a page that was not blocked. */
export interface ReviewRequest {
  readonly id: number;
  readonly kind: ReviewKind;
  readonly time: number;
  readonly eventRef: string;
  /** The event the reference named, when it was found. */
  readonly eventId: string | null;
  readonly host: string;
  readonly path: string;
  readonly category: string | null;
  readonly profile: string;
  readonly note: string;
  readonly client: string;
  readonly status: string;
  /** When the district collector acknowledged it (null: not yet, or this gateway does not ship). */
  readonly shippedAt: number | null;
}

/** Reads review requests from `<dataDir>/events.db` (oldest first) without creating anything. */
export function readReviewRequests(dataDir: string, since?: number): ReviewRequest[] {
  const db = openReadOnly(path.join(dataDir, EVENTS_DB_FILE));
  try {
    // A file the proxy has not migrated yet lacks the newer columns: they read as their defaults.
    const rows = db
      .prepare<[number], Partial<ReviewRow> & Omit<ReviewRow, 'uid' | 'kind' | 'path' | 'shipped_at'>>(
        'SELECT * FROM reviews WHERE time >= ? ORDER BY time, id',
      )
      .all(since ?? 0);
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind === 'report' ? 'report' : 'review',
      time: r.time,
      eventRef: r.event_ref,
      eventId: r.event_id,
      host: r.host,
      path: r.path ?? '/',
      category: r.category,
      profile: r.profile,
      note: r.note,
      client: r.client,
      status: r.status,
      shippedAt: r.shipped_at ?? null,
    }));
  } finally {
    db.close();
  }
}
