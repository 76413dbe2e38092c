import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Proxy authentication for shared computer labs: `Proxy-Authorization: Basic`
 * checked against a users file of `name:scrypt$N$r$p$salt$hash` lines (base64),
 * the user mapped to a profile by policy.yaml `proxy_auth.profiles`.
 */

const SCRYPT_N = 16384;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const KEY_LENGTH = 32;
/** A verified header is remembered so the lab's every request does not pay scrypt. */
const VERIFIED_TTL_MS = 10 * 60_000;
const VERIFIED_LIMIT = 4096;

export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, KEY_LENGTH, { N: SCRYPT_N, r: SCRYPT_R, p: SCRYPT_P });
  return `scrypt$${SCRYPT_N}$${SCRYPT_R}$${SCRYPT_P}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

function verifyPassword(password: string, stored: string): boolean {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  const salt = Buffer.from(parts[4]!, 'base64');
  const expected = Buffer.from(parts[5]!, 'base64');
  if (!Number.isInteger(n) || expected.length === 0) return false;
  const actual = scryptSync(password, salt, expected.length, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 });
  return timingSafeEqual(actual, expected);
}

export function parseUsersFile(text: string): Map<string, string> {
  const users = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon > 0) users.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return users;
}

export type AuthResult = { readonly user: string } | 'absent' | 'invalid';

export class ProxyAuthenticator {
  private readonly users: ReadonlyMap<string, string>;
  private readonly verified = new Map<string, { user: string; until: number }>();

  constructor(usersFile: string) {
    this.users = parseUsersFile(readFileSync(usersFile, 'utf8'));
  }

  check(header: string | undefined): AuthResult {
    if (header === undefined) return 'absent';
    const now = Date.now();
    const known = this.verified.get(header);
    if (known !== undefined && known.until > now) return { user: known.user };
    const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (match === null) return 'invalid';
    const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return 'invalid';
    const user = decoded.slice(0, colon);
    const stored = this.users.get(user);
    if (stored === undefined || !verifyPassword(decoded.slice(colon + 1), stored)) return 'invalid';
    if (this.verified.size >= VERIFIED_LIMIT) this.verified.clear();
    this.verified.set(header, { user, until: now + VERIFIED_TTL_MS });
    return { user };
  }
}

const USER_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export function isValidUserName(name: string): boolean {
  return USER_NAME.test(name);
}

/**
 * The users file with `name` set to `storedHash`: an existing line for that name is
 * replaced in place, otherwise the line is appended; comments and order are kept.
 */
export function upsertUser(text: string, name: string, storedHash: string): string {
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const entry = `${name}:${storedHash}`;
  const index = lines.findIndex((line) => line.trim().startsWith(`${name}:`));
  if (index === -1) lines.push(entry);
  else lines[index] = entry;
  return `${lines.join('\n')}\n`;
}
