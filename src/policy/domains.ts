import { isIpLiteral, needsNumericCanonicalisation } from './hostname.js';
import { CATEGORY_ALLOWS, CATEGORY_BLOCKS } from './types.js';

/**
 * A frozen set of domain rules, compact enough for millions of entries on a small
 * gateway (about 13 bytes an entry, provenance included).
 *
 * Each domain is stored as a 64-bit fingerprint: two 32-bit FNV-1a lanes computed
 * over the name *from its last character to its first*. Walking a request host the
 * same way yields, at every dot, the fingerprint of that dot-suffix, so all parent
 * domains are probed in one pass without slicing strings. Entries are bucketed by the
 * top bits of the first lane (a counting sort at build time) and a probe scans one
 * bucket of about four entries.
 *
 * Two different names share a fingerprint with probability about n / 2^64 per probe
 * (around 3e-13 at five million rules): accepted, as Bloom-filter based blockers do.
 */

const SEED_A = 0x811c9dc5;
const SEED_B = 0x01000193 ^ 0x5bd1e995;
const PRIME_A = 0x01000193;
const PRIME_B = 0x5bd1e995;

/** murmur3's finaliser: spreads FNV's weak high bits before bucketing. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export interface DomainMatch {
  /** Index of the deciding entry; see categoryOf/fileOf/lineOf. */
  readonly entry: number;
  /** The matched rule is `host.slice(suffixStart)`. */
  readonly suffixStart: number;
}

const INITIAL_CAPACITY = 1 << 12;
const MAX_HOST = 253;
const MAX_LABEL = 63;

/**
 * One entry is three 32-bit words in one typed array, so that the records a probe
 * scans sit in one cache line: fingerprint lane A, lane B, and where the rule was
 * written. A gateway holds millions of entries and few (category, file) pairs, so the
 * third word is the pair's index in a small table (its top 9 bits) beside the line
 * (LINE_BITS); an entry that does not fit (a line past 8 M, or past 510 pairs) marks
 * itself OVERFLOW and keeps its pair and line in side arrays instead.
 */
const WORDS = 3;
const LANE_A = 0;
const LANE_B = 1;
const WRITTEN = 2;
const LINE_BITS = 23;
const LINE_MASK = 2 ** LINE_BITS - 1;
const OVERFLOW = 2 ** (32 - LINE_BITS) - 1;

/** Where a set's rules were written: the (category, file) pairs and the entries that overflowed. */
interface Origins {
  /** Per pair index: category << 16 | file. */
  readonly pairs: Uint32Array;
  /** Per overflow index: category << 16 | file, and the line. */
  readonly overflowPairs: Uint32Array;
  readonly overflowLines: Uint32Array;
}

const NO_ORIGINS: Origins = { pairs: new Uint32Array(0), overflowPairs: new Uint32Array(0), overflowLines: new Uint32Array(0) };

export class DomainSetBuilder {
  private records = new Uint32Array(INITIAL_CAPACITY * WORDS);
  /** Words of `records` for records; the rest, when reserve() made it, is room for the offsets. */
  private reserved = INITIAL_CAPACITY * WORDS;
  private count = 0;
  private pairIndex = new Map<number, number>();
  private pairs: number[] = [];
  private overflowPairs: number[] = [];
  private overflowLines: number[] = [];

  /**
   * Makes room for `entries` more at once. A loader that counts its lines first
   * avoids the doubling copies of a growing array (two arrays alive at each step).
   */
  reserve(entries: number): void {
    const needed = (this.count + entries) * WORDS;
    if (needed <= this.reserved) return;
    // Room after the records for build()'s bucket offsets: one allocation instead of two.
    // Freed, a separate offsets array (8 MiB for 5 M names) raised the C library's mmap
    // threshold, and the next load's buffers went to its heap, which it does not give back.
    const bigger = new Uint32Array(needed + offsetsLength(this.count + entries));
    bigger.set(this.records.subarray(0, this.count * WORDS));
    this.records = bigger;
    this.reserved = needed;
  }

