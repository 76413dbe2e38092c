import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const ID_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** A school id: 12 lower-case base32 characters (60 random bits), easy to paste into a config. */
export function newSchoolId(): string {
  const bytes = randomBytes(12);
  let id = '';
  for (const byte of bytes) id += ID_ALPHABET[byte & 31];
  return id;
}

/**
 * A school token names its school (so the collector finds the one hash to compare)
 * and carries 192 random bits. It is high-entropy, so a plain SHA-256 is a sound
 * stored form: there is nothing to brute-force that a slow hash would protect.
 */
export function newSchoolToken(schoolId: string): string {
  return `lct_${schoolId}_${randomBytes(24).toString('base64url')}`;
}

const TOKEN_RE = /^lct_([0-9a-z]{12})_[A-Za-z0-9_-]{32}$/;

/** The school id a well-formed token names, or null. */
export function schoolIdOfToken(token: string): string | null {
  const match = TOKEN_RE.exec(token);
  return match ? match[1]! : null;
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

export function sameHash(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** `Authorization: Bearer <token>` → token, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1]! : null;
}
