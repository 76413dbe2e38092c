import { getDomainWithoutSuffix } from 'tldts';
import { isIpLiteral } from './hostname.js';
import { CATEGORY_ALLOWS, CATEGORY_BLOCKS } from './types.js';

/**
 * Brand rules: a registrable label such as `3bet` that stands for `3bet.<any public
 * suffix>` and every subdomain of it, so that a gambling brand moving from `3bet.bike`
 * to `3bet.ski` stays blocked. The label is the one left of the public suffix, as the
 * Public Suffix List (through tldts, private registries included) draws the line: under
 * `3bet.com.vn` it is `3bet`, under `3bet.example.com` it is `example`.
 *
 * The per-request path: the host's labels are hashed in one pass and probed in a small
 * open-addressing table; only when some label is a known brand (rare) is the Public
 * Suffix List consulted, to check that the label is the host's registrable one.
 * Options skip tldts' URL extraction and validation: the host is already canonical.
 */

const PSL_OPTIONS = {
  allowPrivateDomains: true,
  extractHostname: false,
  validateHostname: false,
  detectIp: false,
  mixedInputs: false,
} as const;

const FNV_SEED = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const EMPTY = -1;

/** The registrable label of a canonical host under the Public Suffix List, or null (IP literal, bare suffix). */
export function registrableLabel(host: string): string | null {
  if (isIpLiteral(host)) return null;
  const label = getDomainWithoutSuffix(host, PSL_OPTIONS);
  return label === null || label === '' ? null : label;
}

interface PendingBrand {
  readonly label: string;
  readonly categoryId: number;
  readonly fileId: number;
  readonly line: number;
  /** Listed domains the brand was derived from; 0 for a brand written by hand. */
  readonly derivedFrom: number;
}

export class BrandSetBuilder {
  private readonly entries: PendingBrand[] = [];
  private readonly seen = new Set<string>();

  /**
   * Adds a brand label (canonical: lower-case ASCII or punycode, no dot). The same
   * label twice in one category keeps the first; a hand-written entry is added before
   * derivation so that it is the one `check` names.
   */
  add(label: string, categoryId: number, fileId: number, line: number, derivedFrom = 0): void {
    const key = `${categoryId}\u0000${label}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.entries.push({ label, categoryId, fileId, line, derivedFrom });
  }

  has(label: string, categoryId: number): boolean {
    return this.seen.has(`${categoryId}\u0000${label}`);
  }

  get size(): number {
    return this.entries.length;
  }

  build(): BrandSet {
    return new BrandSet(this.entries);
  }
}

function hashLabel(text: string, start: number, end: number): number {
  let h = FNV_SEED;
  for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), FNV_PRIME);
  return (h ^ (h >>> 15)) >>> 0;
}

export class BrandSet {
  readonly size: number;
  private readonly labels: readonly string[];
  /** Per entry: category, file, line, listed domains it was derived from. */
  private readonly origins: Uint32Array;
  /** Open addressing by label hash: first entry of that label, or EMPTY. */
  private readonly slots: Int32Array;
  private readonly slotHashes: Uint32Array;
  /** Next entry with the same label (another category), or EMPTY. */
  private readonly nextSameLabel: Int32Array;
  private readonly mask: number;

  constructor(entries: readonly PendingBrand[]) {
    this.size = entries.length;
    this.labels = entries.map((e) => e.label);
    this.origins = new Uint32Array(entries.length * 4);
    const capacity = 2 ** Math.max(4, Math.ceil(Math.log2(entries.length * 2 + 1)));
    this.mask = capacity - 1;
    this.slots = new Int32Array(capacity).fill(EMPTY);
    this.slotHashes = new Uint32Array(capacity);
    this.nextSameLabel = new Int32Array(entries.length).fill(EMPTY);
    entries.forEach((entry, index) => {
      const at = index * 4;
      this.origins[at] = entry.categoryId;
      this.origins[at + 1] = entry.fileId;
      this.origins[at + 2] = entry.line;
      this.origins[at + 3] = entry.derivedFrom;
      const hash = hashLabel(entry.label, 0, entry.label.length);
      let slot = hash & this.mask;
      while (this.slots[slot] !== EMPTY && this.labels[this.slots[slot]!] !== entry.label) slot = (slot + 1) & this.mask;
      if (this.slots[slot] === EMPTY) {
        this.slots[slot] = index;
        this.slotHashes[slot] = hash;
      } else {
        // Append to the label's chain so that earlier (hand-written) entries stay first.
        let last = this.slots[slot]!;
        while (this.nextSameLabel[last] !== EMPTY) last = this.nextSameLabel[last]!;
        this.nextSameLabel[last] = index;
      }
    });
  }

  labelOf(entry: number): string {
    return this.labels[entry]!;
  }

  categoryOf(entry: number): number {
    return this.origins[entry * 4]!;
  }

  fileOf(entry: number): number {
    return this.origins[entry * 4 + 1]!;
  }

  lineOf(entry: number): number {
    return this.origins[entry * 4 + 2]!;
  }

  /** How many listed domains the brand was derived from; 0 when it was written by hand. */
  derivedFromOf(entry: number): number {
    return this.origins[entry * 4 + 3]!;
  }

  /**
   * The deciding brand entry for `host` (canonical) under `actions`, or -1. At one
   * label an allow beats a block, as for domain rules.
   */
  lookup(host: string, actions: Uint8Array): number {
    if (this.size === 0 || isIpLiteral(host)) return -1;
    // The last label is a suffix, never the registrable label: probe the others.
    let end = host.length;
    if (host.charCodeAt(end - 1) === 0x2e) end--;
    const lastDot = host.lastIndexOf('.', end - 1);
    if (lastDot <= 0) return -1;
    let start = 0;
    let candidate = false;
    while (start < lastDot) {
      let dot = host.indexOf('.', start);
      if (dot === -1 || dot > lastDot) dot = lastDot;
      if (this.find(host, start, dot) !== EMPTY) {
        candidate = true;
        break;
      }
      start = dot + 1;
    }
    if (!candidate) return -1;
    const label = registrableLabel(end === host.length ? host : host.slice(0, end));
    if (label === null) return -1;
    let entry = this.find(label, 0, label.length);
    let blocking = -1;
    for (; entry !== EMPTY; entry = this.nextSameLabel[entry]!) {
      const action = actions[this.origins[entry * 4]!];
      if (action === CATEGORY_ALLOWS) return entry;
      if (action === CATEGORY_BLOCKS && blocking < 0) blocking = entry;
    }
    return blocking;
  }

  /** First entry whose label is `text.slice(start, end)`, or EMPTY. */
  private find(text: string, start: number, end: number): number {
    const hash = hashLabel(text, start, end);
    const length = end - start;
    for (let slot = hash & this.mask; ; slot = (slot + 1) & this.mask) {
      const entry = this.slots[slot]!;
      if (entry === EMPTY) return EMPTY;
      if (this.slotHashes[slot] !== hash) continue;
      const label = this.labels[entry]!;
      if (label.length === length && text.startsWith(label, start)) return entry;
    }
  }
}
