/**
 * The collector's writer thread: stores event batches in the inbox and drains the inbox
 * into `events` (event-writer.ts) on its own connection, so SQLite's writes run on one
 * core while HTTP, gunzip, JSON and validation run on the main thread; and its helper
 * thread, which copies the WAL back into the database. Started by writer-thread.ts;
 * speaks only the messages below.
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { BUSY_TIMEOUT_MS, isBusy, sqliteErrorCode, tuneConnection } from '../storage/sqlite.js';
import { INBOX_DRAIN_EVENTS, INBOX_DRAIN_MS, prepareEventWriter, tuneWriter, WAL_AUTOCHECKPOINT_PAGES, type WriteBatch } from './event-writer.js';

export interface WriterConfig {
  readonly kind: 'lachan-ingest-writer';
  /** The writer, or the helper that copies its WAL back into the database. */
  readonly role: 'writer' | 'helper';
  readonly file: string;
  readonly cacheMiB: number;
  /** One Int32: the events in the inbox, for the main thread to read without asking. */
  readonly inboxSize: SharedArrayBuffer;
}

const CHECKPOINT_MS = 200;

export type WriterRequest =
  | { readonly type: 'write'; readonly id: number; readonly batch: WriteBatch }
  /** Replies with the number of events moved. */
  | { readonly type: 'drain'; readonly id: number }
  | { readonly type: 'close'; readonly id: number };

/** `code`: SQLite's error code (`SQLITE_BUSY`…) when SQLite raised the error. */
export type WriterReply = { readonly id: number; readonly stored: number } | { readonly id: number; readonly error: string; readonly code?: string };

function failure(id: number, error: unknown): WriterReply {
  const code = sqliteErrorCode(error);
  return { id, error: error instanceof Error ? error.message : String(error), ...(code !== undefined ? { code } : {}) };
}

// Only as the thread writer-thread.ts starts (never on import into another thread).
const config = workerData as Partial<WriterConfig> | null;
if (parentPort !== null && config?.kind === 'lachan-ingest-writer') {
  if (config.role === 'helper') help(config as WriterConfig);
  else run(parentPort, config as WriterConfig);
}

/**
 * Copies the writer's WAL back into the database every CHECKPOINT_MS on a connection
 * that only reads, so the writer's commits never do it (nor wait for its fsync): a
 * PASSIVE checkpoint runs alongside the writer, and once the WAL is wholly copied the
 * writer restarts it from the beginning. Ends when terminated.
 */
function help(config: WriterConfig): void {
  const db = new Database(config.file);
  tuneConnection(db);
  db.pragma('cache_size = -16384');
  db.pragma('wal_autocheckpoint = 0');
  setInterval(() => {
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // Busy now (another checkpoint): the next tick tries again.
    }
  }, CHECKPOINT_MS);
}

function run(port: NonNullable<typeof parentPort>, config: WriterConfig): void {
  const db = new Database(config.file);
  tuneConnection(db);
  tuneWriter(db, config.cacheMiB);
  // The helper thread copies the WAL; this limit only bounds it should that fall behind.
  db.pragma(`wal_autocheckpoint = ${4 * WAL_AUTOCHECKPOINT_PAGES}`);
  const writer = prepareEventWriter(db);
  const inboxSize = new Int32Array(config.inboxSize);
  let pending: { id: number; batch: WriteBatch }[] = [];
  let scheduled = false;
  /**
   * Until when a drain does not wait for the write lock: a write or drain gave up on a lock
   * another process holds (an operator's sqlite3 with a transaction open) less than a busy
   * timeout ago, so the lock is most likely still held. A drain that waited would hold this
   * thread for the busy timeout, and what came meanwhile would wait that out before its
   * own: a gateway's batch (its 503 after 10 s, not 5), the dashboard's queries, each asking
   * for a drain first (the overview's three statistics one after another: 5, 10 and 15 s).
   * Tried without waiting, it fails at once while the lock is held and moves the inbox as
   * soon as it is gone. Batches always wait: they are what the lock is waited out for.
   */
  let busyUntil = 0;
  const noteOutcome = (error?: unknown) => {
    busyUntil = error !== undefined && isBusy(error) ? Date.now() + BUSY_TIMEOUT_MS : 0;
  };
  /** Until a drain succeeds, the inbox may hold what a previous run left there. */
  let leftOver = true;

  /** Moves the inbox on; a failure leaves it for the next drain (nothing is lost). */
  const drain = (): number => {
    const quick = Date.now() < busyUntil;
    if (quick) db.pragma('busy_timeout = 0');
    let moved: number;
    try {
      moved = writer.drain();
    } catch (error) {
      noteOutcome(error);
      throw error;
    } finally {
      if (quick) db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
    noteOutcome();
    leftOver = false;
    Atomics.store(inboxSize, 0, writer.inboxed());
    return moved;
  };

  /**
   * Every batch that arrived while the last transaction ran goes into the next one
   * (group commit): fewer, larger commits write less.
   */
  const writePending = () => {
    scheduled = false;
    const taken = pending;
    pending = [];
    if (taken.length === 0) return;
    let replies: WriterReply[];
    try {
      const stored = writer.write(taken.map((p) => p.batch));
      replies = taken.map((p, i) => ({ id: p.id, stored: stored[i]! }));
      noteOutcome();
    } catch (error) {
      replies = taken.map((p) => failure(p.id, error));
      noteOutcome(error);
    }
    Atomics.store(inboxSize, 0, writer.inboxed());
    for (const reply of replies) port.postMessage(reply);
    if (writer.inboxed() >= INBOX_DRAIN_EVENTS) drainQuietly();
  };

  const drainQuietly = () => {
    try {
      drain();
    } catch {
      // Busy or failing now: the inbox keeps the events, the next drain moves them.
    }
  };
  // Not with an empty inbox: a drain takes the write lock, so it too would wait out a lock
  // another process holds, and an idle collector need not write.
  setInterval(() => {
    if (leftOver || writer.inboxed() > 0) drainQuietly();
  }, INBOX_DRAIN_MS);
  drainQuietly();

  port.on('message', (request: WriterRequest) => {
    if (request.type === 'write') {
      pending.push({ id: request.id, batch: request.batch });
      // After the messages already queued, so they share the transaction.
      if (!scheduled) {
        scheduled = true;
        setImmediate(writePending);
      }
      return;
    }
    writePending();
    if (request.type === 'drain') {
      let reply: WriterReply;
      try {
        reply = { id: request.id, stored: drain() };
      } catch (error) {
        reply = failure(request.id, error);
      }
      port.postMessage(reply);
      return;
    }
    // close: leaves nothing in the inbox for the next start to recount.
    drainQuietly();
    db.close();
    port.postMessage({ id: request.id, stored: 0 } satisfies WriterReply);
    port.close();
  });
}
