import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { WriteBatch } from './event-writer.js';
import type { WriterConfig, WriterReply, WriterRequest } from './ingest-worker.js';

const WORKER_URL = new URL('./ingest-worker.js', import.meta.url);

/** An error the writer thread replied with; `code` is SQLite's (`SQLITE_BUSY`…) when SQLite raised it. */
export class WriterThreadError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(`writer thread: ${message}`);
    this.name = 'WriterThreadError';
  }
}

/**
 * The main thread's side of the writer thread and its helper (ingest-worker.ts): sends
 * batches, answers each caller when its batch is committed. A failed or crashed thread
 * fails the batches it held (the gateways send them again); the next request starts a
 * new thread.
 */
export class WriterThread {
  readonly #config: WriterConfig;
  readonly #inboxSize: Int32Array;
  #worker: Worker | null = null;
  #helper: Worker | null = null;
  #nextId = 1;
  readonly #waiting = new Map<number, { resolve: (stored: number) => void; reject: (error: Error) => void }>();

  /**
   * The writer thread runs the compiled module next to this one; run from TypeScript
   * sources (the unit tests), there is none and the caller writes on its own connection.
   */
  static available(): boolean {
    return existsSync(fileURLToPath(WORKER_URL));
  }

  constructor(file: string, cacheMiB: number) {
    const inboxSize = new SharedArrayBuffer(4);
    this.#inboxSize = new Int32Array(inboxSize);
    this.#config = { kind: 'lachan-ingest-writer', role: 'writer', file, cacheMiB, inboxSize };
  }

  /** Whether the thread runs (it starts with the first request). */
  get started(): boolean {
    return this.#worker !== null;
  }

  /** Events the thread holds in the inbox, not yet in `events` (read without a round trip). */
  inboxSize(): number {
    return Atomics.load(this.#inboxSize, 0);
  }

  /** Resolves with how many of the batch's events were new, once committed. */
  write(batch: WriteBatch): Promise<number> {
    return this.#send((id) => ({ type: 'write', id, batch }));
  }

  /** Moves the inbox into `events` now; resolves with the number of events moved. */
  drain(): Promise<number> {
    return this.#send((id) => ({ type: 'drain', id }));
  }

  /** Drains and writes what it holds, closes its connection and ends. */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (worker !== null) {
      try {
        await this.#send((id) => ({ type: 'close', id }));
      } finally {
        await worker.terminate();
      }
    }
    await this.#helper?.terminate();
    this.#helper = null;
  }

  #send(request: (id: number) => WriterRequest): Promise<number> {
    const worker = this.#worker ?? this.#start();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      worker.postMessage(request(id));
    });
  }

  #startHelper(): void {
    const helper = new Worker(WORKER_URL, { workerData: { ...this.#config, role: 'helper' } satisfies WriterConfig });
    helper.unref();
    // Without it the writer's own (rarer) checkpoints take over; the next writer start restarts it.
    const gone = () => {
      if (this.#helper === helper) this.#helper = null;
    };
    helper.on('error', gone);
    helper.on('exit', gone);
    this.#helper = helper;
  }

  #start(): Worker {
    if (this.#helper === null) this.#startHelper();
    const worker = new Worker(WORKER_URL, { workerData: this.#config });
    // A server keeps the process alive; an idle writer should not.
    worker.unref();
    worker.on('message', (reply: WriterReply) => {
      const waiting = this.#waiting.get(reply.id);
      if (waiting === undefined) return;
      this.#waiting.delete(reply.id);
      if ('error' in reply) waiting.reject(new WriterThreadError(reply.error, reply.code));
      else waiting.resolve(reply.stored);
    });
    // 'error' then 'exit' for one crash: by the second, a new thread may hold the waiting batches.
    const fail = (error: Error) => {
      if (this.#worker !== worker) return;
      this.#worker = null;
      for (const waiting of this.#waiting.values()) waiting.reject(error);
      this.#waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`writer thread exited (${code})`)));
    this.#worker = worker;
    return worker;
  }
}
