import type Database from 'better-sqlite3';
import type { ServerResponse } from 'node:http';
import { HttpError, sendJson } from './http.js';
import type { CentralStore } from './store.js';

/**
 * POST /api/v1/erasures: a school's gateway forwards a parent's erasure request
 * (Law 91/2025/QH15; docs/du-lieu-ca-nhan.md §7). The collector knows a device only by
 * the pseudonym its school's gateway gave it, so the request names the pseudonym and
 * the school comes from the token: one school can never erase another's data.
 *
 * Raw events (stored and still in the inbox) of that device are deleted; its review
 * requests stay as the district's record of a decision on a page, with the device and
 * the child's note removed. Daily counts hold no device and are kept.
 *
 * Body `{ school, requests: [{ id, client, requestedAt }] }` (src/privacy/erasure-queue.ts);
 * answer `{ acked: [id, …], events, reviews }`. Acknowledging twice is harmless.
 */

const PSEUDONYM = /^[0-9a-f]{16}$/;
const MAX_REQUESTS = 500;
/** What an erased review request keeps in place of the device. */
export const ERASED_CLIENT = 'erased';

export interface ErasureResult {
  readonly acked: string[];
  readonly events: number;
  readonly reviews: number;
  /** Safeguarding alerts kept for the counsellor without the device's pseudonym. */
  readonly alerts: number;
}

export function validateErasureBatch(body: unknown): { school: string; requests: { id: string; client: string }[] } {
  const batch = body as { school?: unknown; requests?: unknown } | null;
  if (typeof batch !== 'object' || batch === null || typeof batch.school !== 'string' || !Array.isArray(batch.requests)) {
    throw new HttpError(400, 'bad_batch', 'expected { school, requests: [...] }');
  }
  if (batch.requests.length > MAX_REQUESTS) throw new HttpError(413, 'too_many', `at most ${MAX_REQUESTS} requests a batch`);
  const requests = batch.requests.map((r: unknown, i) => {
    const request = r as { id?: unknown; client?: unknown } | null;
    if (
      typeof request?.id !== 'string' ||
      request.id === '' ||
      request.id.length > 64 ||
      typeof request.client !== 'string' ||
      !PSEUDONYM.test(request.client)
    ) {
      throw new HttpError(400, 'bad_batch', `requests[${i}]: needs id and client (16 hex digits)`);
    }
    return { id: request.id, client: request.client };
  });
  return { school: batch.school, requests };
}

/** Erases what the collector holds of each device of `school`; one transaction. */
export function eraseSchoolDevices(db: Database.Database, school: string, requests: readonly { id: string; client: string }[]): Omit<ErasureResult, 'alerts'> {
  const hasTable = (name: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
  const inbox = hasTable('events_inbox') ? db.prepare('DELETE FROM events_inbox WHERE school = ? AND client = ?') : null;
  const events = db.prepare('DELETE FROM events WHERE school = ? AND client = ?');
  const reviews = hasTable('review_requests') ? db.prepare("UPDATE review_requests SET client = ?, note = '' WHERE school = ? AND client = ?") : null;
  return db
    .transaction(() => {
      let removed = 0;
      let anonymised = 0;
      for (const { client } of requests) {
        removed += events.run(school, client).changes + (inbox?.run(school, client).changes ?? 0);
        anonymised += reviews?.run(ERASED_CLIENT, school, client).changes ?? 0;
      }
      return { acked: requests.map((r) => r.id), events: removed, reviews: anonymised };
    })
    .immediate();
}

/** The endpoint, once the school is authenticated (server.ts: `schoolOf`) and the body read. */
export async function handleErasures(
  store: Pick<CentralStore, 'eraseDevices' | 'alerts'>,
  schoolId: string,
  body: unknown,
  response: ServerResponse,
  audit: (school: string, result: ErasureResult) => void,
): Promise<void> {
  const batch = validateErasureBatch(body);
  if (batch.school !== schoolId) throw new HttpError(403, 'wrong_school', `school: the token belongs to ${schoolId}, not ${batch.school}`);
  const devices = [...new Set(batch.requests.map((r) => r.client))];
  // Two steps, not one transaction: both are idempotent and the gateway sends the request
  // again until it is acknowledged, so a crash between them is finished by the next one.
  const erased = await store.eraseDevices(schoolId, devices);
  const alerts = await store.alerts.anonymiseDevices(schoolId, devices, ERASED_CLIENT);
  const result: ErasureResult = { acked: batch.requests.map((r) => r.id), ...erased, alerts };
  audit(schoolId, result);
  sendJson(response, 200, result);
}
