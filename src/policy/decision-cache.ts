import type { Decision } from './types.js';

/**
 * The hot-path decision cache: a bounded, four-way set-associative table held in
 * one flat array, three slots a record (key, host, path), so that a hit reads one
 * set (96 bytes), compares the key strings natively (`===`) and allocates nothing.
 * The key is one small integer: fingerprint bits, profile, kind, and the index of
 * the (interned) decision, so the record needs no fourth slot; a 32-byte record
 * instead of 24 cost 5–10 % more a hit (a larger table, more lines and pages).
 *
 * Why not `lru-cache` (what the issue first named): on a realistic working set
 * (~45 k hosts) nearly every pointer a lookup chases is a miss to memory (110–145 ns
 * each on the project's box): lru-cache's Map, its key string, its linked-list
 * arrays written on every hit, a per-host Map of paths, its key, the decision.
 * Here a hit touches the set, the cached host string and (unless the request reuses
 * the string) the cached path string; the decisions are interned, so the few
 * distinct ones stay in cache.
 *
 * The fingerprint hashes the whole host but only the length and up to
 * PATH_SAMPLES characters of the path: reading a character in JavaScript costs
 * 3–8 ns here (the most on the sliced strings `new URL().hostname` returns), as
 * much as a memory miss for a long URL. Sampling the host as well was measured and
 * rejected: hosts that differ in one character (numbered shards, CDN names) then
 * share a set, and the hit ratio on the top-sites stream fell from 99.4 % to
 * 96–99 %, which costs more than the hashing saved. The fingerprint only picks the
 * set and rejects quickly; a hit requires the same kind, profile, host and path,
 * compared in full, so a collision can never answer for another URL.
 *
 * One probe for most lookups: a host's entries are all `host` entries or all `url`
 * entries (whether a decision holds for every path depends on the profile and the
 * host only), and a small bitmap, indexed by the host fingerprint, marks the hosts
 * that have had a `host` entry. A host whose bit is clear is looked up as a URL
 * only; one whose bit is set is looked up as a host first.
 *
 * Cached host and path strings are flat copies: the request's own strings are
 * slices of its URL and would keep the whole URL text alive for as long as the
 * entry lives. A host's entries (one per path) share one copy of the host: ~40 %
 * fewer host copies on the bench's stream, and a popular host's characters stay in
 * the processor's caches (about 3 % off a hit there, measured A/B in one process).
 *
 * Eviction: per set, bit pseudo-LRU over the four ways (one bit a way, reset when
 * all are set), as in CPU caches, rather than LRU across the cache. Bounded by
 * construction (capacity = sets × 4, fixed at creation), with no list to update
 * and no pointer written on a hit.
 *
 * Spilling: an entry whose home set is full goes to the neighbouring set (`set ^ 1`)
 * if that one has an empty way, and the home set is marked so that lookups which
 * miss there look next door. With random placement some sets fill while the table
 * is mostly empty: on the bench's stream (68 k keys in 65 k sets) 0.35 % of lookups
 * missed for that reason alone, and each such miss is a full decision on rule
 * tables gone cold: about 50 ns of a ~300 ns average cached decision. Spilling
 * brings the hit ratio there to 99.98 %; a hit in the home set costs nothing more.
 *
 * Two kinds of entry: `host` entries answer every path of a host whose decision
 * cannot depend on the path (the caller decides when that holds); `url` entries
 * answer one host and path.
 *
 * Decisions are interned (a key holds an index, not a pointer), at most
 * MAX_DECISIONS at once. Every blocked domain and address has its own decision (its
 * rule and source), so the table fills over time; when it is full, the decisions no
 * stored entry uses any more are dropped and the rest renumbered, and only if most
 * are still in use does the cache start afresh. A client asking for many distinct
 * addresses can thus cost the cache no more than it could by filling it with URLs.
 *
 * The spill marks and the whole-host bitmap stay set until the cache is emptied: at
 * worst a miss probes one set more, which is little next to the decision it costs.
 */

