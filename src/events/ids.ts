import { randomFillSync } from 'node:crypto';

/**
 * Event ids are ULIDs (https://github.com/ulid/spec): 48 bits of milliseconds then 80
 * random bits, in Crockford base32. They sort by time, which keeps the primary-key
 * b-trees append-mostly at both ends, and the random part makes them unique across
 * gateways: the collector uses the id as the idempotency key of an event.
 */
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const RANDOM_POOL_SIZE = 4096;

const pool = new Uint8Array(RANDOM_POOL_SIZE);
let poolOffset = RANDOM_POOL_SIZE;

// Drawing 10 bytes per id from a refilled pool keeps `record()` free of a syscall per event.
function randomBytes10(): Uint8Array {
  if (poolOffset + 10 > RANDOM_POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const bytes = pool.subarray(poolOffset, poolOffset + 10);
  poolOffset += 10;
  return bytes;
}

export function newEventId(timeMs: number = Date.now()): string {
  let out = '';
  let time = Math.max(0, Math.floor(timeMs));
  const timeChars = new Array<string>(10);
  for (let i = 9; i >= 0; i--) {
    timeChars[i] = CROCKFORD[time % 32]!;
    time = Math.floor(time / 32);
  }
  out = timeChars.join('');
  const random = randomBytes10();
  // 80 bits → 16 base32 characters, 5 bits at a time.
  let buffer = 0;
  let bits = 0;
  for (let i = 0; i < 10; i++) {
    buffer = (buffer << 8) | random[i]!;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += CROCKFORD[(buffer >>> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}

export const EVENT_ID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/**
 * The reference printed on the block page: the last 8 random characters of the id,
 * grouped for reading aloud ("7QK3-M9XD"). 40 random bits are plenty to find the
 * event again in one gateway's log; the full id stays the key everywhere else.
 */
export function shortReference(eventId: string): string {
  const tail = eventId.slice(-8);
  return `${tail.slice(0, 4)}-${tail.slice(4)}`;
}

/** Normalises what a person typed back ("7qk3 m9xd", "7QK3-M9XD") to the 8-character id tail. */
export function referenceTail(reference: string): string | null {
  const cleaned = reference.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
  if (/^[0-9A-HJKMNP-TV-Z]{26}$/.test(cleaned)) return cleaned.slice(-8);
  return /^[0-9A-HJKMNP-TV-Z]{8}$/.test(cleaned) ? cleaned : null;
}