  /** Adds a host already in canonical form (see canonicalRuleHost). */
  add(canonicalHost: string, categoryId: number, fileId: number, line: number): void {
    let a = SEED_A;
    let b = SEED_B;
    for (let i = canonicalHost.length - 1; i >= 0; i--) {
      const c = canonicalHost.charCodeAt(i);
      a = Math.imul(a ^ c, PRIME_A);
      b = Math.imul(b ^ c, PRIME_B);
    }
    this.push(a, b, categoryId, fileId, line);
  }

  private push(a: number, b: number, categoryId: number, fileId: number, line: number): void {
    if ((this.count + 1) * WORDS > this.reserved) this.grow();
    const at = this.count++ * WORDS;
    const records = this.records;
    records[at + LANE_A] = mix(a);
    records[at + LANE_B] = mix(b ^ a);
    const pair = (((categoryId & 0xffff) << 16) | (fileId & 0xffff)) >>> 0;
    let index = this.pairIndex.get(pair);
    if (index === undefined && this.pairs.length < OVERFLOW) {
      index = this.pairs.length;
      this.pairs.push(pair);
      this.pairIndex.set(pair, index);
    }
    if (index !== undefined && line >= 0 && line <= LINE_MASK) {
      records[at + WRITTEN] = index * 2 ** LINE_BITS + line;
      return;
    }
    if (this.overflowLines.length > LINE_MASK) throw new RangeError(`more than ${LINE_MASK} domain rules past line ${LINE_MASK} of their files`);
    records[at + WRITTEN] = OVERFLOW * 2 ** LINE_BITS + this.overflowLines.length;
    this.overflowPairs.push(pair);
    this.overflowLines.push(line);
  }

