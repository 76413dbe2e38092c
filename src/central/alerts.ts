/**
 * Safeguarding alerts at the collector (docs/safeguarding.md): the wire a gateway sends,
 * its validation, how a re-sent alert folds into the stored one, and the store every
 * backend implements (alerts-sqlite.ts, alerts-pg.ts). The collector never receives an
 * address, a login or a name: `device` is the gateway's keyed pseudonym.
 */
import { withoutNul } from '../events/wire.js';

export const ALERT_CATEGORIES = ['self-harm', 'grooming', 'bullying', 'violence'] as const;
export type AlertCategory = (typeof ALERT_CATEGORIES)[number];
/** Ordered: a later one is more severe. */
export const ALERT_SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];
export const ALERT_SIGNALS = ['request', 'search', 'content', 'phrase'] as const;
export type AlertSignal = (typeof ALERT_SIGNALS)[number];
export const ALERT_STATUSES = ['new', 'acknowledged', 'closed'] as const;
export type AlertStatus = (typeof ALERT_STATUSES)[number];

export const MAX_ALERTS_PER_BATCH = 500;
export const MAX_TRIGGER_CHARS = 200;
export const MAX_NOTE_CHARS = 2_000;
const REF_RE = /^[A-Za-z0-9-]{6,64}$/;

/** One alert as a gateway sends it (POST /api/v1/alerts/ingest). */
export interface WireAlert {
  readonly ref: string;
  readonly time: number;
  readonly lastTime: number;
  readonly severity: AlertSeverity;
  readonly category: AlertCategory;
  readonly signal: AlertSignal;
  readonly trigger: string;
  readonly host: string;
  readonly device: string;
  readonly profile: string;
  readonly count: number;
}

/** An alert as people read it (GET /api/v1/alerts). */
export interface CentralAlert extends WireAlert {
  readonly school: string;
  readonly schoolName: string | null;
  readonly status: AlertStatus;
  readonly note: string | null;
}

/** What storing one sent alert did, for notifications. */
export type AlertOutcome = 'new' | 'escalated' | 'reopened' | 'updated' | 'unchanged';

export interface AlertChange {
  readonly outcome: AlertOutcome;
  /** The severity stored before (null for a new alert). */
  readonly before: AlertSeverity | null;
  readonly alert: CentralAlert;
}

export interface AlertFilter {
  /** Only this school's alerts; every school's when absent. */
  readonly school?: string;
  readonly status?: AlertStatus;
  readonly limit: number;
}

/** Who receives a school's alerts besides its counsellors on the dashboard. */
export interface AlertContacts {
  readonly school: string;
  readonly emails: readonly string[];
  readonly webhook: string | null;
}

export interface AlertCount {
  readonly category: AlertCategory;
  readonly severity: AlertSeverity;
  readonly count: number;
}

/** A message owed to one of a school's contacts, kept until sent or given up (the outbox). */
export interface DeliveryJob {
  readonly id: number;
  readonly event: 'alert.new' | 'alert.escalated';
  readonly channel: 'email' | 'webhook';
  /** An e-mail address or the webhook's URL. */
  readonly target: string;
  /** Attempts made before this one. */
  readonly attempts: number;
  /** The alert as it stands now; null when it expired meanwhile. */
  readonly alert: CentralAlert | null;
}

