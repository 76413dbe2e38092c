/**
 * A PostgreSQL connection with better-sqlite3's synchronous API (sql.ts), for the
 * collector's district modules, which are synchronous as SQLite made them. A worker
 * thread (pg-sync-worker.ts) holds the connection; each statement is posted to it and
 * the main thread waits on a shared flag for the answer, as better-sqlite3 waits on the
 * disk. On loopback or a LAN that is a fraction of a millisecond, and these tables see
 * dashboard traffic only: the event path (pg-store.ts) stays asynchronous on its pool.
 * While a statement here waits, the pool cannot send anything: a statement here that
 * waits for a lock the pool holds across a round trip (an open transaction) would wait
 * for good, so the pool never does (pg-store.ts, oneRoundTrip). Should a statement here
 * wait for a lock all the same (a mistake of that kind, or a lock another process holds:
 * a second `central serve`, an operator's psql), PostgreSQL ends the wait after
 * LOCK_TIMEOUT_MS with SQLSTATE 55P03, which the collector answers with a 503 (http.ts,
 * databaseBusy), rather than the whole process standing still until the statement timeout.
 *
 * Each statement carries an id, and the flag holds the id of the last statement answered:
 * a reply that comes after its statement was given up on (timed out) is not taken for the
 * answer to the statement after it; the main thread waits on for its own and drops the
 * late one.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { STATEMENT_TIMED_OUT } from './lock-wait.js';
import { numberPlaceholders } from './postgres.js';
import type { SqlConnection, SqlRunResult, SqlStatement } from './sql.js';
import type { SyncReply, SyncRequest, SyncWorkerData } from './pg-sync-worker.js';

/**
 * The compiled worker beside this module; run from TypeScript sources (the tests, after
 * `npm run build`), the compiled twin under dist/.
 */
const WORKER_URL = [new URL('./pg-sync-worker.js', import.meta.url), new URL('../../dist/src/storage/pg-sync-worker.js', import.meta.url)].find((url) =>
  existsSync(fileURLToPath(url)),
);
/** A statement that takes longer than this is taken for a hung server or a dead thread. */
const STATEMENT_TIMEOUT_MS = 60_000;
/** How much longer the server lets a statement run than the main thread waits for it. */
const SERVER_CANCEL_MARGIN_MS = 1_000;
/**
 * How long a statement here waits for one lock before PostgreSQL gives up on it
 * (lock_timeout, SQLSTATE 55P03, LOCK_NOT_AVAILABLE): the whole process (ingest, every
 * page) stands still while it waits, so a lock that does not come free soon costs this
 * one request a 503, not the collector a freeze. What legitimately makes a statement here
 * wait: another session's statement on a row it writes (a session's or request's row; the
 * other process's synchronous transactions are a few round trips of a millisecond, the
 * pool's ingest statement of up to 4,000 events a tenth of a second at bench:ingest-postgres's
 * rate, an erasure's DELETE a school's events); a month's partition made or dropped
 * (ACCESS EXCLUSIVE on `events` for a few milliseconds, once the events reads it queues
 * behind, pages of 2,000 rows, have finished). All well under a second; 3 s is several
 * times that, and a tenth of the 30 s a gateway waits for its batch to be answered.
 */
export const LOCK_TIMEOUT_MS = 3_000;
/** Ids cycle within the flag's positive Int32 range; 0 means "nothing answered yet". */
const MAX_REQUEST_ID = 0x7fff_ffff;

export interface SyncPostgresOptions {
  /**
   * How long a statement may take before the main thread gives up on it (default 60 s). The
   * server cancels it a moment later (statement_timeout, SERVER_CANCEL_MARGIN_MS more), so the
   * connection is free for the next one; later, not the same moment, so that the caller
   * always sees the same error (STATEMENT_TIMED_OUT), never the server's cancellation racing it.
   */
  readonly statementTimeoutMs?: number;
  /** How long a statement may wait for a lock (default LOCK_TIMEOUT_MS; 0: for ever, up to the statement's timeout). */
  readonly lockTimeoutMs?: number;
}

export class SyncPostgresError extends Error {
  /**
   * PostgreSQL's SQLSTATE (55P03 when a lock did not come free in time), STATEMENT_TIMED_OUT
   * when the statement did not answer in time, or LACHAN_PG_SYNC for any other failure
   * without a code of its own (the thread gave no answer, the connection was closed).
   */
  readonly code: string;
  constructor(message: string, code: string | undefined) {
    super(message);
    this.code = code ?? 'LACHAN_PG_SYNC';
  }
}