  /**
   * Adds `text.slice(start, end)` when it is already canonical (lower-case ASCII
   * letters, digits, `-`, `_`, dots between labels), validating and hashing in one
   * pass without creating a string: real lists are millions of such lines. Returns
   * false, adding nothing, for anything else; the caller then canonicalises the slice.
   */
  addCanonicalSpan(text: string, start: number, end: number, categoryId: number, fileId: number, line: number): boolean {
    if (end - start > MAX_HOST || end <= start) return false;
    let a = SEED_A;
    let b = SEED_B;
    let labelLength = 0;
    let topLabelStart = start;
    for (let i = end - 1; i >= start; i--) {
      const c = text.charCodeAt(i);
      if (c === 0x2e) {
        if (labelLength === 0) return false;
        if (topLabelStart === start) topLabelStart = i + 1;
        labelLength = 0;
      } else if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f) {
        if (++labelLength > MAX_LABEL) return false;
      } else {
        return false;
      }
      a = Math.imul(a ^ c, PRIME_A);
      b = Math.imul(b ^ c, PRIME_B);
    }
    if (labelLength === 0) return false;
    // `2130706433` or `0x7f.1` would be an address written another way: the slow path.
    const last = text.charCodeAt(end - 1);
    const numericTop = (last >= 0x30 && last <= 0x39) || (text.charCodeAt(topLabelStart) === 0x30 && text.charCodeAt(topLabelStart + 1) === 0x78);
    if (numericTop && needsNumericCanonicalisation(text, start, end)) return false;
    this.push(a, b, categoryId, fileId, line);
    return true;
  }

  get size(): number {
    return this.count;
  }

  /**
   * Freezes the entries into a DomainSet. The records are sorted by bucket in place
   * (permuteInPlace), so building costs no memory beyond the bucket offsets: a
   * reload compiles next to the policy that is serving, and a second copy of
   * millions of records would double what the gateway needs. The sort is not
   * stable; probe() orders rules for one name by where they were written instead.
   */
  build(): DomainSet {
    const n = this.count;
    // An array reserved for more entries than came is cut to size when the slack matters.
    const used = n * WORDS;
    const bucketBits = bucketBitsFor(n);
    const shift = 32 - bucketBits;
    const bucketCount = 2 ** bucketBits;
    const slack = this.reserved - used > this.reserved >> 4;
    const room = this.records.length - this.reserved;
    const records = slack ? this.records.slice(0, used) : this.records.subarray(0, used);
    const offsets =
      !slack && room >= bucketCount + 1 ? this.records.subarray(this.reserved, this.reserved + bucketCount + 1).fill(0) : new Uint32Array(bucketCount + 1);
    const origins: Origins = {
      pairs: Uint32Array.from(this.pairs),
      overflowPairs: Uint32Array.from(this.overflowPairs),
      overflowLines: Uint32Array.from(this.overflowLines),
    };
    this.records = new Uint32Array(0);
    this.reserved = 0;
    this.count = 0;
    this.pairIndex = new Map();
    this.pairs = [];
    this.overflowPairs = [];
    this.overflowLines = [];
    for (let i = 0; i < n; i++) offsets[(records[i * WORDS + LANE_A]! >>> shift) + 1]!++;
    for (let bucket = 0; bucket < bucketCount; bucket++) offsets[bucket + 1]! += offsets[bucket]!;
    // Two levels, each in place: by the top bits into at most 1,024 groups, then each
    // group (a few thousand records, in cache) by the rest of the bucket number. The
    // cursors of either level are small, where one level would need a second offsets array.
    const topBits = Math.min(bucketBits, 10);
    const stride = 2 ** (bucketBits - topBits);
    const groupCursors = new Uint32Array(2 ** topBits);
    for (let group = 0; group < groupCursors.length; group++) groupCursors[group] = offsets[group * stride]!;
    permuteInPlace(records, groupCursors, offsets, 0, stride, 32 - topBits, groupCursors.length - 1);
    if (stride > 1) {
      const cursors = new Uint32Array(stride);
      for (let group = 0; group < groupCursors.length; group++) {
        const base = group * stride;
        cursors.set(offsets.subarray(base, base + stride));
        permuteInPlace(records, cursors, offsets, base, 1, shift, stride - 1);
      }
    }
    return new DomainSet(shift, offsets, records, origins);
  }

  private grow(): void {
    const bigger = new Uint32Array(this.reserved * 2);
    bigger.set(this.records.subarray(0, this.reserved));
    this.records = bigger;
    this.reserved = bigger.length;
  }
}

/** About four entries a bucket (64 bytes, one cache line); offsets cost ~1 byte an entry. */
function bucketBitsFor(entries: number): number {
  return Math.max(4, Math.ceil(Math.log2(Math.max(entries, 1))) - 2);
}

/** Words of the bucket offsets for at most `entries` names. */
function offsetsLength(entries: number): number {
  return 2 ** bucketBitsFor(entries) + 1;
}

/**
 * An in-place counting sort (American flag sort) of the records between `next[0]`
 * and the end of the last group into groups `(laneA >>> shift) & mask`: group k goes
 * from `next[k]` (its cursor, advanced here) to `ends[endsFrom + (k + 1) * stride]`.
 * The record at a cursor is carried to the next unsorted slot of its own group,
 * displacing a record that is carried on in turn, until one of the cursor's group
 * comes back to fill the slot: each record moves once.
 */
function permuteInPlace(records: Uint32Array, next: Uint32Array, ends: Uint32Array, endsFrom: number, stride: number, shift: number, mask: number): void {
  for (let group = 0; group < next.length; group++) {
    const end = ends[endsFrom + (group + 1) * stride]!;
    while (next[group]! < end) {
      const at = next[group]! * WORDS;
      let a = records[at]!;
      let target = (a >>> shift) & mask;
      if (target !== group) {
        let b = records[at + 1]!;
        let written = records[at + 2]!;
        do {
          const to = next[target]!++ * WORDS;
          const displacedA = records[to]!;
          const displacedB = records[to + 1]!;
          const displacedWritten = records[to + 2]!;
          records[to] = a;
          records[to + 1] = b;
          records[to + 2] = written;
          a = displacedA;
          b = displacedB;
          written = displacedWritten;
          target = (a >>> shift) & mask;
        } while (target !== group);
        records[at] = a;
        records[at + 1] = b;
        records[at + 2] = written;
      }
      next[group]!++;
    }
  }
}

