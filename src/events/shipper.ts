import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { type Dispatcher, Pool } from 'undici';
import { openEventLog, type GatewayEventLog } from './log.js';
import type { WireAck, WireBatch, WireEvent } from './wire.js';
import type { WireReviewBatch, WireReviewRequest } from './review-wire.js';
import type { AlertOutbox } from '../safeguarding/outbox.js';
import { toWireAlert, type StoredAlert } from '../safeguarding/types.js';

const gzip = promisify(gzipCallback);

export interface ShipperLogger {
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

const SILENT: ShipperLogger = { info() {}, warn() {}, error() {} };

export interface ShipperOptions {
  /** The proxy's open event log. Without it the shipper opens `dataDir` itself and closes it on stop. */
  readonly eventLog?: GatewayEventLog;
  readonly dataDir?: string;
  /** The collector's base URL, e.g. `https://thongke.sogd.example/lachan` (POSTs to `<url>/api/v1/events`). */
  readonly centralUrl: string;
  readonly schoolId: string;
  /** A file holding the school's token (from `lachan central school add`); re-read after a 401. */
  readonly tokenFile: string;
  readonly logger?: ShipperLogger;
  /** Safeguarding alerts to send before anything else each round (closed on stop); none without it. */
  readonly alerts?: AlertOutbox;
  /** Events per request (default 500). */
  readonly batchSize?: number;
  /** Catch-up pace after time offline (default 2,000 events/s), so shipping never starves the proxy. */
  readonly maxEventsPerSecond?: number;
  /** How often to look for new events when everything is shipped (default 5 s). */
  readonly idleIntervalMs?: number;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly requestTimeoutMs?: number;
}

export interface ShipperStats {
  /** Events acknowledged by the collector since start. */
  readonly shipped: number;
  /** Review requests and reports acknowledged since start. */
  readonly reviewsShipped: number;
  /** Alert sends (new or escalated) acknowledged since start. */
  readonly alertsShipped: number;
  readonly batches: number;
  readonly failures: number;
  /** Failed attempts in a row; 0 while the collector is reachable. */
  readonly consecutiveFailures: number;
  readonly lastSuccessAt: number | null;
  readonly lastError: string | null;
}

export interface Shipper {
  readonly stats: () => ShipperStats;
  /** Look for events now instead of at the next idle tick. */
  readonly wake: () => void;
  /** Stops after the request in flight (if any) and closes what the shipper opened. */
  readonly stop: () => Promise<void>;
}

export class ShipError extends Error {
  readonly code: string;
  /** From Retry-After, when the collector gave one. */
  readonly retryAfterMs: number | null;
  readonly status: number | null;
  constructor(code: string, message: string, status: number | null = null, retryAfterMs: number | null = null) {
    super(message);
    this.code = code;
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Retry-After in seconds or as an HTTP date → milliseconds, or null. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | null {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return null;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const date = Date.parse(text);
  return Number.isFinite(date) ? Math.max(0, date - now) : null;
}

/** Review requests per POST (the collector takes up to 200). */
const REVIEW_BATCH = 100;
const REVIEWS_RETRY_MS = 3_600_000;
/** Alerts per POST (the contract's maximum). */
const ALERT_BATCH = 500;
/** A collector that has no alert endpoint yet (404) or refuses a batch (400) is asked again after this; events go on meanwhile. */
const ALERTS_RETRY_MS = 600_000;

function readToken(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw new ShipError('LACHAN_TOKEN_FILE', `cannot read the school token file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (token.length === 0) throw new ShipError('LACHAN_TOKEN_FILE', `the school token file ${file} is empty`);
  return token;
}

/**
 * Starts shipping the gateway's unshipped events to the collector, in id order, in
 * batches, until `stop()`. An event is marked shipped only when the collector's
 * acknowledgement names it; the collector stores each id once, so a batch resent after
 * a crash or a lost reply is harmless. Throws at once if the URL or token file is unusable.
 */
export function startShipper(options: ShipperOptions): Shipper {
  const url = new URL(options.centralUrl);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ShipError('LACHAN_CENTRAL_URL', `--central must be an http(s) URL, not ${options.centralUrl}`);
  }
  const base = url.pathname.replace(/\/+$/, '');
  const endpoint = `${base}/api/v1/events`;
  const reviewsEndpoint = `${base}/api/v1/reviews`;
  const alertsEndpoint = `${base}/api/v1/alerts/ingest`;
  const alerts = options.alerts ?? null;
  let token = readToken(options.tokenFile);
  const ownsLog = options.eventLog === undefined;
  if (ownsLog && options.dataDir === undefined) throw new ShipError('LACHAN_SHIPPER_OPTIONS', 'startShipper needs eventLog or dataDir');
  const log = options.eventLog ?? openEventLog({ dataDir: options.dataDir!, school: options.schoolId });
  const logger = options.logger ?? SILENT;
  const maxBatch = options.batchSize ?? 500;
  const maxRate = options.maxEventsPerSecond ?? 2_000;
  const idleMs = options.idleIntervalMs ?? 5_000;
  const minBackoff = options.minBackoffMs ?? 1_000;
  const maxBackoff = options.maxBackoffMs ?? 300_000;
  const timeout = options.requestTimeoutMs ?? 30_000;
  const pool = new Pool(url.origin, {
    connections: 1,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: timeout,
    bodyTimeout: timeout,
    connect: { timeout: 10_000 },
  });

  const abort = new AbortController();
  let batchSize = maxBatch;
  let stopped = false;
  let wakeUp: (() => void) | null = null;
  let sleepTimer: NodeJS.Timeout | null = null;
  let shipped = 0;
  let reviewsShipped = 0;
  let alertsShipped = 0;
  let alertsPausedUntil = 0;
  /** A collector older than the review queue answers 404 there: ask again later, and keep shipping events meanwhile. */
  let reviewsPausedUntil = 0;
  let batches = 0;
  let failures = 0;
  let consecutiveFailures = 0;
  let lastSuccessAt: number | null = null;
  let lastError: string | null = null;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopped) return resolve();
      wakeUp = resolve;
      sleepTimer = setTimeout(resolve, ms);
      sleepTimer.unref();
    }).finally(() => {
      if (sleepTimer !== null) clearTimeout(sleepTimer);
      sleepTimer = null;
      wakeUp = null;
    });

  /**
   * POSTs one JSON batch (gzipped, or plain where the contract has it so) and resolves
   * to the collector's 200 reply, parsed; throws ShipError for anything else. `what`
   * names the batch in messages ("" for events and reviews).
   */
  async function exchange(path: string, payload: unknown, compress: boolean, what: string): Promise<unknown> {
    const json = JSON.stringify(payload);
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    if (compress) headers['content-encoding'] = 'gzip';
    let response: Dispatcher.ResponseData;
    try {
      response = await pool.request({ path, method: 'POST', headers, body: compress ? await gzip(json) : json, signal: abort.signal });
    } catch (error) {
      throw new ShipError('LACHAN_CENTRAL_UNREACHABLE', `collector unreachable: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    const text = await response.body.text();
    const status = response.statusCode;
    if (status !== 200) {
      throw new ShipError(
        `HTTP_${status}`,
        `collector answered ${status}${what}: ${text.slice(0, 300)}`,
        status,
        parseRetryAfter(response.headers['retry-after']),
      );
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new ShipError('LACHAN_BAD_ACK', `collector reply${what} is not JSON`, status);
    }
  }

  /** POSTs one gzip JSON batch; resolves to the acknowledged ids, or throws ShipError. */
  async function post(path: string, batch: WireBatch | WireReviewBatch): Promise<WireAck> {
    const ack = await exchange(path, batch, true, '');
    if (!Array.isArray((ack as { acked?: unknown }).acked)) throw new ShipError('LACHAN_BAD_ACK', 'collector reply has no acked list', 200);
    return ack as WireAck;
  }

  /**
   * POSTs alerts as the contract has them (plain JSON, docs/safeguarding.md); resolves
   * when the collector answered 200 with `accepted`, else throws ShipError.
   */
  async function postAlerts(batch: readonly StoredAlert[]): Promise<void> {
    const reply = await exchange(alertsEndpoint, { alerts: batch.map(toWireAlert) }, false, ' to alerts');
    if (typeof (reply as { accepted?: unknown }).accepted !== 'number') {
      throw new ShipError('LACHAN_BAD_ACK', 'collector reply to alerts has no accepted count', 200);
    }
  }

  /**
   * Alerts go first: a counsellor waits for them. A 200 stores the whole batch (the
   * collector upserts per ref, so a resend is harmless); anything else leaves them
   * unshipped to go again.
   */
  async function shipAlerts(outbox: AlertOutbox, batch: readonly StoredAlert[]): Promise<void> {
    try {
      await postAlerts(batch);
    } catch (error) {
      if (error instanceof ShipError && (error.status === 404 || error.status === 400)) {
        alertsPausedUntil = Date.now() + ALERTS_RETRY_MS;
        logger.error(
          { status: error.status, err: error.message, alerts: batch.length },
          'safeguarding alerts not accepted by the collector; they wait here and are offered again in ten minutes',
        );
        return;
      }
      throw error;
    }
    outbox.markShipped(batch, Date.now());
    alertsShipped += batch.length;
  }

  /** Ids of `sent` the acknowledgement names (a collector cannot mark what was not sent). */
  function ackedOf(ack: WireAck, sent: readonly { id: string }[]): string[] {
    const ids = new Set(sent.map((item) => item.id));
    return ack.acked.filter((id): id is string => typeof id === 'string' && ids.has(id));
  }

  /**
   * Review requests go before events: there are few, and a child waits for an answer.
   */
  async function shipReviews(requests: readonly WireReviewRequest[]): Promise<void> {
    let ack: WireAck;
    try {
      ack = await post(reviewsEndpoint, { school: options.schoolId, requests });
    } catch (error) {
      // 404: a collector older than the review queue. 400: it refused a request here
      // (logged for IT staff). Neither may hold back the events behind it.
      if (error instanceof ShipError && (error.status === 404 || error.status === 400)) {
        reviewsPausedUntil = Date.now() + REVIEWS_RETRY_MS;
        logger.warn(
          { status: error.status, err: error.message },
          'review requests not accepted by the collector; they wait here and are offered again in an hour',
        );
        return;
      }
      throw error;
    }
    const acked = ackedOf(ack, requests);
    log.markReviewsShipped(acked);
    reviewsShipped += acked.length;
  }

  function backoffMs(error: ShipError): number {
    const ceiling = Math.min(maxBackoff, minBackoff * 2 ** Math.min(consecutiveFailures - 1, 30));
    // Full jitter: gateways that lost the collector together do not return in lockstep.
    const jittered = Math.min(maxBackoff, minBackoff / 2 + Math.random() * ceiling);
    if (error.status === 401 || error.status === 403 || error.status === 400) return maxBackoff;
    return error.retryAfterMs !== null ? Math.max(error.retryAfterMs, jittered / 4) : jittered;
  }

  async function run(): Promise<void> {
    while (!stopped) {
      let events: WireEvent[];
      let reviews: WireReviewRequest[];
      let waitingAlerts: StoredAlert[] = [];
      if (alerts !== null && Date.now() >= alertsPausedUntil) {
        try {
          waitingAlerts = alerts.unshipped(ALERT_BATCH);
        } catch (error) {
          // An unreadable alert file must not hold back the events: it is read again next round.
          logger.error({ err: (error as Error).message }, 'cannot read unshipped safeguarding alerts');
        }
      }
      try {
        reviews = Date.now() >= reviewsPausedUntil ? log.unshippedReviews(REVIEW_BATCH) : [];
        events = log.unshipped(batchSize);
      } catch (error) {
        logger.error({ err: error }, 'cannot read unshipped events');
        await sleep(maxBackoff);
        continue;
      }
      if (events.length === 0 && reviews.length === 0 && waitingAlerts.length === 0) {
        await sleep(idleMs);
        continue;
      }
      const started = Date.now();
      try {
        if (waitingAlerts.length > 0) await shipAlerts(alerts!, waitingAlerts);
        if (reviews.length > 0) await shipReviews(reviews);
        const acked = events.length === 0 ? [] : ackedOf(await post(endpoint, { school: options.schoolId, events }), events);
        // With the counts sent: a visit that grew in the meantime goes again.
        log.markShipped(acked, Date.now(), events);
        shipped += acked.length;
        batches++;
        if (consecutiveFailures > 0) logger.info({ after: consecutiveFailures }, 'collector reachable again');
        consecutiveFailures = 0;
        lastSuccessAt = Date.now();
        lastError = null;
        batchSize = Math.min(maxBatch, batchSize * 2);
        if (acked.length < events.length) logger.warn({ sent: events.length, acked: acked.length }, 'collector acknowledged part of a batch');
        // Pace the catch-up after days offline: at most maxRate events a second.
        const pause = (events.length / maxRate) * 1000 - (Date.now() - started);
        if (pause > 0) await sleep(pause);
      } catch (error) {
        const shipError = error instanceof ShipError ? error : new ShipError('LACHAN_SHIP_FAILED', (error as Error).message);
        failures++;
        consecutiveFailures++;
        lastError = shipError.message;
        if (shipError.status === 413 && batchSize > 1) {
          batchSize = Math.max(1, Math.floor(batchSize / 2));
          logger.warn({ batchSize }, 'collector refused the batch size; sending smaller batches');
          continue;
        }
        if (shipError.status === 401) {
          try {
            token = readToken(options.tokenFile);
          } catch (readError) {
            lastError = (readError as Error).message;
          }
        }
        const delay = backoffMs(shipError);
        const log4xx = shipError.status !== null && shipError.status >= 400 && shipError.status < 500 && shipError.status !== 429;
        (log4xx ? logger.error : logger.warn).call(
          logger,
          { err: shipError.message, status: shipError.status, retryInMs: Math.round(delay), batch: events.length },
          'shipping failed',
        );
        await sleep(delay);
      }
    }
  }

  const done = run().catch((error: unknown) => logger.error({ err: error }, 'shipper stopped on an unexpected error'));

  return {
    stats: () => ({ shipped, reviewsShipped, alertsShipped, batches, failures, consecutiveFailures, lastSuccessAt, lastError }),
    wake: () => wakeUp?.(),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      abort.abort();
      wakeUp?.();
      await done;
      await pool.close();
      alerts?.close();
      if (ownsLog) await log.close();
    },
  };
}
