/**
 * A request from a student or teacher, as it travels from a gateway to the collector
 * (POST /api/v1/reviews): either "review this block" from the block page, or "report
 * this page that was not blocked". Same trust rules as events: the gateway normalises
 * when it records, the collector checks again field by field.
 *
 *   POST /api/v1/reviews   `Authorization: Bearer <school token>`
 *                          body `{"school":ID,"requests":[WireReviewRequest…]}` (JSON, gzip allowed)
 *                          200 `{"acked":[ids]}`: every id stored now or held already.
 */
import { BatchError, clip, LIMITS, stripQuery, withoutNul } from './wire.js';

export const REVIEW_KINDS = ['review', 'report'] as const;
export type ReviewKind = (typeof REVIEW_KINDS)[number];

export interface WireReviewRequest {
  /** Unique per gateway and stable across resends (a ULID): the collector's idempotency key with the school. */
  readonly id: string;
  readonly kind: ReviewKind;
  /** Milliseconds since the epoch. */
  readonly time: number;
  readonly host: string;
  /** The page reported (reports) or blocked (reviews), never with a query string. */
  readonly path: string;
  /** The category that blocked it (review), or the reporter's suggestion (report, may be null). */
  readonly category: string | null;
  /** The profile of the person asking. */
  readonly profile: string;
  /** The blocked event's id when the gateway found it from the block page's reference. */
  readonly event: string | null;
  /** The reference shown on the block page, as typed back. */
  readonly reference: string | null;
  /** Free text from a child: personal data, bounded. */
  readonly note: string;
  /** Pseudonymous client id (hex HMAC), never an address. */
  readonly client: string;
}

export interface WireReviewBatch {
  readonly school: string;
  readonly requests: readonly WireReviewRequest[];
}

export interface WireReviewAck {
  readonly acked: readonly string[];
}

export const REVIEW_LIMITS = {
  note: 500,
  reference: 64,
  batchRequests: 200,
} as const;

const ID_RE = /^[0-9A-Za-z_-]{16,64}$/;
const CLIENT_RE = /^[0-9a-f]{8,64}$/;
const HOST_RE = /^[^\s/?#@]{1,253}$/;
const EARLIEST = Date.UTC(2020, 0, 1);
const MAX_CLOCK_SKEW_MS = 24 * 3600 * 1000;

function fail(where: string, message: string): never {
  throw new BatchError(`${where}: ${message}`);
}

function text(record: Record<string, unknown>, key: string, limit: number, where: string, required: boolean): string | null {
  const value = record[key];
  if (value === null || value === undefined) {
    if (required) fail(`${where}.${key}`, 'is required');
    return null;
  }
  if (typeof value !== 'string') fail(`${where}.${key}`, 'must be a string');
  if (value.length > limit) fail(`${where}.${key}`, `longer than ${limit} characters`);
  if (required && value.length === 0) fail(`${where}.${key}`, 'must not be empty');
  // As for events (wire.ts withoutNul): PostgreSQL's text refuses NUL, and a refused batch would hold up the shipping of everything behind it.
  return withoutNul(value);
}

export function validateReviewRequest(value: unknown, where: string, now: number): WireReviewRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(where, 'must be an object');
  const record = value as Record<string, unknown>;
  const id = text(record, 'id', LIMITS.id, where, true)!;
  if (!ID_RE.test(id)) fail(`${where}.id`, 'must be 16–64 characters of [0-9A-Za-z_-]');
  const kind = record.kind;
  if (kind !== 'review' && kind !== 'report') fail(`${where}.kind`, 'must be "review" or "report"');
  const time = record.time;
  if (typeof time !== 'number' || !Number.isSafeInteger(time)) fail(`${where}.time`, 'must be an integer (milliseconds since the epoch)');
  if (time < EARLIEST || time > now + MAX_CLOCK_SKEW_MS) fail(`${where}.time`, 'out of range');
  const host = text(record, 'host', LIMITS.host, where, true)!;
  if (!HOST_RE.test(host)) fail(`${where}.host`, 'not a host name or address');
  const path = text(record, 'path', LIMITS.path, where, false) ?? '/';
  const category = text(record, 'category', LIMITS.label, where, false) || null;
  const profile = text(record, 'profile', LIMITS.label, where, true)!;
  const event = text(record, 'event', LIMITS.id, where, false) || null;
  const reference = text(record, 'reference', REVIEW_LIMITS.reference, where, false) || null;
  const note = text(record, 'note', REVIEW_LIMITS.note, where, false) ?? '';
  const client = text(record, 'client', 64, where, true)!;
  if (!CLIENT_RE.test(client)) fail(`${where}.client`, 'must be a pseudonymous id (hex), never an address');
  return {
    id,
    kind,
    time,
    host: host.toLowerCase(),
    path: stripQuery(path.startsWith('/') ? path : `/${path}`),
    category,
    profile,
    event,
    reference,
    note: clip(note, REVIEW_LIMITS.note),
    client,
  };
}

export function validateReviewBatch(value: unknown, now: number = Date.now()): WireReviewBatch {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('body', 'must be a JSON object');
  const record = value as Record<string, unknown>;
  const school = record.school;
  if (typeof school !== 'string' || school.length === 0 || school.length > 64) fail('school', 'must be the school id');
  const requests = record.requests;
  if (!Array.isArray(requests)) fail('requests', 'must be an array');
  if (requests.length > REVIEW_LIMITS.batchRequests) fail('requests', `more than ${REVIEW_LIMITS.batchRequests} requests in one batch`);
  return { school, requests: requests.map((r, i) => validateReviewRequest(r, `requests[${i}]`, now)) };
}
