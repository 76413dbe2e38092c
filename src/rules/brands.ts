import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { getPublicSuffix } from 'tldts';
import type { BrandSetBuilder } from '../policy/brands.js';
import { canonicalRuleHost } from '../policy/hostname.js';
import type { KeywordSetBuilder } from '../policy/keywords.js';
import { foldPhrase, SEPARATOR } from '../policy/text.js';
import { forEachRuleLine, forEachRuleSpan } from './lines.js';
import type { ProblemList } from './problems.js';

/**
 * Brand rules and host signals of a category folder (see docs/brands.md):
 *
 *   brands        one registrable label a line (`3bet`: `3bet.<any public suffix>`);
 *                 `*bet*` adds a brand-making run; `!label` keeps a label from being
 *                 derived. The file's presence also turns derivation on: brands are
 *                 derived at load from the category's listed domains.
 *   host-signals  runs of letters (`nhacai`, `soi kèo`) matched inside the labels of a
 *                 request host (`lode*`: at a label's start), without diacritics as
 *                 keywords are; never in paths or page text, where they would be words.
 *
 * A label becomes a derived brand when the category lists it as a site (the
 * registrable domain or its `www.` name, not a host deeper under it), as the registrable
 * label, under at least two different public suffixes; or under one suffix
 * when the label itself carries a gambling-style mark: letters mixed with digits
 * (`789club`, `go88`), or a run of the brand vocabulary or of the host signals.
 * Labels shorter than MIN_DERIVED_LENGTH or without a letter are never derived: `sun`,
 * `tg`, `154` sit under several suffixes of any large list and mean nothing.
 */

export const BRANDS_FILE = 'brands';
export const HOST_SIGNALS_FILE = 'host-signals';

/** A label listed under two public suffixes is a brand (measured: bench/brands.ts, bench/RESULTS.md). */
export const MIN_DERIVED_LENGTH = 4;
const MIN_HAND_LENGTH = 3;
const MIN_RUN_LENGTH = 3;
const MIN_SIGNAL_LENGTH = 4;

const MIXED_FILES = -1;
const EMPTY_SLOT = -1;
const PSL_OPTIONS = { allowPrivateDomains: true, extractHostname: false, validateHostname: false, mixedInputs: false } as const;

/** Letters and digits of a folded phrase, separators dropped: `Soi kèo` → `soikeo`. */
export function foldedRun(text: string): string {
  const { base } = foldPhrase(text);
  let run = '';
  for (const code of base) if (code !== SEPARATOR) run += String.fromCharCode(code);
  return run;
}

function isAsciiRun(run: string): boolean {
  return /^[a-z0-9]+$/.test(run);
}

/** Collects a category's listed domains and derives its brands from them. */
export class BrandDeriver {
  /**
   * Per distinct registrable label, in parallel typed arrays (the bundled lists give a
   * category ~150,000 labels, read while the serving policy is resident): its bytes in
   * one pool, the first public suffix it was listed under (an interned id), whether a
   * second one was seen, how many listed hosts carry it, and the file they came from
   * (MIXED_FILES when several). No label is a string or a Map entry until it is derived:
   * a string each, sliced from the piece of list it was read in, kept those pieces alive
   * and cost ~18 MB of heap for the bundled lists.
   */
  private count = 0;
  private pool = new Uint8Array(64 * 1024);
  private poolLength = 0;
  private labelStart = new Uint32Array(1024);
  private labelLength = new Uint16Array(1024);
  private labelHash = new Int32Array(1024);
  private firstSuffix = new Int32Array(1024);
  private secondSuffix = new Uint8Array(1024);
  private listed = new Uint32Array(1024);
  private fileIds = new Int32Array(1024);
  /** Open addressing by label hash: a label's index or EMPTY_SLOT; at most half full. */
  private slots = new Int32Array(2048).fill(EMPTY_SLOT);
  /** Public suffixes are few (a few thousand): an id each, the string copied so it holds no list piece. */
  private readonly suffixIds = new Map<string, number>();