const WAY_BITS = 2;
const WAYS = 1 << WAY_BITS;
const ALL_WAYS = (1 << WAYS) - 1;
const SLOTS = 3;
const S_KEY = 0;
const S_HOST = 1;
const S_PATH = 2;
/**
 * The key, below 2^30 so that it stays a small integer in the array, not a boxed
 * number. From bit 0: the kind (1 bit), the profile (PROFILE_BITS), CHECK_BITS of
 * the fingerprint that the set index does not use (its top bits), a bit set in
 * every stored key, then the decision's index (DECISION_BITS). 0 marks an empty
 * way. A lookup compares everything below the decision (the tag).
 */
const PROFILE_BITS = 7;
const CHECK_BITS = 5;
const DECISION_BITS = 16;
const PROFILE_SHIFT = 1;
const CHECK_SHIFT = PROFILE_SHIFT + PROFILE_BITS;
const STORED = 1 << (CHECK_SHIFT + CHECK_BITS);
const DECISION_SHIFT = CHECK_SHIFT + CHECK_BITS + 1;
const TAG_MASK = (1 << DECISION_SHIFT) - 1;
const EMPTY = 0;
const KIND_URL = 0;
const KIND_HOST = 1;
/** Profiles are indexes below this. */
export const MAX_CACHED_PROFILES = 1 << PROFILE_BITS;
/** Distinct decisions held at once. */
const MAX_DECISIONS = 1 << DECISION_BITS;
if (DECISION_SHIFT + DECISION_BITS > 30) throw new Error('decision cache keys would not be small integers');
/** Characters of the path the fingerprint mixes (besides its length). */
const PATH_SAMPLES = 4;
const PRIME = 0x01000193;

function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Mixes the length and up to PATH_SAMPLES characters spread over `path`, from its end, into `h`. */
function samplePath(h: number, path: string): number {
  const length = path.length;
  h = Math.imul(h ^ length, PRIME);
  const step = length <= PATH_SAMPLES ? 1 : ((length + PATH_SAMPLES - 1) / PATH_SAMPLES) | 0;
  for (let i = length - 1; i >= 0; i -= step) h = Math.imul(h ^ path.charCodeAt(i), PRIME);
  return h;
}

/** The tag (key without the decision) of a mixed fingerprint for `profile` and `kind`. */
function tagOf(mixed: number, profile: number, kind: number): number {
  return STORED | ((mixed >>> (32 - CHECK_BITS)) << CHECK_SHIFT) | (profile << PROFILE_SHIFT) | kind;
}

/** What makes two decisions the same, for interning. */
function contentOf(decision: Decision): string {
  return JSON.stringify([decision.profile, decision.action, decision.reason, decision.category, decision.rule, decision.source]);
}

/**
 * A flat copy of `text`, so that a cached entry holds only its own characters (a
 * slice keeps its parent alive). Done once per miss, never on a hit.
 */
function ownCopy(text: string): string {
  return text.length === 0 ? '' : (JSON.parse(JSON.stringify(text)) as string);
}

export interface DecisionCacheStats {
  hits: number;
  misses: number;
  size: number;
}

type Slot = number | string;

export class DecisionCache {
  private readonly table: Slot[];
  private readonly setMask: number;
  /** Per set, one bit a way: used since the bits were last reset (bit pseudo-LRU). */
  private readonly recent: Uint8Array;
  /** Per set, 1 when an entry whose set this is had to be stored in the set's neighbour (`set ^ 1`). */
  private readonly spilled: Uint8Array;
  /** One bit per set's worth of host fingerprints: set when a `host` entry was stored for such a host. */
  private readonly wholeHosts: Int32Array;
  /** Interned decisions, by index (the key's top bits), and the index of each by content. */
  private decisions: Decision[] = [];
  private decisionIndex = new Map<string, number>();
  /** One flat copy of each cached host, shared by the host's entries; started afresh past `capacity` hosts. */
  private hostCopies = new Map<string, string>();
  private count = 0;
  /** Written by `locate` and read right after it: the two tags and home sets of one key. */
  private hostTag = 0;
  private hostSet = 0;
  private urlTag = 0;
  private urlSet = 0;
  hits = 0;
  misses = 0;