export class SyncPostgres implements SqlConnection {
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #flag: Int32Array;
  readonly #timeoutMs: number;
  #lastId = 0;
  /** Open transactions and savepoints. */
  #depth = 0;
  #savepoints = 0;

  /** Whether a compiled worker exists (not before the first build). */
  static available(): boolean {
    return WORKER_URL !== undefined;
  }

  constructor(url: string, options: SyncPostgresOptions = {}) {
    const { port1, port2 } = new MessageChannel();
    const flag = new SharedArrayBuffer(4);
    this.#timeoutMs = options.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS;
    const data: SyncWorkerData = {
      kind: 'lachan-pg-sync',
      url,
      port: port2,
      flag,
      statementTimeoutMs: this.#timeoutMs + SERVER_CANCEL_MARGIN_MS,
      lockTimeoutMs: options.lockTimeoutMs ?? LOCK_TIMEOUT_MS,
    };
    if (WORKER_URL === undefined) throw new SyncPostgresError('pg-sync-worker.js not built (npm run build)', undefined);
    this.#worker = new Worker(WORKER_URL, { workerData: data, transferList: [port2] });
    // The thread must not keep a finished command alive.
    this.#worker.unref();
    this.#port = port1;
    this.#flag = new Int32Array(flag);
  }

  /** Runs one statement (placeholders already numbered) and waits for its answer. */
  query(sql: string, params: readonly unknown[]): { rows: Record<string, unknown>[]; changes: number } {
    const id = (this.#lastId = (this.#lastId % MAX_REQUEST_ID) + 1);
    this.#port.postMessage({ id, sql, params } satisfies SyncRequest);
    this.#awaitAnswer(id);
    const reply = this.#takeReply(id);
    if (reply === undefined) throw new SyncPostgresError('the PostgreSQL thread gave no answer', undefined);
    if (!reply.ok) throw new SyncPostgresError(reply.message, reply.code);
    for (const row of reply.rows) {
      for (const [key, value] of Object.entries(row)) if (value instanceof Uint8Array && !Buffer.isBuffer(value)) row[key] = Buffer.from(value);
    }
    return reply;
  }

  /**
   * Blocks until the flag holds `id`. A late answer to an abandoned statement also wakes
   * this wait (it changes the flag), so it waits again, on what is left of the time.
   */
  #awaitAnswer(id: number): void {
    const deadline = performance.now() + this.#timeoutMs;
    for (let seen = Atomics.load(this.#flag, 0); seen !== id; seen = Atomics.load(this.#flag, 0)) {
      const left = deadline - performance.now();
      if (left <= 0 || Atomics.wait(this.#flag, 0, seen, left) === 'timed-out') {
        throw new SyncPostgresError(`PostgreSQL did not answer within ${this.#timeoutMs / 1000} s`, STATEMENT_TIMED_OUT);
      }
    }
  }

  /** The reply to `id`; replies to abandoned statements queued before it are dropped. */
  #takeReply(id: number): SyncReply | undefined {
    for (let next = receiveMessageOnPort(this.#port); next !== undefined; next = receiveMessageOnPort(this.#port)) {
      const reply = next.message as SyncReply;
      if (reply.id === id) return reply;
    }
    return undefined;
  }

  prepare<Params extends unknown[] = unknown[], Row = unknown>(sql: string): SqlStatement<Params, Row> {
    const text = numberPlaceholders(sql);
    return {
      get: (...params) => this.query(text, params).rows[0] as Row | undefined,
      all: (...params) => this.query(text, params).rows as Row[],
      run: (...params): SqlRunResult => ({ changes: this.query(text, params).changes }),
    };
  }

  transaction<T>(fn: () => T): () => T {
    return () => {
      const savepoint = this.#depth > 0 ? `s${++this.#savepoints}` : null;
      this.query(savepoint === null ? 'BEGIN' : `SAVEPOINT ${savepoint}`, []);
      this.#depth++;
      try {
        const result = fn();
        this.query(savepoint === null ? 'COMMIT' : `RELEASE SAVEPOINT ${savepoint}`, []);
        return result;
      } catch (error) {
        try {
          this.query(savepoint === null ? 'ROLLBACK' : `ROLLBACK TO SAVEPOINT ${savepoint}`, []);
        } catch {
          // the connection is gone; the server rolled back already
        }
        throw error;
      } finally {
        this.#depth--;
      }
    };
  }

  async close(): Promise<void> {
    const exited = new Promise((resolve) => this.#worker.once('exit', resolve));
    this.#worker.postMessage('close');
    await exited;
    this.#port.close();
  }
}
