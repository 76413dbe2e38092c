/**
 * The words of a safeguarding alert as the wire to the collector spells them
 * (docs/safeguarding.md): categories, severities, what raised a signal, and the alert
 * itself. Shared by the signal hooks, the local store, the shipper and the CLI.
 */

export const ALERT_CATEGORIES = ['self-harm', 'grooming', 'bullying', 'violence'] as const;
export type AlertCategory = (typeof ALERT_CATEGORIES)[number];

/** Ordered: a severity's rank is its index plus one (stored as that rank, so SQLite's max() orders them). */
export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];
/** 1 (low) to 4 (critical). */
export type SeverityRank = 1 | 2 | 3 | 4;

export const SIGNAL_KINDS = ['request', 'search', 'content', 'phrase'] as const;
export type SignalKind = (typeof SIGNAL_KINDS)[number];

/** How people read them (the CLI; the collector's dashboard uses the same words). */
export const SEVERITY_LABELS: Readonly<Record<Severity, string>> = { low: 'thấp', medium: 'trung bình', high: 'cao', critical: 'khẩn cấp' };
export const CATEGORY_LABELS: Readonly<Record<AlertCategory, string>> = {
  'self-harm': 'tự hại, tự tử',
  grooming: 'dụ dỗ, xâm hại tình dục',
  bullying: 'bắt nạt',
  violence: 'đe doạ bạo lực',
};

export function severityOf(rank: number): Severity {
  return SEVERITIES[Math.min(4, Math.max(1, Math.round(rank))) - 1]!;
}

export function rankOf(severity: Severity): SeverityRank {
  return (SEVERITIES.indexOf(severity) + 1) as SeverityRank;
}

export function isAlertCategory(text: string): text is AlertCategory {
  return (ALERT_CATEGORIES as readonly string[]).includes(text);
}

/** The longest `trigger` the wire carries. */
export const TRIGGER_MAX = 200;

/** One signal, as a hook hands it to the store: one request's worth, already the strongest of what it showed. */
export interface Signal {
  readonly time: number;
  /** The pseudonymous device id (the keyed hash events carry). */
  readonly device: string;
  /** The address or lab login behind `device`: kept on the gateway only (alerts.db), never shipped. */
  readonly address: string;
  readonly profile: string;
  readonly category: AlertCategory;
  readonly kind: SignalKind;
  /** The base severity of this signal (severity.ts). */
  readonly base: SeverityRank;
  /** The search terms, the page title or the host. */
  readonly trigger: string;
  readonly host: string;
}

/** An alert as it goes to the collector (POST /api/v1/alerts/ingest). */
export interface WireAlert {
  readonly ref: string;
  readonly time: number;
  readonly lastTime: number;
  readonly severity: Severity;
  readonly category: AlertCategory;
  readonly signal: SignalKind;
  readonly trigger: string;
  readonly host: string;
  readonly device: string;
  readonly profile: string;
  readonly count: number;
}

/** The wire fields of an alert, and nothing the gateway keeps beside them. */
export function toWireAlert(alert: WireAlert): WireAlert {
  const { ref, time, lastTime, severity, category, signal, trigger, host, device, profile, count } = alert;
  return { ref, time, lastTime, severity, category, signal, trigger, host, device, profile, count };
}

/** An alert of the local store: the wire fields and what the gateway keeps about shipping it. */
export interface StoredAlert extends WireAlert {
  /** Bumped at every change; the collector has seen the alert as of `shippedVersion`. */
  readonly version: number;
  readonly shippedVersion: number;
  readonly shippedAt: number | null;
}
