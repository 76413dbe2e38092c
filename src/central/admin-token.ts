import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadOrCreateSecretFile } from '../events/secret-file.js';
import { hashToken, sameHash } from './tokens.js';

export const ADMIN_TOKEN_FILE = 'admin-token';

/** Whether a bearer token is the dashboard API's admin token (fixed, or the one a shared database holds now). */
export interface AdminTokenCheck {
  accepts(token: string): boolean;
}

export function newAdminToken(): string {
  return `lca_${randomBytes(32).toString('base64url')}`;
}

/** `<dataDir>/admin-token` (0600), created on first use: the dashboard API's bearer token. */
export function loadOrCreateAdminToken(dataDir: string): string {
  return loadOrCreateSecretFile(path.join(dataDir, ADMIN_TOKEN_FILE), newAdminToken);
}

/** The token in `<dataDir>/admin-token`, or null when there is none. */
export function readAdminTokenFile(dataDir: string): string | null {
  try {
    const token = readFileSync(path.join(dataDir, ADMIN_TOKEN_FILE), 'utf8').trim();
    return token === '' ? null : token;
  } catch {
    return null;
  }
}

/** Replaces `<dataDir>/admin-token` (0600): the operator's copy of a token just made. */
export function writeAdminTokenFile(dataDir: string, token: string): void {
  const file = path.join(dataDir, ADMIN_TOKEN_FILE);
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
}

/** One token for the life of the process (the SQLite collector's file). */
export function fixedAdminToken(token: string): AdminTokenCheck {
  const hash = hashToken(token);
  return { accepts: (candidate) => sameHash(hashToken(candidate), hash) };
}