  /** Holds `capacity` entries, rounded up to a power of two. */
  constructor(capacity: number) {
    // Far fewer sets than 2^(32 - CHECK_BITS), so the set index never uses the check bits.
    const sets = 2 ** Math.max(1, Math.ceil(Math.log2(Math.max(capacity, WAYS) / WAYS)));
    this.setMask = sets - 1;
    this.recent = new Uint8Array(sets);
    this.spilled = new Uint8Array(sets);
    this.wholeHosts = new Int32Array(Math.max(1, sets >>> 5));
    // Filled by push: `new Array(n)` of this size would be a slow dictionary-mode array.
    const table: Slot[] = [];
    for (let record = 0; record < sets * WAYS; record++) table.push(EMPTY, '', '');
    this.table = table;
  }

  get capacity(): number {
    return (this.setMask + 1) * WAYS;
  }

  stats(): DecisionCacheStats {
    return { hits: this.hits, misses: this.misses, size: this.count };
  }

  /**
   * The cached decision for (profile, host, path): the host's `host` entry when the
   * bitmap says it may have one, else a `url` entry for exactly this path; undefined
   * on a miss. `profile` is an integer below MAX_CACHED_PROFILES.
   */
  get(profile: number, host: string, path: string): Decision | undefined {
    this.locate(profile, host, path);
    const record = this.lookup(host, path);
    if (record < 0) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.touch(record >>> WAY_BITS, record & (WAYS - 1));
    return this.decisions[(this.table[record * SLOTS + S_KEY] as number) >>> DECISION_SHIFT];
  }

  /**
   * Stores the decision for (profile, host, path), replacing the one stored for that
   * key if any. `wholeHost`: the decision holds for every path of the host (for this
   * profile); the caller must say so for all of a host's decisions or for none.
   */
  remember(profile: number, host: string, path: string, decision: Decision, wholeHost: boolean): void {
    // First: making room for the decision may renumber or empty the table.
    const index = this.intern(decision);
    this.locate(profile, host, path);
    const tag = wholeHost ? this.hostTag : this.urlTag;
    const home = wholeHost ? this.hostSet : this.urlSet;
    const keyPath = wholeHost ? '' : path;
    const table = this.table;
    const stored = this.find(home, tag, host, keyPath);
    if (stored >= 0) {
      table[stored * SLOTS + S_KEY] = (index << DECISION_SHIFT) | tag;
      this.touch(stored >>> WAY_BITS, stored & (WAYS - 1));
      return;
    }
    if (wholeHost) this.wholeHosts[home >>> 5]! |= 1 << (home & 31);
    // The home set's empty way, else the neighbour's, else the home way not used recently.
    let set = home;
    let way = this.emptyWay(home);
    if (way < 0) {
      way = this.emptyWay(home ^ 1);
      if (way >= 0) {
        set = home ^ 1;
        this.spilled[home] = 1;
      } else {
        const recent = this.recent[home]!;
        way = 0;
        while (way < WAYS - 1 && (recent & (1 << way)) !== 0) way++;
      }
    }
    const at = (set * WAYS + way) * SLOTS;
    if (table[at + S_KEY] === EMPTY) this.count++;
    table[at + S_KEY] = (index << DECISION_SHIFT) | tag;
    table[at + S_HOST] = this.sharedHost(host);
    table[at + S_PATH] = ownCopy(keyPath);
    this.touch(set, way);
  }

  /** Empties the cache (a reload builds a new one; this bounds the interned decisions). */
  clear(): void {
    const table = this.table;
    for (let at = 0; at < table.length; at += SLOTS) {
      table[at + S_KEY] = EMPTY;
      table[at + S_HOST] = '';
      table[at + S_PATH] = '';
    }
    this.recent.fill(0);
    this.spilled.fill(0);
    this.wholeHosts.fill(0);
    this.decisions = [];
    this.decisionIndex = new Map();
    this.hostCopies = new Map();
    this.count = 0;
  }

  /** Computes the key's tags and home sets into the scratch fields. */
  private locate(profile: number, host: string, path: string): void {
    // One compare refuses negatives, fractions, NaN and indexes too large for the key.
    if ((profile & (MAX_CACHED_PROFILES - 1)) !== profile) throw new RangeError(`profile index ${profile} is not an integer below ${MAX_CACHED_PROFILES}`);
    let hostHash = Math.imul(0x811c9dc5 ^ profile, PRIME);
    for (let i = 0; i < host.length; i++) hostHash = Math.imul(hostHash ^ host.charCodeAt(i), PRIME);
    const hostMixed = mix(hostHash);
    const urlMixed = mix(samplePath(hostHash, path));
    this.hostSet = hostMixed & this.setMask;
    this.urlSet = urlMixed & this.setMask;
    this.hostTag = tagOf(hostMixed, profile, KIND_HOST);
    this.urlTag = tagOf(urlMixed, profile, KIND_URL);
  }

