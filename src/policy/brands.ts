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
/** Marks the second origin word of a derived brand (see BrandSet.origins). */
const DERIVED = 0x80000000;

/** The registrable label of a canonical host under the Public Suffix List, or null (IP literal, bare suffix). */
export function registrableLabel(host: string): string | null {
  if (isIpLiteral(host)) return null;
  const label = getDomainWithoutSuffix(host, PSL_OPTIONS);
  return label === null || label === '' ? null : label;
}

/**
 * Brands waiting for build(), in columns: ~80,000 derived brands as an object each and
 * a `category\0label` key string each cost ~14 MB of heap while the new policy
 * compiled beside the serving one; columns and a set per category cost the labels only.
 */
interface PendingBrands {
  readonly labels: readonly string[];
  /** category << 16 | file, as BrandSet.origins' first word. */
  readonly categoryFiles: readonly number[];
  readonly lines: readonly number[];
  /** Listed domains a brand was derived from; 0 for a brand written by hand. */
  readonly derivedFrom: readonly number[];
}

export class BrandSetBuilder {
  private readonly pending = { labels: [] as string[], categoryFiles: [] as number[], lines: [] as number[], derivedFrom: [] as number[] };
  private readonly seen = new Map<number, Set<string>>();

  /**
   * Adds a brand label (canonical: lower-case ASCII or punycode, no dot); false when
   * the category has it already. The same label twice in one category keeps the
   * first: hand-written entries are added before derivation, so `check` names them.
   * Derived labels (`derivedFrom` > 0) come once each from a category's deriver, so
   * only the hand-written ones are remembered: ~80,000 derived labels in a set were
   * ~4 MB of heap at the moment the new policy is largest.
   */
  add(label: string, categoryId: number, fileId: number, line: number, derivedFrom = 0): boolean {
    let seen = this.seen.get(categoryId);
    if (seen === undefined) this.seen.set(categoryId, (seen = new Set()));
    if (seen.has(label)) return false;
    if (derivedFrom === 0) seen.add(label);
    this.pending.labels.push(label);
    this.pending.categoryFiles.push((((categoryId & 0xffff) << 16) | (fileId & 0xffff)) >>> 0);
    this.pending.lines.push(line);
    this.pending.derivedFrom.push(derivedFrom);
    return true;
  }

  get size(): number {
    return this.pending.labels.length;
  }

  build(): BrandSet {
    return new BrandSet(this.pending);
  }
}

/** FNV-1a with a final mix, as a signed 32-bit value (it is stored in an Int32Array). */
function hashLabel(text: string, start: number, end: number): number {
  let h = FNV_SEED;
  for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), FNV_PRIME);
  return h ^ (h >>> 15);
}

/** The filter's bit for a label hash: other bits of it than the slot table's index. */
function filterBit(hash: number): number {
  return Math.imul(hash, 0x9e3779b1) >>> 7;
}

export class BrandSet {
  readonly size: number;
  /**
   * Every label, joined into one flat string and addressed by offsets: no label keeps
   * alive the rule file it was sliced from, and 70,000 labels cost about one byte a
   * character instead of an object each.
   */
  private readonly text: string;
  private readonly offsets: Uint32Array;
  /**
   * Two words an entry: category << 16 | file; then the line of a written brand, or
   * DERIVED | the number of listed domains a derived one came from (line 0).
   */
  private readonly origins: Uint32Array;
  /**
   * Open addressing by label hash, two words a slot side by side (one cache line per
   * probe): the label's hash, and its first entry or EMPTY.
   */
  private readonly slots: Int32Array;
  /** Next entry with the same label (another category), or EMPTY. */
  private readonly nextSameLabel: Int32Array;
  private readonly mask: number;
  /**
   * A one-hash filter, 8 to 16 bits per brand (128 KB for 70,000 brands), set for every
   * brand label: most labels of a request (`www`, `google`) are turned away here, in a
   * table small enough to stay in cache, before the slot table is touched. Measured in
   * bench:brands: 16 bits per brand cost ~50 ns more a decision (cache), 4 no less than 8.
   */
  private readonly filter: Int32Array;
  private readonly filterMask: number;

