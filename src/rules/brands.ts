import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseHost } from 'tldts';
import { BrandSetBuilder } from '../policy/brands.js';
import { canonicalRuleHost } from '../policy/hostname.js';
import { KeywordSetBuilder } from '../policy/keywords.js';
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
 * label, under at least MIN_SUFFIXES different public suffixes; or under one suffix
 * when the label itself carries a gambling-style mark: letters mixed with digits
 * (`789club`, `go88`), or a run of the brand vocabulary or of the host signals.
 * Labels shorter than MIN_DERIVED_LENGTH or without a letter are never derived: `sun`,
 * `tg`, `154` sit under several suffixes of any large list and mean nothing.
 */

export const BRANDS_FILE = 'brands';
export const HOST_SIGNALS_FILE = 'host-signals';

/** Chosen by measurement (bench/brands.ts, bench/RESULTS.md). */
export const MIN_SUFFIXES = 2;
export const MIN_DERIVED_LENGTH = 4;
const MIN_HAND_LENGTH = 3;
const MIN_RUN_LENGTH = 3;
const MIN_SIGNAL_LENGTH = 4;

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

interface LabelTally {
  /** Distinct public suffixes the label was listed under (kept until MIN_SUFFIXES). */
  suffixes: string[];
  /** Registrable domains listed with this label. */
  domains: number;
  fileId: number;
  mixedFiles: boolean;
}

/** Collects a category's listed domains and derives its brands from them. */
export class BrandDeriver {
  private readonly labels = new Map<string, LabelTally>();
  private readonly registrable = new Set<string>();

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
    if (parsed.isIp === true || label === null || label === '' || suffix === null || parsed.domain === null) return;
    if (this.registrable.has(parsed.domain)) return;
    this.registrable.add(parsed.domain);
    let tally = this.labels.get(label);
    if (tally === undefined) {
      tally = { suffixes: [], domains: 0, fileId, mixedFiles: false };
      this.labels.set(label, tally);
    }
    tally.domains++;
    if (tally.fileId !== fileId) tally.mixedFiles = true;
    if (tally.suffixes.length < MIN_SUFFIXES && !tally.suffixes.includes(suffix)) tally.suffixes.push(suffix);
  }

  /**
   * Adds the derived brands to `brands`. `mixedFileId` names the category folder for a
   * brand derived from entries of several files. Returns how many were derived.
   */
  derive(brands: BrandSetBuilder, mixedFileId: number): number {
    let derived = 0;
    for (const [label, tally] of this.labels) {
      if (!this.isBrand(label, tally)) continue;
      if (brands.has(label, this.categoryId)) continue;
      brands.add(label, this.categoryId, tally.mixedFiles ? mixedFileId : tally.fileId, 0, tally.domains);
      derived++;
    }
    this.labels.clear();
    this.registrable.clear();
    return derived;
  }

  private isBrand(label: string, tally: LabelTally): boolean {
    if (label.length < MIN_DERIVED_LENGTH || !/[a-z]/.test(label) || this.excluded.has(label)) return false;
    if (tally.suffixes.length >= MIN_SUFFIXES) return true;
    if (/[0-9]/.test(label)) return true;
    return this.vocabulary.some((run) => label.includes(run));
  }
}

export interface BrandContext {
  readonly fileNames: string[];
  readonly brands: BrandSetBuilder;
  readonly hostSignals: KeywordSetBuilder;
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
      const error = context.hostSignals.add(atStart ? `${run}*` : `*${run}*`, categoryId, fileId, line);
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
