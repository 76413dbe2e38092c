import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BUSY_TIMEOUT_MS, migrate } from '../storage/sqlite.js';
import { DAY_MS, ERASURE_QUEUE_RETENTION_DAYS } from './retention.js';

/**
 * Erasure requests waiting for the collector (docs/du-lieu-ca-nhan.md §7): the
 * collector holds a school's events by pseudonym only, so the request carries the
 * pseudonym and nothing else. Kept in `<data>/privacy.db`, apart from events.db, whose
 * schema belongs to the event log.
 */
export const PRIVACY_DB_FILE = 'privacy.db';
/** Where the collector takes them (src/central/erasures.ts). */
export const ERASURES_PATH = '/api/v1/erasures';

const MIGRATIONS = [
  `CREATE TABLE erasure_requests (
     id TEXT PRIMARY KEY,
     client TEXT NOT NULL,
     requested_at INTEGER NOT NULL,
     sent_at INTEGER
   ) WITHOUT ROWID;
   CREATE INDEX erasure_requests_pending ON erasure_requests(requested_at) WHERE sent_at IS NULL;`,
];

/** One request on the wire: POST ERASURES_PATH `{ school, requests: [...] }` → `{ acked: [id, …] }`. */
export interface WireErasureRequest {
  readonly id: string;
  readonly client: string;
  readonly requestedAt: number;
}

export interface QueuedErasure extends WireErasureRequest {
  readonly sentAt: number | null;
}

export class ErasureQueue {
  readonly #db: Database.Database;

  constructor(dataDir: string) {
    this.#db = new Database(path.join(dataDir, PRIVACY_DB_FILE));
    this.#db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    migrate(this.#db, MIGRATIONS, PRIVACY_DB_FILE);
  }

  add(client: string, at: number = Date.now()): WireErasureRequest {
    const request = { id: randomUUID(), client, requestedAt: at };
    this.#db.prepare('INSERT INTO erasure_requests (id, client, requested_at) VALUES (?, ?, ?)').run(request.id, client, at);
    return request;
  }

  pending(limit = 500): WireErasureRequest[] {
    return this.#db
      .prepare<[number], { id: string; client: string; requested_at: number }>(
        'SELECT id, client, requested_at FROM erasure_requests WHERE sent_at IS NULL ORDER BY requested_at LIMIT ?',
      )
      .all(limit)
      .map((r) => ({ id: r.id, client: r.client, requestedAt: r.requested_at }));
  }

  all(): QueuedErasure[] {
    return this.#db
      .prepare<[], { id: string; client: string; requested_at: number; sent_at: number | null }>('SELECT * FROM erasure_requests ORDER BY requested_at')
      .all()
      .map((r) => ({ id: r.id, client: r.client, requestedAt: r.requested_at, sentAt: r.sent_at }));
  }

  markSent(ids: readonly string[], at: number = Date.now()): number {
    const mark = this.#db.prepare('UPDATE erasure_requests SET sent_at = ? WHERE id = ? AND sent_at IS NULL');
    return this.#db.transaction(() => ids.reduce((n, id) => n + mark.run(at, id).changes, 0))();
  }

  /** Forgets requests the collector acknowledged long ago. */
  expire(now: number = Date.now()): number {
    return this.#db.prepare('DELETE FROM erasure_requests WHERE sent_at IS NOT NULL AND sent_at < ?').run(now - ERASURE_QUEUE_RETENTION_DAYS * DAY_MS).changes;
  }

  close(): void {
    this.#db.close();
  }
}

export interface CollectorTarget {
  /** The collector's base URL, as `serve --central` takes it. */
  readonly centralUrl: string;
  readonly schoolId: string;
  readonly tokenFile: string;
}

/**
 * Sends the pending requests to the collector once; returns how many it acknowledged.
 * Throws on a network failure or a refusal, leaving them queued for the next try.
 */
export async function sendErasures(queue: ErasureQueue, target: CollectorTarget): Promise<number> {
  const requests = queue.pending();
  if (requests.length === 0) return 0;
  const token = readFileSync(target.tokenFile, 'utf8').trim();
  const response = await fetch(`${target.centralUrl.replace(/\/+$/, '')}${ERASURES_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ school: target.schoolId, requests }),
    signal: AbortSignal.timeout(30_000),
  });
  if (!response.ok) throw new Error(`collector answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
  const ack = (await response.json()) as { acked?: unknown };
  const acked = Array.isArray(ack.acked) ? ack.acked.filter((id): id is string => typeof id === 'string') : [];
  queue.markSent(acked);
  return acked.length;
}

/** Sends the queue now and then every `intervalMs` (for `serve --central`); returns a stop function. */
export function startErasureSender(dataDir: string, target: CollectorTarget, onError: (error: Error) => void, intervalMs = 600_000): () => void {
  const tick = () => {
    // Most gateways never receive a request: no file, nothing to open.
    if (!existsSync(path.join(dataDir, PRIVACY_DB_FILE))) return;
    const queue = new ErasureQueue(dataDir);
    queue.expire();
    sendErasures(queue, target)
      .catch((error: unknown) => onError(error as Error))
      .finally(() => queue.close());
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