/** The alerts' part of the collector store (CentralStore.alerts). */
export interface AlertStore {
  /**
   * Upserts per (school, ref), all or nothing; one change per alert, in the batch's
   * order. In the same transaction, queues a delivery to each of the school's contacts
   * for every change `shouldNotify` picks, so a message is owed exactly when the alert
   * is stored.
   */
  ingest(school: string, alerts: readonly WireAlert[], receivedAt: number): Promise<AlertChange[]>;
  /** Up to `limit` deliveries due at `now`, each held for `leaseMs` so no other process takes it meanwhile. */
  claimDeliveries(now: number, leaseMs: number, limit: number): Promise<DeliveryJob[]>;
  /** Done, or given up (`retryAt` null): the delivery leaves the outbox; else it is due again at `retryAt`. */
  settleDelivery(id: number, retryAt: number | null): Promise<void>;
  /** Newest first (by lastTime). */
  list(filter: AlertFilter): Promise<CentralAlert[]>;
  /** Null when the school has no alert `ref`. */
  setStatus(school: string, ref: string, status: AlertStatus, note: string | null, at: number): Promise<{ before: CentralAlert; after: CentralAlert } | null>;
  /** Alerts whose first signal fell in [from, to), by category and severity: never by child. */
  counts(from: number, to: number): Promise<AlertCount[]>;
  /** Deletes alerts whose last signal is older than `before`; how many. */
  expire(before: number): Promise<number>;
  /**
   * A parent's erasure request (docs/du-lieu-ca-nhan.md): the devices' alerts stay in the
   * counsellor's queue, an open case about a child at risk, but lose the pseudonym that
   * tied them to the device (it becomes `replacement`); how many.
   */
  anonymiseDevices(school: string, devices: readonly string[], replacement: string): Promise<number>;
  contacts(school: string): Promise<AlertContacts>;
  setContacts(contacts: AlertContacts): Promise<void>;
}

/** The pages and API a counsellor (role tu-van) may use. */
export function isAlertsPath(url: string | undefined): boolean {
  return /^\/(api\/v1\/)?alerts(\/|\?|$)/.test(url ?? '/');
}

export function severityRank(severity: AlertSeverity): number {
  return ALERT_SEVERITIES.indexOf(severity);
}

/** A malformed batch: nothing of it is stored. */
export class AlertBatchError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

function oneOf<T extends string>(values: readonly T[], value: unknown, field: string): T {
  if (typeof value !== 'string' || !(values as readonly string[]).includes(value)) {
    throw new AlertBatchError('bad_alert', `${field}: one of ${values.join(', ')}`);
  }
  return value as T;
}

function text(value: unknown, field: string, min: number, max: number): string {
  if (typeof value !== 'string' || value.length < min || [...value].length > max) {
    throw new AlertBatchError('bad_alert', `${field}: a string of ${min} to ${max} characters`);
  }
  // A query or a page title may carry NUL, which PostgreSQL's text refuses (wire.ts withoutNul).
  return withoutNul(value);
}

function millis(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) throw new AlertBatchError('bad_alert', `${field}: ms since the epoch`);
  return value;
}

/** The batch `{"alerts":[…]}` checked field by field; throws AlertBatchError naming the first bad one. */
export function validateAlertBatch(body: unknown): WireAlert[] {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { alerts?: unknown }).alerts)) {
    throw new AlertBatchError('bad_batch', 'body: {"alerts":[…]}');
  }
  const raw = (body as { alerts: unknown[] }).alerts;
  if (raw.length > MAX_ALERTS_PER_BATCH) throw new AlertBatchError('too_many', `alerts: at most ${MAX_ALERTS_PER_BATCH} a batch`);
  const seen = new Set<string>();
  return raw.map((item, i) => {
    const at = `alerts[${i}]`;
    if (typeof item !== 'object' || item === null) throw new AlertBatchError('bad_alert', `${at}: an object`);
    const a = item as Record<string, unknown>;
    if (typeof a.ref !== 'string' || !REF_RE.test(a.ref)) throw new AlertBatchError('bad_alert', `${at}.ref: [A-Za-z0-9-]{6,64}`);
    if (seen.has(a.ref)) throw new AlertBatchError('bad_alert', `${at}.ref: ${a.ref} twice in one batch`);
    seen.add(a.ref);
    const time = millis(a.time, `${at}.time`);
    const lastTime = millis(a.lastTime, `${at}.lastTime`);
    if (lastTime < time) throw new AlertBatchError('bad_alert', `${at}.lastTime: not before time`);
    if (typeof a.count !== 'number' || !Number.isSafeInteger(a.count) || a.count < 1) throw new AlertBatchError('bad_alert', `${at}.count: an integer ≥ 1`);
    return {
      ref: a.ref,
      time,
      lastTime,
      severity: oneOf(ALERT_SEVERITIES, a.severity, `${at}.severity`),
      category: oneOf(ALERT_CATEGORIES, a.category, `${at}.category`),
      signal: oneOf(ALERT_SIGNALS, a.signal, `${at}.signal`),
      trigger: text(a.trigger, `${at}.trigger`, 0, MAX_TRIGGER_CHARS),
      host: text(a.host, `${at}.host`, 0, 253),
      device: text(a.device, `${at}.device`, 1, 128),
      profile: text(a.profile, `${at}.profile`, 1, 64),
      count: a.count,
    };
  });
}