  constructor(pending: PendingBrands) {
    const labels = pending.labels;
    this.size = labels.length;
    this.text = labels.join('');
    this.offsets = new Uint32Array(labels.length + 1);
    labels.forEach((label, index) => {
      this.offsets[index + 1] = this.offsets[index]! + label.length;
    });
    this.origins = new Uint32Array(labels.length * 2);
    // At most two-thirds full: linear probing stays at one or two slots a lookup.
    const capacity = 2 ** Math.max(4, Math.ceil(Math.log2(labels.length * 1.5 + 1)));
    this.mask = capacity - 1;
    this.slots = new Int32Array(capacity * 2).fill(EMPTY);
    const filterBits = 2 ** Math.max(10, Math.ceil(Math.log2(labels.length * 8 + 1)));
    this.filter = new Int32Array(filterBits >>> 5);
    this.filterMask = filterBits - 1;
    this.nextSameLabel = new Int32Array(labels.length).fill(EMPTY);
    labels.forEach((label, index) => {
      const derivedFrom = pending.derivedFrom[index]!;
      this.origins[index * 2] = pending.categoryFiles[index]!;
      this.origins[index * 2 + 1] = derivedFrom > 0 ? DERIVED | Math.min(derivedFrom, ~DERIVED >>> 0) : pending.lines[index]!;
      const hash = hashLabel(label, 0, label.length);
      const bit = filterBit(hash) & this.filterMask;
      this.filter[bit >>> 5]! |= 1 << (bit & 31);
      let slot = hash & this.mask;
      while (this.slots[slot * 2 + 1] !== EMPTY && !(this.slots[slot * 2] === hash && this.labelIs(this.slots[slot * 2 + 1]!, label, 0, label.length)))
        slot = (slot + 1) & this.mask;
      if (this.slots[slot * 2 + 1] === EMPTY) {
        this.slots[slot * 2] = hash;
        this.slots[slot * 2 + 1] = index;
      } else {
        // Append to the label's chain so that earlier (hand-written) entries stay first.
        let last = this.slots[slot * 2 + 1]!;
        while (this.nextSameLabel[last] !== EMPTY) last = this.nextSameLabel[last]!;
        this.nextSameLabel[last] = index;
      }
    });
  }

  /** Bytes of the compiled tables (labels counted at one byte a character, as V8 stores ASCII). */
  get byteLength(): number {
    return (
      this.text.length + this.offsets.byteLength + this.origins.byteLength + this.slots.byteLength + this.nextSameLabel.byteLength + this.filter.byteLength
    );
  }

  labelOf(entry: number): string {
    return this.text.slice(this.offsets[entry]!, this.offsets[entry + 1]!);
  }

  categoryOf(entry: number): number {
    return this.origins[entry * 2]! >>> 16;
  }

  fileOf(entry: number): number {
    return this.origins[entry * 2]! & 0xffff;
  }

  /** The line of a written brand; 0 for a derived one. */
  lineOf(entry: number): number {
    const word = this.origins[entry * 2 + 1]!;
    return (word & DERIVED) !== 0 ? 0 : word;
  }

  /** How many listed domains the brand was derived from; 0 when it was written by hand. */
  derivedFromOf(entry: number): number {
    const word = this.origins[entry * 2 + 1]!;
    return (word & DERIVED) !== 0 ? (word & ~DERIVED) >>> 0 : 0;
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
    let blocking = -1;
    for (let entry = this.find(label, 0, label.length); entry !== EMPTY; entry = this.nextSameLabel[entry]!) {
      const action = actions[this.origins[entry * 2]! >>> 16];
      if (action === CATEGORY_ALLOWS) return entry;
      if (action === CATEGORY_BLOCKS && blocking < 0) blocking = entry;
    }
    return blocking;
  }

  /** First entry whose label is `text.slice(start, end)`, or EMPTY. */
  private find(text: string, start: number, end: number): number {
    const hash = hashLabel(text, start, end);
    const bit = filterBit(hash) & this.filterMask;
    if ((this.filter[bit >>> 5]! & (1 << (bit & 31))) === 0) return EMPTY;
    const slots = this.slots;
    for (let slot = hash & this.mask; ; slot = (slot + 1) & this.mask) {
      const entry = slots[slot * 2 + 1]!;
      if (entry === EMPTY) return EMPTY;
      if (slots[slot * 2] === hash && this.labelIs(entry, text, start, end)) return entry;
    }
  }

  private labelIs(entry: number, text: string, start: number, end: number): boolean {
    const from = this.offsets[entry]!;
    if (this.offsets[entry + 1]! - from !== end - start) return false;
    const labels = this.text;
    for (let i = 0; i < end - start; i++) if (labels.charCodeAt(from + i) !== text.charCodeAt(start + i)) return false;
    return true;
  }
}
