/**
 * A page of the events API (newest first) as SQL both stores run (`?` placeholders, the
 * PostgreSQL store numbers them), and the page made from the rows. The opaque cursor is
 * the last event's time and its place in the store's insertion order (`seq`), so the
 * next page starts strictly after it.
 */
import { EVENT_COLUMNS, wireFieldsOf, type WireEvent } from '../events/event-schema.js';
import type { PlannedQuery } from './stats-plan.js';
import { StoreError, type CentralEvent, type EventFilter, type EventPage, type PageRequest } from './store.js';

/** A row of `events` in either store: the event's fields and the collector's own columns. */
export type EventRow = WireEvent & { seq: number; school: string; received_at: number; count: number };

export function encodeCursor(time: number, seq: number): string {
  return Buffer.from(`${time}:${seq}`).toString('base64url');
}

export function decodeCursor(cursor: string): [number, number] {
  const match = /^(\d{1,16}):(\d{1,16})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw new StoreError('LACHAN_BAD_CURSOR', 'cursor: not one this collector issued');
  return [Number(match[1]), Number(match[2])];
}

/** The query for one page; it asks for one row more than the page holds, to tell whether another follows. */
export function planEventsPage(filter: EventFilter, page: PageRequest): PlannedQuery & { limit: number } {
  const where: string[] = [];
  const params: (string | number)[] = [];
  const add = (clause: string, value: string | number | undefined) => {
    if (value === undefined) return;
    where.push(clause);
    params.push(value);
  };
  add('school = ?', filter.school);
  add('profile = ?', filter.profile);
  add('category = ?', filter.category);
  add('host = ?', filter.host);
  add('time >= ?', filter.from);
  add('time < ?', filter.to);
  if (page.cursor !== undefined) {
    const [time, seq] = decodeCursor(page.cursor);
    where.push('(time, seq) < (?, ?)');
    params.push(time, seq);
  }
  const limit = Math.min(Math.max(1, Math.floor(page.limit)), 10_000);
  const sql = `SELECT seq, ${EVENT_COLUMNS}, school, received_at FROM events${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY time DESC, seq DESC LIMIT ${limit + 1}`;
  return { sql, params, limit };
}

export function toCentralEvent(row: EventRow): CentralEvent {
  return { ...wireFieldsOf(row), school: row.school, receivedAt: row.received_at };
}

export function eventsPage(rows: EventRow[], limit: number): EventPage {
  const more = rows.length > limit;
  if (more) rows.length = limit;
  const last = rows[rows.length - 1];
  return { events: rows.map(toCentralEvent), nextCursor: more && last !== undefined ? encodeCursor(last.time, last.seq) : null };
}