/** The stored state of an alert, as both backends keep it. */
export interface StoredAlert extends WireAlert {
  readonly status: AlertStatus;
  readonly note: string | null;
}

/**
 * Folds a re-sent alert into the stored one (docs/safeguarding.md §1): count, lastTime
 * and severity only grow; trigger, signal and host follow the send with more signals;
 * a closed alert that comes back more severe is open again. `next` is null when
 * nothing changes, so resending is idempotent.
 */
export function mergeAlert(stored: StoredAlert, sent: WireAlert): { next: StoredAlert | null; outcome: AlertOutcome } {
  const severity = severityRank(sent.severity) > severityRank(stored.severity) ? sent.severity : stored.severity;
  const newer = sent.count > stored.count;
  const next: StoredAlert = {
    ...stored,
    time: Math.min(stored.time, sent.time),
    lastTime: Math.max(stored.lastTime, sent.lastTime),
    count: Math.max(stored.count, sent.count),
    severity,
    trigger: newer ? sent.trigger : stored.trigger,
    signal: newer ? sent.signal : stored.signal,
    host: newer ? sent.host : stored.host,
    status: stored.status === 'closed' && severity !== stored.severity ? 'new' : stored.status,
  };
  const changed = (Object.keys(next) as (keyof StoredAlert)[]).some((key) => next[key] !== stored[key]);
  if (!changed) return { next: null, outcome: 'unchanged' };
  const outcome: AlertOutcome = next.status !== stored.status ? 'reopened' : severity !== stored.severity ? 'escalated' : 'updated';
  return { next, outcome };
}

/** The deliveries owed for `changes` to `contacts`: one per address and one for the webhook, per change. */
export function deliveriesFor(
  changes: readonly AlertChange[],
  contacts: { emails: readonly string[]; webhook: string | null },
): { ref: string; event: DeliveryJob['event']; channel: DeliveryJob['channel']; target: string }[] {
  return changes.filter(shouldNotify).flatMap((change) => {
    const event = change.outcome === 'new' ? ('alert.new' as const) : ('alert.escalated' as const);
    const ref = change.alert.ref;
    return [
      ...contacts.emails.map((target) => ({ ref, event, channel: 'email' as const, target })),
      ...(contacts.webhook === null ? [] : [{ ref, event, channel: 'webhook' as const, target: contacts.webhook }]),
    ];
  });
}

/** A new alert, and an alert that reached high or critical, are sent to the school's contacts. */
export function shouldNotify(change: AlertChange): boolean {
  if (change.outcome === 'new') return true;
  if (change.outcome !== 'escalated' && change.outcome !== 'reopened') return false;
  return severityRank(change.alert.severity) >= severityRank('high');
}

export const SEVERITY_LABELS: Readonly<Record<AlertSeverity, string>> = {
  low: 'thấp',
  medium: 'trung bình',
  high: 'cao',
  critical: 'khẩn cấp',
};

export const ALERT_CATEGORY_LABELS: Readonly<Record<AlertCategory, string>> = {
  'self-harm': 'Tự hại, tự tử',
  grooming: 'Dụ dỗ, xâm hại tình dục',
  bullying: 'Bắt nạt',
  violence: 'Đe doạ bạo lực',
};

export const STATUS_LABELS: Readonly<Record<AlertStatus, string>> = {
  new: 'Mới',
  acknowledged: 'Đã tiếp nhận',
  closed: 'Đã đóng',
};