  /** The record answering the key just located: its `host` entry if the bitmap allows one, else its `url` entry; -1 if none. */
  private lookup(host: string, path: string): number {
    const hostSet = this.hostSet;
    let record = -1;
    if ((this.wholeHosts[hostSet >>> 5]! & (1 << (hostSet & 31))) !== 0) record = this.find(hostSet, this.hostTag, host, '');
    return record >= 0 ? record : this.find(this.urlSet, this.urlTag, host, path);
  }

  /** The index of `decision` (or of an equal one already held), making room when MAX_DECISIONS are held. */
  private intern(decision: Decision): number {
    const content = contentOf(decision);
    let index = this.decisionIndex.get(content);
    if (index !== undefined) return index;
    if (this.decisions.length >= MAX_DECISIONS && !this.dropUnusedDecisions()) this.clear();
    index = this.decisions.length;
    this.decisions.push(decision);
    this.decisionIndex.set(content, index);
    return index;
  }

  /**
   * Drops the decisions no stored entry uses and renumbers the others in the keys.
   * False, and nothing changed, when more than half are still in use: renumbering
   * would soon be needed again.
   */
  private dropUnusedDecisions(): boolean {
    const table = this.table;
    const renumbered = new Int32Array(this.decisions.length).fill(-1);
    const kept: Decision[] = [];
    for (let at = S_KEY; at < table.length; at += SLOTS) {
      const key = table[at] as number;
      if (key === EMPTY) continue;
      const old = key >>> DECISION_SHIFT;
      if (renumbered[old] === -1) {
        renumbered[old] = kept.length;
        kept.push(this.decisions[old]!);
      }
    }
    if (kept.length > MAX_DECISIONS / 2) return false;
    for (let at = S_KEY; at < table.length; at += SLOTS) {
      const key = table[at] as number;
      if (key !== EMPTY) table[at] = (renumbered[key >>> DECISION_SHIFT]! << DECISION_SHIFT) | (key & TAG_MASK);
    }
    this.decisions = kept;
    this.decisionIndex = new Map(kept.map((decision, index) => [contentOf(decision), index]));
    return true;
  }

  /** The shared flat copy of `host` (made on first use). Entries keep theirs when the map starts afresh. */
  private sharedHost(host: string): string {
    let copy = this.hostCopies.get(host);
    if (copy === undefined) {
      if (this.hostCopies.size >= this.capacity) this.hostCopies = new Map();
      copy = ownCopy(host);
      this.hostCopies.set(copy, copy);
    }
    return copy;
  }

  /** Marks `way` used; when every way is marked, only it stays marked. */
  private touch(set: number, way: number): void {
    const recent = this.recent[set]!;
    const bit = 1 << way;
    if ((recent & bit) !== 0) return;
    this.recent[set] = (recent | bit) === ALL_WAYS ? bit : recent | bit;
  }

  /**
   * The record (set × WAYS + way) with exactly this tag (profile and kind included),
   * host and path, in its home set or, when that set has spilled, in its neighbour;
   * -1 if none.
   */
  private find(home: number, tag: number, host: string, path: string): number {
    const record = this.findIn(home, tag, host, path);
    return record >= 0 || this.spilled[home] === 0 ? record : this.findIn(home ^ 1, tag, host, path);
  }

  private findIn(set: number, tag: number, host: string, path: string): number {
    const table = this.table;
    const first = set * WAYS;
    for (let record = first, at = first * SLOTS; record < first + WAYS; record++, at += SLOTS) {
      if (((table[at + S_KEY] as number) & TAG_MASK) === tag && table[at + S_HOST] === host && table[at + S_PATH] === path) return record;
    }
    return -1;
  }

  /** The first empty way of `set`, or -1. */
  private emptyWay(set: number): number {
    const first = set * WAYS * SLOTS;
    for (let way = 0; way < WAYS; way++) if (this.table[first + way * SLOTS + S_KEY] === EMPTY) return way;
    return -1;
  }
}
