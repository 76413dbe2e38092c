import type { SqlConnection } from '../storage/sql.js';

/**
 * Failed dashboard logins, counted where the guessing comes from rather than against the
 * account: per source address (one address trying many names is password spraying) and
 * per (address, name) pair (one address guessing one password). Past a few free tries
 * each further failure doubles the wait before that key may try again, up to a ceiling.
 * The real user at another address is never held up by someone else's guessing, so a
 * stranger cannot lock the administrator out.
 */
export interface ThrottleRule {
  /** Failures allowed before any wait. */
  readonly free: number;
  /** The first wait; each later failure doubles it. */
  readonly baseMs: number;
}

/** One address guessing one name: five tries, then 15 s, 30 s, 1 min … */
export const PAIR_RULE: ThrottleRule = { free: 5, baseMs: 15_000 };
/** One address trying names: twenty failures (any names), then 15 s, 30 s … */
export const ADDRESS_RULE: ThrottleRule = { free: 20, baseMs: 15_000 };
/** No wait is longer than this, and failures older than it are forgotten. */
export const MAX_WAIT_MS = 15 * 60_000;

interface Row {
  failures: number;
  last_at: number;
  blocked_until: number;
}

export type ThrottleAudit = (action: string, target: string, after: unknown) => void;

export function waitAfter(failures: number, rule: ThrottleRule): number {
  if (failures < rule.free) return 0;
  // 2^16 × 15 s is past any ceiling; capping the exponent keeps the number finite.
  return Math.min(MAX_WAIT_MS, rule.baseMs * 2 ** Math.min(failures - rule.free, 16));
}

export class LoginThrottle {
  readonly #db: SqlConnection;
  readonly #audit: ThrottleAudit;
  readonly #q;

  constructor(db: SqlConnection, audit: ThrottleAudit) {
    this.#db = db;
    this.#audit = audit;
    this.#q = {
      get: db.prepare<[string], Row>('SELECT failures, last_at, blocked_until FROM login_throttle WHERE key = ?'),
      set: db.prepare(
        'INSERT INTO login_throttle (key, failures, last_at, blocked_until) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, last_at = excluded.last_at, blocked_until = excluded.blocked_until',
      ),
      clear: db.prepare('DELETE FROM login_throttle WHERE key = ?'),
      purge: db.prepare('DELETE FROM login_throttle WHERE last_at < ? AND blocked_until < ?'),
    };
  }

  /** Milliseconds before this address may try this name again (0: now). */
  waitFor(address: string, name: string, now = Date.now()): number {
    let wait = 0;
    for (const key of [addressKey(address), pairKey(address, name)]) {
      const row = this.#q.get.get(key);
      if (row !== undefined) wait = Math.max(wait, row.blocked_until - now);
    }
    return wait;
  }

  /** Counts a failure for the address and the pair; returns the wait it imposes now (0: none). */
  failed(address: string, name: string, now = Date.now()): number {
    return this.#db.transaction(() => {
      this.#q.purge.run(now - MAX_WAIT_MS, now);
      let wait = 0;
      for (const [key, rule, target] of [
        [addressKey(address), ADDRESS_RULE, `address:${address}`],
        [pairKey(address, name), PAIR_RULE, `user:${name}`],
      ] as const) {
        const row = this.#q.get.get(key);
        const failures = (row === undefined || now - row.last_at > MAX_WAIT_MS ? 0 : row.failures) + 1;
        const keyWait = waitAfter(failures, rule);
        this.#q.set.run(key, failures, now, now + keyWait);
        // The first wait is worth a line in the audit log; the later ones would flood it.
        if (failures === rule.free) this.#audit('login.throttle', target, { address, name, failures, waitSeconds: keyWait / 1000 });
        wait = Math.max(wait, keyWait);
      }
      return wait;
    })();
  }

  /** The pair's failures are forgiven; the address keeps its count (one good password must not reset a spray). */
  succeeded(address: string, name: string): void {
    this.#q.clear.run(pairKey(address, name));
  }
}

function addressKey(address: string): string {
  return `a ${address}`;
}

function pairKey(address: string, name: string): string {
  return `p ${address} ${name}`;
}