/** category << 16 | file of the record at word `at`. */
function pairAt(records: Uint32Array, origins: Origins, at: number): number {
  const written = records[at + WRITTEN]!;
  const index = written >>> LINE_BITS;
  return index === OVERFLOW ? origins.overflowPairs[written & LINE_MASK]! : origins.pairs[index]!;
}

function lineAt(records: Uint32Array, origins: Origins, at: number): number {
  const written = records[at + WRITTEN]!;
  return written >>> LINE_BITS === OVERFLOW ? origins.overflowLines[written & LINE_MASK]! : written & LINE_MASK;
}

/** Where the record at word `at` was written, as one number that orders rules the way the loader reads them. */
function writtenAt(records: Uint32Array, origins: Origins, at: number): number {
  // File 0 holds the profiles' own lists (policy.yaml), which the loader reads after the category files.
  const file = pairAt(records, origins, at) & 0xffff;
  return (file === 0 ? 0x10000 : file) * 2 ** 32 + lineAt(records, origins, at);
}

export class DomainSet {
  /**
   * Sets decided as one with this one (see combine()), each with its entries numbered
   * from its start; empty for a set of its own records only.
   */
  private readonly parts: readonly DomainSet[];
  private readonly partStarts: readonly number[];
  private readonly entries: number;

  constructor(
    private readonly shift: number,
    private readonly offsets: Uint32Array,
    private readonly records: Uint32Array,
    private readonly origins: Origins,
    parts: readonly DomainSet[] = [],
  ) {
    this.parts = parts;
    let entries = records.length / WORDS;
    const starts: number[] = [];
    for (const part of parts) {
      starts.push(entries);
      entries += part.size;
    }
    this.partStarts = starts;
    this.entries = entries;
  }

  /**
   * Several frozen sets decided as one set of all their rules: at each name an allow
   * wins, and among equals the rule written first (by file id and line, ids being given
   * across all of them by one loader). Lets a reload keep the serving policy's set of
   * files it did not change and compile only the rest (src/rules/loader.ts).
   */
  static combine(sets: readonly DomainSet[]): DomainSet {
    const leaves = sets.flatMap((set) => (set.parts.length === 0 ? [set] : set.parts)).filter((set) => set.size > 0);
    if (leaves.length === 0) return sets[0] ?? new DomainSetBuilder().build();
    if (leaves.length === 1) return leaves[0]!;
    return new DomainSet(0, new Uint32Array(0), new Uint32Array(0), NO_ORIGINS, leaves);
  }

  get size(): number {
    return this.entries;
  }

  get byteLength(): number {
    const { pairs, overflowPairs, overflowLines } = this.origins;
    const own = this.offsets.byteLength + this.records.byteLength + pairs.byteLength + overflowPairs.byteLength + overflowLines.byteLength;
    return this.parts.reduce((sum, part) => sum + part.byteLength, own);
  }

  categoryOf(entry: number): number {
    if (this.parts.length > 0) return this.partOf(entry).categoryOf(entry - this.partStarts[this.partIndexOf(entry)]!);
    return this.pairAt(entry * WORDS) >>> 16;
  }

  fileOf(entry: number): number {
    if (this.parts.length > 0) return this.partOf(entry).fileOf(entry - this.partStarts[this.partIndexOf(entry)]!);
    return this.pairAt(entry * WORDS) & 0xffff;
  }

  lineOf(entry: number): number {
    if (this.parts.length > 0) return this.partOf(entry).lineOf(entry - this.partStarts[this.partIndexOf(entry)]!);
    return this.lineAt(entry * WORDS);
  }

  private pairAt(at: number): number {
    return pairAt(this.records, this.origins, at);
  }

  private lineAt(at: number): number {
    return lineAt(this.records, this.origins, at);
  }