  constructor(
    private readonly categoryId: number,
    private readonly excluded: ReadonlySet<string>,
    private readonly vocabulary: readonly string[],
  ) {}

  /** Every line of a `domains` file (bad lines are the domain loader's to report). */
  addDomainsText(text: string, fileId: number): void {
    forEachRuleSpan(text, (start, end) => {
      const host = canonicalRuleHost(text.slice(start, end));
      if (host !== null) this.addListed(host, fileId);
    });
  }

  /**
   * One listed host, canonical (ASCII). Lists from subscriptions join through here too.
   * The label is the one tldts' `parse` names `domainWithoutSuffix`, found from the
   * public suffix alone: no result object, no label string.
   */
  addListed(host: string, fileId: number): void {
    const suffix = getPublicSuffix(host, PSL_OPTIONS);
    // An IP literal has no suffix (detectIp, on by default).
    if (suffix === null) return;
    let hostEnd = host.length;
    while (hostEnd > 1 && host.charCodeAt(hostEnd - 1) === 0x2e) hostEnd--;
    const labelEnd = hostEnd - suffix.length - 1;
    // The host is its suffix (`com`, `github.io`): no registrable label.
    if (labelEnd <= 0) return;
    const labelStart = host.lastIndexOf('.', labelEnd - 1) + 1;
    if (labelStart >= labelEnd) return;
    // Only a listed site is evidence of a brand: a host deeper than `www.` is a list's
    // verdict on one host (a CDN shard, an ad pixel), not on the name.
    if (!isSiteHost(host, labelStart)) return;
    const hash = hashSpan(host, labelStart, labelEnd);
    let slot = hash & (this.slots.length - 1);
    let index = this.slots[slot]!;
    while (index !== EMPTY_SLOT && !(this.labelHash[index] === hash && this.labelIs(index, host, labelStart, labelEnd))) {
      slot = (slot + 1) & (this.slots.length - 1);
      index = this.slots[slot]!;
    }
    const suffixId = this.suffixId(suffix);
    if (index === EMPTY_SLOT) {
      index = this.append(host, labelStart, labelEnd, hash);
      this.slots[slot] = index;
      this.firstSuffix[index] = suffixId;
      this.fileIds[index] = fileId;
      if (this.count * 2 > this.slots.length) this.rehash();
    } else {
      if (this.fileIds[index] !== fileId) this.fileIds[index] = MIXED_FILES;
      if (this.secondSuffix[index] === 0 && this.firstSuffix[index] !== suffixId) this.secondSuffix[index] = 1;
    }
    this.listed[index]!++;
  }

  /**
   * Adds the derived brands to `brands`, in the order the labels were first listed.
   * `mixedFileId` names the category folder for a brand derived from entries of several
   * files. Returns how many were derived. The deriver's tables are dropped.
   */
  derive(brands: BrandSetBuilder, mixedFileId: number): number {
    let derived = 0;
    // One string of every label; brands are slices of it until the brand set joins them.
    const labels = Buffer.from(this.pool.buffer, this.pool.byteOffset, this.poolLength).toString('latin1');
    for (let index = 0; index < this.count; index++) {
      if (this.labelLength[index]! < MIN_DERIVED_LENGTH) continue;
      const start = this.labelStart[index]!;
      const label = labels.slice(start, start + this.labelLength[index]!);
      if (!this.isBrand(label, this.secondSuffix[index] === 1)) continue;
      const fileId = this.fileIds[index]!;
      if (brands.add(label, this.categoryId, fileId === MIXED_FILES ? mixedFileId : fileId, 0, this.listed[index]!)) derived++;
    }
    this.count = 0;
    this.poolLength = 0;
    this.pool = new Uint8Array(0);
    this.labelStart = new Uint32Array(0);
    this.labelLength = new Uint16Array(0);
    this.labelHash = new Int32Array(0);
    this.firstSuffix = new Int32Array(0);
    this.secondSuffix = new Uint8Array(0);
    this.listed = new Uint32Array(0);
    this.fileIds = new Int32Array(0);
    this.slots = new Int32Array(1).fill(EMPTY_SLOT);
    this.suffixIds.clear();
    return derived;
  }

