import type { ServerResponse } from 'node:http';
import { gaveUpOnLock, timedOut } from '../storage/lock-wait.js';

/** An HTTP failure with a machine-readable code; the server turns it into a JSON reply. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/**
 * Seconds a client is told to wait after a lock did not come free: the lock holders the
 * collector meets pass in well under a second (pg-sync.ts, LOCK_TIMEOUT_MS; on SQLite, the
 * collector's own commits of a few milliseconds); one that holds on (an operator's session,
 * a second process) is met again, quickly, at the next try.
 */
const BUSY_RETRY_AFTER_S = 5;

/**
 * The answer to a statement that gave up waiting for a lock another session holds
 * (PostgreSQL's lock_timeout, SQLite's busy timeout; storage/lock-wait.ts): a 503 with
 * Retry-After, as the statement changed nothing and the same request may succeed shortly.
 * Null for any other error.
 */
export function databaseBusy(error: unknown): HttpError | null {
  if (!gaveUpOnLock(error)) return null;
  return new HttpError(503, 'database_busy', 'the database is busy (a lock held by another session did not come free in time); try again shortly', {
    'retry-after': String(BUSY_RETRY_AFTER_S),
  });
}

/**
 * Seconds a client is told to wait after a statement did not answer in time: as long as
 * the statement was given (pg-sync.ts, 60 s). Whatever held it (a server overloaded or
 * restarting, a network gone quiet) does not pass in seconds, and each try holds the
 * collector's main thread for that long again.
 */
const TIMEOUT_RETRY_AFTER_S = 60;

/**
 * The answer to a statement on the synchronous PostgreSQL connection that did not answer
 * in time, or null for any other error. A 503, not a 500: the collector is not at fault and
 * the condition is temporary (RFC 9110: the server is unable to handle the request now,
 * likely to be alleviated after some delay), so a client may ask again, after Retry-After;
 * not a 504, which speaks for a gateway's upstream, where a client would read it as the
 * reverse proxy in front. Unlike database_busy it cannot say that nothing was changed: the
 * statement may have finished as the wait ended.
 */
export function databaseTimedOut(error: unknown): HttpError | null {
  if (!timedOut(error)) return null;
  return new HttpError(503, 'database_timeout', 'the database did not answer in time; try again later (what was asked may or may not have been done)', {
    'retry-after': String(TIMEOUT_RETRY_AFTER_S),
  });
}

export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  response.end(text);
}
