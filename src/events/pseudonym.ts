import { createHmac, randomBytes } from 'node:crypto';
import path from 'node:path';
import { loadOrCreateSecretFile } from './secret-file.js';

export const CLIENT_KEY_FILE = 'client-key';
const CACHE_LIMIT = 4096;

/**
 * Turns a client address into a pseudonymous id: HMAC-SHA256 under a key that never
 * leaves the gateway, truncated to 64 bits (16 hex digits). The same device gets the same
 * id on one gateway, so staff can see repeated attempts, but the id cannot be turned
 * back into an address without the key, and two gateways give unrelated ids.
 */
export class ClientPseudonymizer {
  readonly #key: Buffer;
  readonly #cache = new Map<string, string>();

  constructor(key: Buffer) {
    if (key.length < 16) throw new Error('client pseudonym key must be at least 16 bytes');
    this.#key = key;
  }

  pseudonym(address: string): string {
    const cached = this.#cache.get(address);
    if (cached !== undefined) return cached;
    const id = createHmac('sha256', this.#key).update(normalizeAddress(address)).digest('hex').slice(0, 16);
    // A school has a few thousand devices; clearing when full keeps memory bounded.
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
    this.#cache.set(address, id);
    return id;
  }
}

/** `::ffff:10.0.0.1` and `10.0.0.1` are the same device. */
function normalizeAddress(address: string): string {
  const lower = address.trim().toLowerCase();
  return lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice(7) : lower;
}

/**
 * Reads `<dataDir>/client-key`, creating it (mode 0600, exclusively, so two processes
 * starting together agree on one key) with `fresh` (default 32 random bytes) on first start.
 */
export function loadOrCreateClientKey(dataDir: string, fresh: Buffer = randomBytes(32)): Buffer {
  const file = path.join(dataDir, CLIENT_KEY_FILE);
  const hex = loadOrCreateSecretFile(file, () => fresh.toString('hex'));
  if (!/^[0-9a-f]{32,}$/i.test(hex)) {
    throw Object.assign(new Error(`${file}: not a client key (expected hex)`), { code: 'LACHAN_BAD_CLIENT_KEY' });
  }
  return Buffer.from(hex, 'hex');
}
