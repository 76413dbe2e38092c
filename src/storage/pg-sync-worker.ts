/**
 * The thread behind SyncPostgres (pg-sync.ts): one PostgreSQL connection that runs each
 * statement the main thread posts, posts the answer back and wakes the main thread,
 * which waits on the shared flag meanwhile.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import pg from 'pg';
import { pgTypes } from './postgres.js';

export interface SyncWorkerData {
  readonly kind: 'lachan-pg-sync';
  readonly url: string;
  readonly port: MessagePort;
  /** Int32 flag: the id of the last statement answered; the main thread waits until it holds its own. */
  readonly flag: SharedArrayBuffer;
  /** The server's statement_timeout, so a statement the main thread gave up on is cancelled there too. */
  readonly statementTimeoutMs: number;
  /** The server's lock_timeout: how long a statement may wait for one lock (pg-sync.ts, LOCK_TIMEOUT_MS). */
  readonly lockTimeoutMs: number;
}

export interface SyncRequest {
  readonly id: number;
  readonly sql: string;
  readonly params: readonly unknown[];
}

export type SyncReply =
  | { readonly id: number; readonly ok: true; readonly rows: Record<string, unknown>[]; readonly changes: number }
  | { readonly id: number; readonly ok: false; readonly message: string; readonly code: string | undefined };

const data = workerData as SyncWorkerData;
if (data?.kind === 'lachan-pg-sync') {
  const flag = new Int32Array(data.flag);
  // Settings the URL names win over these (node-postgres reads the URL last): `?lock_timeout=10000`.
  const client = new pg.Client({
    connectionString: data.url,
    types: pgTypes,
    statement_timeout: data.statementTimeoutMs,
    lock_timeout: data.lockTimeoutMs,
  });
  const connected = client.connect();
  // The main thread is blocked while a statement runs: answers are all it waits for. The
  // reply is queued before the flag names it, so the main thread finds it once woken.
  const answer = (reply: SyncReply) => {
    data.port.postMessage(reply);
    Atomics.store(flag, 0, reply.id);
    Atomics.notify(flag, 0);
  };
  // A dropped connection fails the statement that needed it, not the process.
  client.on('error', () => {});
  // Statements arrive one at a time (the main thread waits for each, or gives up on it), so they run in order.
  data.port.on('message', (request: SyncRequest) => {
    // Buffers arrive as plain Uint8Arrays; node-postgres sends only Buffers as bytea.
    const params = request.params.map((p) => (p instanceof Uint8Array && !Buffer.isBuffer(p) ? Buffer.from(p.buffer, p.byteOffset, p.byteLength) : p));
    connected
      .then(() => client.query(request.sql, params))
      .then(
        (result) => answer({ id: request.id, ok: true, rows: result.rows as Record<string, unknown>[], changes: result.rowCount ?? 0 }),
        (error: unknown) =>
          answer({ id: request.id, ok: false, message: error instanceof Error ? error.message : String(error), code: (error as { code?: string }).code }),
      );
  });
  parentPort?.on('message', (message: unknown) => {
    if (message === 'close') void client.end().finally(() => process.exit(0));
  });
}