  private isBrand(label: string, severalSuffixes: boolean): boolean {
    if (label.length < MIN_DERIVED_LENGTH || !/[a-z]/.test(label) || this.excluded.has(label)) return false;
    if (severalSuffixes) return true;
    if (/[0-9]/.test(label)) return true;
    return this.vocabulary.some((run) => label.includes(run));
  }

  private suffixId(suffix: string): number {
    let id = this.suffixIds.get(suffix);
    if (id === undefined) {
      id = this.suffixIds.size;
      // A copy: the suffix is a slice of the host, itself maybe a slice of a list piece.
      this.suffixIds.set(Buffer.from(suffix, 'latin1').toString('latin1'), id);
    }
    return id;
  }

  private labelIs(index: number, text: string, start: number, end: number): boolean {
    if (this.labelLength[index] !== end - start) return false;
    const from = this.labelStart[index]!;
    for (let i = 0; i < end - start; i++) if (this.pool[from + i] !== text.charCodeAt(start + i)) return false;
    return true;
  }

  /** Stores a new label's bytes; returns its index. */
  private append(text: string, start: number, end: number, hash: number): number {
    const index = this.count++;
    if (index === this.listed.length) this.growEntries();
    const length = end - start;
    if (this.poolLength + length > this.pool.length) {
      const pool = new Uint8Array(Math.max(this.pool.length * 2, this.poolLength + length));
      pool.set(this.pool.subarray(0, this.poolLength));
      this.pool = pool;
    }
    for (let i = 0; i < length; i++) this.pool[this.poolLength + i] = text.charCodeAt(start + i);
    this.labelStart[index] = this.poolLength;
    this.labelLength[index] = length;
    this.labelHash[index] = hash;
    this.poolLength += length;
    return index;
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2).fill(EMPTY_SLOT);
    const mask = slots.length - 1;
    for (let index = 0; index < this.count; index++) {
      let slot = this.labelHash[index]! & mask;
      while (slots[slot] !== EMPTY_SLOT) slot = (slot + 1) & mask;
      slots[slot] = index;
    }
    this.slots = slots;
  }

  private growEntries(): void {
    const size = this.listed.length * 2;
    const grown = <T extends Uint8Array | Uint16Array | Uint32Array | Int32Array>(from: T, make: (size: number) => T): T => {
      const to = make(size);
      to.set(from as never);
      return to;
    };
    this.labelStart = grown(this.labelStart, (n) => new Uint32Array(n));
    this.labelLength = grown(this.labelLength, (n) => new Uint16Array(n));
    this.labelHash = grown(this.labelHash, (n) => new Int32Array(n));
    this.firstSuffix = grown(this.firstSuffix, (n) => new Int32Array(n));
    this.secondSuffix = grown(this.secondSuffix, (n) => new Uint8Array(n));
    this.listed = grown(this.listed, (n) => new Uint32Array(n));
    this.fileIds = grown(this.fileIds, (n) => new Int32Array(n));
  }
}

/**
 * Whether `host`, whose registrable label starts at `labelStart`, is a site a list
 * blocks whole: the registrable domain itself or its `www.` name. A list that wants a
 * whole site lists it so; one that lists `pixel-us.1winsa.com` or
 * `icdn02.igayporn.tv.sds.rncdn7.com` blocks that host and leaves its siblings open,
 * and a brand derived from it would block them all under every suffix.
 */
function isSiteHost(host: string, labelStart: number): boolean {
  return labelStart === 0 || (labelStart === 4 && host.startsWith('www.'));
}

/** FNV-1a of `text.slice(start, end)` with a final mix. */
function hashSpan(text: string, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h ^ (h >>> 15);
}

export interface BrandContext {
  readonly fileNames: string[];
  readonly brands: BrandSetBuilder;
  /** Host signals join the keyword automaton, marked host-only. */
  readonly keywords: KeywordSetBuilder;
  readonly problems: ProblemList;
  readonly displayPath: (file: string) => string;
}

