/**
 * Shared shapes of the policy engine. Everything in src/policy is pure and
 * synchronous: no I/O, no Node-specific imports (web-standard globals such as
 * URL and TextEncoder are fine), so it can be benchmarked and tested alone.
 */

export type Action = 'allow' | 'block';

/**
 * Why a decision was made; the values are part of docs/contract.md §2 (`lachan check --json`).
 * `exam` and `override` come from the gateway's live classroom state (docs/classroom.md), never from the rules.
 */
export type Reason = 'domain' | 'url' | 'keyword' | 'ip-literal' | 'port' | 'default' | 'exam' | 'override';

export interface Decision {
  readonly action: Action;
  readonly profile: string;
  /** Category whose rule decided; null for built-in decisions. */
  readonly category: string | null;
  readonly reason: Reason;
  /** The deciding rule as written (normalised), or null for built-in decisions. */
  readonly rule: string | null;
  /** `FILE:LINE` of the deciding rule, or null for built-in decisions. */
  readonly source: string | null;
}

/**
 * What a profile does with the rules of one category, indexed by category id in a
 * Uint8Array so the matchers can test activity without hashing strings.
 */
export const CATEGORY_IGNORED = 0;
export const CATEGORY_BLOCKS = 1;
export const CATEGORY_ALLOWS = 2;
export type CategoryAction = typeof CATEGORY_IGNORED | typeof CATEGORY_BLOCKS | typeof CATEGORY_ALLOWS;

/**
 * Where a rule came from. Files are interned once per load into a table of names;
 * the matchers store only the small file id and the line number.
 */
export interface RuleOrigin {
  readonly fileId: number;
  readonly line: number;
}
