/**
 * The writer of alerts.db in a proxy process: signals are queued on the request path
 * (no I/O there) and written at the end of the event loop's turn in one transaction,
 * where each folds into its device's open alert or starts one (severity.ts). The fold
 * reads and writes inside one IMMEDIATE transaction, so proxy workers sharing the file
 * fold into the same alert. Written like events (docs/events.md): a store that refuses
 * writes (disk full, read-only) keeps signals in memory, bounded, and is retried with
 * backoff while filtering goes on; a clean stop writes what waits.
 */
import type { Statement } from 'better-sqlite3';
import { newEventId } from '../events/ids.js';
import { DAY_MS, GATEWAY_ALERT_RETENTION_DAYS } from '../privacy/retention.js';
import { closeQuietly, needsReopen, type SqliteDatabase } from '../storage/sqlite.js';
import { alertsFile, expireAlerts, openAlertsDatabase } from './database.js';
import { FOLD_WINDOW_MS, foldedSeverity } from './severity.js';
import { TRIGGER_MAX, type Signal, type SeverityRank } from './types.js';

export interface AlertStoreLogger {
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

export interface AlertStoreOptions {
  readonly dataDir: string;
  /** Whether a shipper sends alerts to a collector: then an unshipped alert outlives retention until it is sent. */
  readonly shipping: boolean;
  readonly logger: AlertStoreLogger;
  /** Called after a write that created or escalated an alert (the shipper sends it now). */
  readonly onChanged?: () => void;
  /** Signals held in memory while the store refuses writes (default 10,000); past it new ones are dropped and logged. */
  readonly maxPending?: number;
}

const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 30_000;
const RETENTION_INTERVAL_MS = 3_600_000;

interface OpenAlertRow {
  ref: string;
  count: number;
  base: number;
  severity: number;
}

interface Statements {
  readonly findOpen: Statement<[string, string, number], OpenAlertRow>;
  readonly insert: Statement<[Record<string, string | number>]>;
  readonly fold: Statement<[Record<string, string | number>]>;
  readonly mapDevice: Statement<[string, string, number]>;
}

export class AlertStore {
  readonly file: string;
  readonly #options: AlertStoreOptions;
  readonly #maxPending: number;
  #db: SqliteDatabase | null = null;
  #statements: Statements | null = null;
  #pending: Signal[] = [];
  #flushSoon: NodeJS.Immediate | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #retryDelay = RETRY_FIRST_MS;
  #unwritableSince: number | null = null;
  #dropped = 0;
  #written = 0;
  readonly #retentionTimer: NodeJS.Timeout;
  #closed = false;

  constructor(options: AlertStoreOptions) {
    this.#options = options;
    this.file = alertsFile(options.dataDir);
    this.#maxPending = options.maxPending ?? 10_000;
    if (this.#open()) this.#expire();
    this.#retentionTimer = setInterval(() => this.#expire(), RETENTION_INTERVAL_MS);
    this.#retentionTimer.unref();
  }

  /** Queues a signal; written at the end of this turn of the event loop. */
  add(signal: Signal): void {
    if (this.#closed || this.#pending.length >= this.#maxPending) {
      // Said once, then every hundredth loss: a burst must not flood the log.
      if (this.#dropped++ % 100 === 0)
        this.#options.logger.error(
          { dropped: this.#dropped, file: this.file },
          'safeguarding signal lost: the alert store is unwritable and its memory bound is reached',
        );
      return;
    }
    this.#pending.push(signal);
    if (this.#flushSoon === null && this.#unwritableSince === null) {
      this.#flushSoon = setImmediate(() => {
        this.#flushSoon = null;
        this.flush();
      });
    }
  }

