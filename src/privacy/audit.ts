import { appendFileSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';

/**
 * The gateway's audit log: one JSON object a line in `<data>/audit.jsonl`, appended,
 * never rewritten. It proves what was done with a parent's request (what was handed
 * over, what was erased, when, by which account) and holds no more than the
 * pseudonym, so keeping it does not keep the data it speaks of.
 */
export const AUDIT_FILE = 'audit.jsonl';

export interface AuditEntry {
  /** ms since the epoch */
  readonly at: number;
  /** The operating-system account that ran the command. */
  readonly actor: string;
  /** `privacy.export`, `privacy.erase`, … */
  readonly action: string;
  /** The device pseudonym (never the address). */
  readonly target: string;
  readonly details: Readonly<Record<string, unknown>>;
}

export function appendAudit(dataDir: string, action: string, target: string, details: Readonly<Record<string, unknown>>, at: number = Date.now()): AuditEntry {
  const entry: AuditEntry = { at, actor: currentAccount(), action, target, details };
  appendFileSync(path.join(dataDir, AUDIT_FILE), `${JSON.stringify(entry)}\n`, { mode: 0o600 });
  return entry;
}

export function readAudit(dataDir: string): AuditEntry[] {
  let text: string;
  try {
    text = readFileSync(path.join(dataDir, AUDIT_FILE), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as AuditEntry);
}

function currentAccount(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}