/**
 * Reads a category's `brands` and `host-signals` files. Returns the deriver that the
 * category's `domains` files feed, or null when the category has no `brands` file.
 */
export async function loadCategoryBrands(folder: string, categoryId: number, context: BrandContext): Promise<BrandDeriver | null> {
  const vocabulary: string[] = [];
  const signalsText = await readOptional(path.join(folder, HOST_SIGNALS_FILE), context);
  if (signalsText !== null) {
    const fileName = context.displayPath(path.join(folder, HOST_SIGNALS_FILE));
    const fileId = context.fileNames.push(fileName) - 1;
    forEachRuleLine(signalsText, (rule, line) => {
      // `nhacai` matches anywhere inside a label; `lode*` only at a label's start.
      const atStart = rule.endsWith('*') && !rule.startsWith('*');
      const bare = rule.replace(/^\*|\*$/g, '');
      const run = foldedRun(bare);
      if (!isAsciiRun(run) || run.length < MIN_SIGNAL_LENGTH || /[^\p{L}\p{N}\s-]/u.test(bare)) {
        context.problems.error(
          fileName,
          line,
          `host signal "${rule}": write letters and digits only, at least ${MIN_SIGNAL_LENGTH} (a shorter run matches inside too many host names)`,
        );
        return;
      }
      const error = context.keywords.add(atStart ? `${run}*` : `*${run}*`, categoryId, fileId, line, true);
      if (error !== null) context.problems.error(fileName, line, `host signal "${rule}": ${error}`);
      else vocabulary.push(run);
    });
  }

  const brandsPath = path.join(folder, BRANDS_FILE);
  const brandsText = await readOptional(brandsPath, context);
  if (brandsText === null) return null;
  const fileName = context.displayPath(brandsPath);
  const fileId = context.fileNames.push(fileName) - 1;
  const excluded = new Set<string>();
  forEachRuleLine(brandsText, (rule, line) => {
    const parsed = parseBrandLine(rule);
    if ('error' in parsed) {
      context.problems.error(fileName, line, parsed.error);
      return;
    }
    if (parsed.kind === 'brand') context.brands.add(parsed.label, categoryId, fileId, line);
    else if (parsed.kind === 'run') vocabulary.push(parsed.label);
    else excluded.add(parsed.label);
  });
  return new BrandDeriver(categoryId, excluded, vocabulary);
}

export type BrandLine = { readonly kind: 'brand' | 'run' | 'exclude'; readonly label: string } | { readonly error: string };

/** One line of a `brands` file: `3bet`, `*bet*` or `!mail`. */
export function parseBrandLine(rule: string): BrandLine {
  if (rule.startsWith('*') || rule.endsWith('*')) {
    if (!(rule.startsWith('*') && rule.endsWith('*')) || rule.length < 3) return { error: `brand run "${rule}": write it as *run*, with a star at each end` };
    const run = foldedRun(rule.slice(1, -1));
    if (!isAsciiRun(run) || run.length < MIN_RUN_LENGTH || rule.slice(1, -1).includes('*')) {
      return { error: `brand run "${rule}": letters and digits only, at least ${MIN_RUN_LENGTH}` };
    }
    return { kind: 'run', label: run };
  }
  const exclude = rule.startsWith('!');
  const text = exclude ? rule.slice(1).trim() : rule;
  const label = canonicalRuleHost(text);
  if (label === null || label.includes('.') || /^[0-9]+$/.test(label)) {
    return { error: `bad brand "${rule}": write one label without dots, as in 3bet (for 3bet.<any suffix>)` };
  }
  if (!exclude && label.length < MIN_HAND_LENGTH) return { error: `brand "${rule}" is too short: at least ${MIN_HAND_LENGTH} letters or digits` };
  return { kind: exclude ? 'exclude' : 'brand', label };
}

async function readOptional(file: string, context: BrandContext): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') context.problems.error(context.displayPath(file), 0, `cannot read: ${code ?? (error as Error).message}`);
    return null;
  }
}
