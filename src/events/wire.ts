/**
 * The event as it travels from a gateway to the collector (POST /api/v1/events), and
 * the field-by-field check both ends apply. The gateway normalises on `record()` so
 * everything it stores passes this check; the collector checks again, because it must
 * not trust what arrives.
 */
export { wireFieldsOf, type WireEvent } from './event-schema.js';
import type { WireEvent } from './event-schema.js';

/** `{ "school": ID, "events": [...] }`, JSON, optionally gzip-encoded. */
export interface WireBatch {
  readonly school: string;
  readonly events: readonly WireEvent[];
}

/** The collector's reply: every id it stored now or held already. */
export interface WireAck {
  readonly acked: readonly string[];
  readonly stored: number;
  readonly duplicates: number;
}

export const LIMITS = {
  id: 64,
  label: 64, // profile, category
  reason: 32,
  rule: 1024,
  source: 1024,
  host: 253,
  path: 2048,
  method: 16,
  batchEvents: 2000,
  /** Requests one event may stand for: far above any real visit, far below 2^53. */
  count: 1_000_000_000,
} as const;

/** The earliest event time accepted: anything before is a broken clock. */
export const EARLIEST_EVENT_TIME = Date.UTC(2020, 0, 1);
const MAX_CLOCK_SKEW_MS = 24 * 3600 * 1000;

const ID_RE = /^[0-9A-Za-z_-]{16,64}$/;
const CLIENT_RE = /^[0-9a-f]{8,64}$/;
const METHOD_RE = /^[A-Z][A-Z-]{0,15}$/;
const HOST_RE = /^[^\s/?#@]{1,253}$/;

/** Cuts a path at its query or fragment and bounds its length. */
export function stripQuery(path: string): string {
  let end = path.length;
  const q = path.indexOf('?');
  if (q !== -1) end = q;
  const h = path.indexOf('#');
  if (h !== -1 && h < end) end = h;
  const cut = end === path.length ? path : path.slice(0, end);
  return cut.length > LIMITS.path ? cut.slice(0, LIMITS.path) : cut;
}

/**
 * The text with each NUL (U+0000) replaced by U+FFFD. PostgreSQL's text refuses NUL (and
 * would refuse the whole batch, which the gateway would send again forever); SQLite stores
 * it. Replaced wherever an event is made or received, so both stores hold the same text.
 * U+FFFD is one UTF-16 unit, as NUL is: lengths and limits are unchanged.
 */
export function withoutNul(value: string): string {
  return value.includes('\0') ? value.replaceAll('\0', '\uFFFD') : value;
}

/**
 * An event's path as stored and shipped: no NUL (withoutNul), no query or fragment,
 * bounded (stripQuery). The gateway's log and the collector's check make it the same way.
 */
export function eventPath(path: string): string {
  return stripQuery(withoutNul(path));
}

export function clip(value: string, limit: number): string {
  return value.length > limit ? value.slice(0, limit) : value;
}

export class BatchError extends Error {
  readonly code = 'LACHAN_BAD_BATCH';
}

function fail(where: string, message: string): never {
  throw new BatchError(`${where}: ${message}`);
}

function requiredString(record: Record<string, unknown>, key: string, limit: number, where: string): string {
  const value = record[key];
  if (typeof value !== 'string') fail(`${where}.${key}`, 'must be a string');
  if (value.length === 0) fail(`${where}.${key}`, 'must not be empty');
  if (value.length > limit) fail(`${where}.${key}`, `longer than ${limit} characters`);
  return withoutNul(value);
}

function optionalString(record: Record<string, unknown>, key: string, limit: number, where: string): string | null {
  const value = record[key];
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string') fail(`${where}.${key}`, 'must be a string or null');
  if (value.length > limit) fail(`${where}.${key}`, `longer than ${limit} characters`);
  return value.length === 0 ? null : withoutNul(value);
}

/**
 * Checks one event. Unknown profiles and categories are accepted (a school may run
 * newer rules than the collector knows); a field of the wrong type or shape is not.
 */
export function validateEvent(value: unknown, where: string, now: number): WireEvent {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(where, 'must be an object');
  const record = value as Record<string, unknown>;
  const id = requiredString(record, 'id', LIMITS.id, where);
  if (!ID_RE.test(id)) fail(`${where}.id`, 'must be 16–64 characters of [0-9A-Za-z_-]');
  const time = record.time;
  if (typeof time !== 'number' || !Number.isSafeInteger(time)) fail(`${where}.time`, 'must be an integer (milliseconds since the epoch)');
  if (time < EARLIEST_EVENT_TIME || time > now + MAX_CLOCK_SKEW_MS) fail(`${where}.time`, 'out of range');
  const profile = requiredString(record, 'profile', LIMITS.label, where);
  const category = optionalString(record, 'category', LIMITS.label, where);
  const reason = requiredString(record, 'reason', LIMITS.reason, where);
  const rule = optionalString(record, 'rule', LIMITS.rule, where);
  const source = optionalString(record, 'source', LIMITS.source, where);
  const host = requiredString(record, 'host', LIMITS.host, where);
  if (!HOST_RE.test(host)) fail(`${where}.host`, 'not a host name or address');
  const rawPath = record.path;
  if (typeof rawPath !== 'string') fail(`${where}.path`, 'must be a string');
  if (rawPath.length > LIMITS.path) fail(`${where}.path`, `longer than ${LIMITS.path} characters`);
  const method = requiredString(record, 'method', LIMITS.method, where);
  if (!METHOD_RE.test(method)) fail(`${where}.method`, 'must be an upper-case HTTP method');
  const client = requiredString(record, 'client', 64, where);
  // A pseudonym is lower-case hex; an IPv4 (dots) or IPv6 (colons) address is refused.
  if (!CLIENT_RE.test(client)) fail(`${where}.client`, 'must be a pseudonymous id (hex), never an address');
  const count = record.count ?? 1;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1 || count > LIMITS.count)
    fail(`${where}.count`, `must be an integer from 1 to ${LIMITS.count}`);
  return { id, time, profile, category, reason, rule, source, host, path: eventPath(rawPath), method, client, count };
}

export function validateBatch(value: unknown, now: number = Date.now()): WireBatch {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('body', 'must be a JSON object');
  const record = value as Record<string, unknown>;
  const school = record.school;
  if (typeof school !== 'string' || school.length === 0 || school.length > 64) fail('school', 'must be the school id');
  const events = record.events;
  if (!Array.isArray(events)) fail('events', 'must be an array');
  if (events.length > LIMITS.batchEvents) fail('events', `more than ${LIMITS.batchEvents} events in one batch`);
  const checked = new Array<WireEvent>(events.length);
  for (let i = 0; i < events.length; i++) checked[i] = validateEvent(events[i], `events[${i}]`, now);
  return { school, events: checked };
}
