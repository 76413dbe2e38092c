/**
 * Token buckets keyed by a string (school id, client address): `rate` requests a
 * second on average, bursts up to `burst`. Idle buckets are forgotten so a scan of
 * many addresses cannot grow the map without bound.
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #maxKeys: number;

  constructor(rate: number, burst: number = Math.max(1, rate * 2), maxKeys = 100_000) {
    this.#rate = rate;
    this.#burst = burst;
    this.#maxKeys = maxKeys;
  }

  /** Takes one token; returns 0 when allowed, else the seconds to wait before retrying. */
  take(key: string, now: number = Date.now()): number {
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#maxKeys) this.#prune(now);
      bucket = { tokens: this.#burst, at: now };
      this.#buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(this.#burst, bucket.tokens + ((now - bucket.at) / 1000) * this.#rate);
      bucket.at = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.#rate));
  }

  #prune(now: number): void {
    const full = this.#burst / this.#rate;
    for (const [key, bucket] of this.#buckets) {
      if ((now - bucket.at) / 1000 >= full) this.#buckets.delete(key);
    }
    if (this.#buckets.size >= this.#maxKeys) this.#buckets.clear();
  }
}