  private partIndexOf(entry: number): number {
    let index = this.parts.length - 1;
    while (index > 0 && this.partStarts[index]! > entry) index--;
    return index;
  }

  private partOf(entry: number): DomainSet {
    return this.parts[this.partIndexOf(entry)]!;
  }

  /**
   * The deciding rule for `host` (canonical): the most specific dot-suffix with an
   * active entry wins, and at that level an allow beats a block.
   * An IP literal matches only an entry for the whole address. One trailing dot on
   * the host is ignored.
   */
  lookup(host: string, actions: Uint8Array): DomainMatch | null {
    if (this.entries === 0) return null;
    const wholeOnly = isIpLiteral(host);
    let a = SEED_A;
    let b = SEED_B;
    let bestEntry = -1;
    let bestStart = 0;
    // `http://example.com./` parses to the hostname `example.com.`: the same name.
    const end = host.length > 1 && host.charCodeAt(host.length - 1) === 0x2e ? host.length - 1 : host.length;
    for (let i = end - 1; i >= 0; i--) {
      const c = host.charCodeAt(i);
      if (c === 0x2e && !wholeOnly) {
        // Suffixes come least specific first: a later hit is more specific and replaces.
        const entry = this.parts.length === 0 ? this.probe(a, b, actions) : this.probeParts(a, b, actions);
        if (entry >= 0) {
          bestEntry = entry;
          bestStart = i + 1;
        }
      }
      a = Math.imul(a ^ c, PRIME_A);
      b = Math.imul(b ^ c, PRIME_B);
    }
    const whole = this.parts.length === 0 ? this.probe(a, b, actions) : this.probeParts(a, b, actions);
    if (whole >= 0) return { entry: whole, suffixStart: 0 };
    return bestEntry >= 0 ? { entry: bestEntry, suffixStart: bestStart } : null;
  }

  /** probe() over every part, as one set: an allow wins, then the rule written first. */
  private probeParts(rawA: number, rawB: number, actions: Uint8Array): number {
    let best = -1;
    let bestAllows = false;
    let bestWritten = 0;
    for (let p = 0; p < this.parts.length; p++) {
      const part = this.parts[p]!;
      const local = part.probe(rawA, rawB, actions);
      if (local < 0) continue;
      const at = local * WORDS;
      const allows = actions[pairAt(part.records, part.origins, at) >>> 16] === CATEGORY_ALLOWS;
      if (best >= 0 && bestAllows && !allows) continue;
      const written = writtenAt(part.records, part.origins, at);
      if (best < 0 || (allows && !bestAllows) || written < bestWritten) {
        best = this.partStarts[p]! + local;
        bestAllows = allows;
        bestWritten = written;
      }
    }
    return best;
  }

  /** Entry index (among this set's own records) of the best active rule for exactly the name hashed to (a, b), or -1. */
  private probe(rawA: number, rawB: number, actions: Uint8Array): number {
    const keyA = mix(rawA);
    const keyB = mix(rawB ^ rawA);
    const bucket = keyA >>> this.shift;
    const records = this.records;
    const origins = this.origins;
    // Several rules for one name (a list and the school's own file, an allow and a
    // block): an allow wins, and among equals the one written first decides.
    let allowing = -1;
    let blocking = -1;
    for (let e = this.offsets[bucket]!, end = this.offsets[bucket + 1]!; e < end; e++) {
      const at = e * WORDS;
      if (records[at + LANE_A] !== keyA || records[at + LANE_B] !== keyB) continue;
      const action = actions[pairAt(records, origins, at) >>> 16];
      if (action === CATEGORY_ALLOWS) {
        if (allowing < 0 || writtenAt(records, origins, at) < writtenAt(records, origins, allowing * WORDS)) allowing = e;
      } else if (action === CATEGORY_BLOCKS) {
        if (blocking < 0 || writtenAt(records, origins, at) < writtenAt(records, origins, blocking * WORDS)) blocking = e;
      }
    }
    return allowing >= 0 ? allowing : blocking;
  }
}