  /** Writes what waits, now; returns how many alerts were created or escalated. */
  flush(): number {
    if (this.#flushSoon !== null) {
      clearImmediate(this.#flushSoon);
      this.#flushSoon = null;
    }
    if (this.#pending.length === 0) return 0;
    if (this.#statements === null && !this.#open()) return 0;
    const signals = this.#pending;
    try {
      this.#db!.transaction(() => {
        for (const signal of signals) this.#fold(signal);
      }).immediate();
    } catch (error) {
      this.#unwritable(error);
      if (needsReopen(error)) this.#closeDb();
      return 0;
    }
    this.#pending = [];
    this.#written += signals.length;
    if (this.#unwritableSince !== null) {
      this.#options.logger.warn({ file: this.file, unwritableMs: Date.now() - this.#unwritableSince }, 'alert store writable again: waiting signals written');
      this.#unwritableSince = null;
      this.#retryDelay = RETRY_FIRST_MS;
    }
    this.#options.onChanged?.();
    return signals.length;
  }

  stats(): { pending: number; written: number; dropped: number; unwritable: boolean } {
    return { pending: this.#pending.length, written: this.#written, dropped: this.#dropped, unwritable: this.#unwritableSince !== null };
  }

  /** Writes what waits (one last try even while unwritable) and closes the file. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#retentionTimer);
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.flush();
    if (this.#pending.length > 0) {
      this.#options.logger.error({ lost: this.#pending.length, file: this.file }, 'alert store unwritable at shutdown: safeguarding signals lost');
      this.#pending = [];
    }
    this.#closeDb();
  }

  #fold(signal: Signal): void {
    const statements = this.#statements!;
    const trigger = signal.trigger.length > TRIGGER_MAX ? signal.trigger.slice(0, TRIGGER_MAX) : signal.trigger;
    const open = statements.findOpen.get(signal.device, signal.category, signal.time - FOLD_WINDOW_MS);
    if (open === undefined) {
      statements.insert.run({
        ref: `AL-${newEventId(signal.time)}`,
        device: signal.device,
        category: signal.category,
        profile: signal.profile,
        time: signal.time,
        severity: signal.base,
        base: signal.base,
        signal: signal.kind,
        trigger,
        host: signal.host,
      });
    } else {
      const count = open.count + 1;
      const base = Math.max(open.base, signal.base) as SeverityRank;
      // What raised the alert last: the strongest signal so far, the latest of equals.
      const raised = signal.base >= open.base ? 1 : 0;
      statements.fold.run({
        ref: open.ref,
        count,
        base,
        severity: Math.max(open.severity, foldedSeverity(base, count)),
        time: signal.time,
        raised,
        signal: signal.kind,
        trigger,
        host: signal.host,
      });
    }
    statements.mapDevice.run(signal.device, signal.address, signal.time);
  }

  #open(): boolean {
    this.#closeDb();
    try {
      const db = openAlertsDatabase(this.#options.dataDir);
      this.#db = db;
      this.#statements = {
        findOpen: db.prepare<[string, string, number], OpenAlertRow>(
          'SELECT ref, count, base, severity FROM alerts WHERE device = ? AND category = ? AND time > ? ORDER BY time DESC LIMIT 1',
        ),
        insert: db.prepare<[Record<string, string | number>]>(
          `INSERT INTO alerts (ref, device, category, profile, time, last_time, severity, base, signal, trigger, host, count)
           VALUES (@ref, @device, @category, @profile, @time, @time, @severity, @base, @signal, @trigger, @host, 1)`,
        ),
        fold: db.prepare<[Record<string, string | number>]>(
          `UPDATE alerts SET count = @count, base = @base, severity = @severity, last_time = max(last_time, @time),
             signal = CASE WHEN @raised THEN @signal ELSE signal END,
             trigger = CASE WHEN @raised THEN @trigger ELSE trigger END,
             host = CASE WHEN @raised THEN @host ELSE host END,
             version = version + 1
           WHERE ref = @ref`,
        ),
        mapDevice: db.prepare<[string, string, number]>(
          `INSERT INTO alert_devices (device, address, last_time) VALUES (?, ?, ?)
           ON CONFLICT (device) DO UPDATE SET address = excluded.address, last_time = max(last_time, excluded.last_time)`,
        ),
      };
      return true;
    } catch (error) {
      if ((error as { code?: unknown }).code === 'LACHAN_SCHEMA_TOO_NEW') throw error;
      this.#closeDb();
      this.#unwritable(error);
      return false;
    }
  }

  #closeDb(): void {
    closeQuietly(this.#db);
    this.#db = null;
    this.#statements = null;
  }

  #unwritable(error: unknown): void {
    if (this.#unwritableSince === null) {
      this.#unwritableSince = Date.now();
      this.#options.logger.error(
        { err: (error as Error).message, file: this.file, waiting: this.#pending.length },
        'alert store unwritable: filtering continues; safeguarding signals wait in memory and the store is retried',
      );
    }
    if (this.#retryTimer !== null || this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#retryDelay = Math.min(RETRY_MAX_MS, this.#retryDelay * 2);
      if (this.#pending.length > 0) this.flush();
      else if (this.#statements !== null || this.#open()) {
        this.#unwritableSince = null;
        this.#retryDelay = RETRY_FIRST_MS;
      }
    }, this.#retryDelay);
    this.#retryTimer.unref();
  }

  #expire(): void {
    if (this.#db === null) return;
    try {
      expireAlerts(this.#db, Date.now() - GATEWAY_ALERT_RETENTION_DAYS * DAY_MS, this.#options.shipping);
    } catch (error) {
      this.#options.logger.warn({ err: (error as Error).message, file: this.file }, 'alert retention failed; tried again in an hour');
    }
  }
}
