import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseHost } from 'tldts';
import { BrandSetBuilder } from '../policy/brands.js';
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
 * A label becomes a derived brand when the category lists it, as the registrable
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
   * Per distinct registrable label, in parallel arrays (a list holds ~100,000 labels;
   * an object each doubled the time spent collecting garbage): the first public suffix
   * it was listed under, whether a second one was seen, how many listed hosts carry it,
   * and the file they came from (MIXED_FILES when several).
   */
  private readonly indexOf = new Map<string, number>();
  private readonly labels: string[] = [];
  private readonly firstSuffix: string[] = [];
  private secondSuffix = new Uint8Array(1024);
  private listed = new Uint32Array(1024);
  private fileIds = new Int32Array(1024);

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

  /** One listed host, canonical. Lists from subscriptions join through here too. */
  addListed(host: string, fileId: number): void {
    const parsed = parseHost(host, PSL_OPTIONS);
    const label = parsed.domainWithoutSuffix;
    const suffix = parsed.publicSuffix;
    if (parsed.isIp === true || label === null || label === '' || suffix === null) return;
    let index = this.indexOf.get(label);
    if (index === undefined) {
      index = this.labels.length;
      if (index === this.listed.length) this.grow();
      this.indexOf.set(label, index);
      this.labels.push(label);
      this.firstSuffix.push(suffix);
      this.fileIds[index] = fileId;
    } else {
      if (this.fileIds[index] !== fileId) this.fileIds[index] = MIXED_FILES;
      if (this.secondSuffix[index] === 0 && this.firstSuffix[index] !== suffix) this.secondSuffix[index] = 1;
    }
    this.listed[index]!++;
  }

  /**
   * Adds the derived brands to `brands`. `mixedFileId` names the category folder for a
   * brand derived from entries of several files. Returns how many were derived.
   */
  derive(brands: BrandSetBuilder, mixedFileId: number): number {
    let derived = 0;
    for (let index = 0; index < this.labels.length; index++) {
      const label = this.labels[index]!;
      if (!this.isBrand(label, this.secondSuffix[index] === 1)) continue;
      const fileId = this.fileIds[index]!;
      if (brands.add(label, this.categoryId, fileId === MIXED_FILES ? mixedFileId : fileId, 0, this.listed[index]!)) derived++;
    }
    this.indexOf.clear();
    this.labels.length = 0;
    this.firstSuffix.length = 0;
    return derived;
  }

  private isBrand(label: string, severalSuffixes: boolean): boolean {
    if (label.length < MIN_DERIVED_LENGTH || !/[a-z]/.test(label) || this.excluded.has(label)) return false;
    if (severalSuffixes) return true;
    if (/[0-9]/.test(label)) return true;
    return this.vocabulary.some((run) => label.includes(run));
  }

  private grow(): void {
    const size = this.listed.length * 2;
    const secondSuffix = new Uint8Array(size);
    secondSuffix.set(this.secondSuffix);
    this.secondSuffix = secondSuffix;
    const listed = new Uint32Array(size);
    listed.set(this.listed);
    this.listed = listed;
    const fileIds = new Int32Array(size);
    fileIds.set(this.fileIds);
    this.fileIds = fileIds;
  }
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
        context.problems.error(fileName, line, `host signal "${rule}": write letters and digits only, at least ${MIN_SIGNAL_LENGTH} (a shorter run matches inside too many host names)`);
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
