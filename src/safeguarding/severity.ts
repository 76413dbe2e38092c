/**
 * Severity and escalation (docs/du-lieu-ca-nhan.md, docs/safeguarding.md): each kind of
 * signal has a base severity; repeated signals of one device in one category within
 * FOLD_WINDOW_MS fold into one alert and raise its severity at count thresholds. Pure.
 *
 *   signal                                             base
 *   request  a site of category self-harm, blocked or allowed    medium
 *   search   search terms scoring over the limit in self-harm    medium
 *   content  a page scoring over the limit in self-harm          medium
 *   phrase   a shipped phrase (rules/safeguarding/) matched      the phrase's line (low…critical)
 *
 *   count of the alert   severity
 *   1–2                  the highest base of its signals
 *   3–9                  one step above that
 *   10 and more          critical
 */
import type { SeverityRank, SignalKind } from './types.js';

/** Signals of one device and category within this time of the alert's first signal fold into it. */
export const FOLD_WINDOW_MS = 24 * 3_600_000;
/**
 * The same trigger from the same device and category within this time is one signal:
 * a page reloaded, a CONNECT and the request inside it, a blocked site's many resources.
 */
export const REPEAT_WINDOW_MS = 60_000;
export const ESCALATE_AT = 3;
export const CRITICAL_AT = 10;

export const BASE_SEVERITY: Readonly<Record<Exclude<SignalKind, 'phrase'>, SeverityRank>> = { request: 2, search: 2, content: 2 };

/** The severity of an alert with `count` signals whose strongest base is `base`. */
export function foldedSeverity(base: SeverityRank, count: number): SeverityRank {
  if (count >= CRITICAL_AT) return 4;
  if (count >= ESCALATE_AT) return Math.min(4, base + 1) as SeverityRank;
  return base;
}
