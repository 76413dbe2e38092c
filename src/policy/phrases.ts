/**
 * Weighted phrases (docs/contract.md §8): `<weight> <phrase>` lines of a category's
 * `phrases` file, matched in page text with the keyword semantics of §3 (whole words,
 * `*` ends, case, NFC/NFD and the diacritic rule) by the keyword automaton itself
 * (keywords.ts): one KeywordSet holds every phrase of every category, and this module
 * keeps a weight per entry.
 *
 * A page's score in a category is the sum of the weights of the DISTINCT phrases of
 * that category found in it: a page that repeats one word a hundred times scores it
 * once, so length alone does not push a long, harmless article over a limit.
 *
 * PhraseScanner carries everything a streaming scan needs across chunks (the
 * automaton state, the folded tail, the phrases already counted), so that a phrase
 * split across two network chunks matches like one in a single chunk.
 */
import type { Policy } from './engine.js';
import { KeywordSetBuilder, type KeywordSet } from './keywords.js';
import { FoldedText } from './text.js';

/** Weights beyond this are typing mistakes (a limit of 1000 would never be reached otherwise). */
export const MAX_PHRASE_WEIGHT = 1000;
const WEIGHTED_LINE = /^([+-]?\d+)\s+(\S.*)$/u;

/** Folded text is scanned in slices of this many UTF-16 code units. */
const SLICE = 8192;

/** A phrases line split into weight and phrase, or the reason it is unusable. */
export function parsePhraseLine(line: string): { weight: number; phrase: string } | { error: string } {
  const match = WEIGHTED_LINE.exec(line);
  if (match === null) return { error: 'expected "<weight> <phrase>", e.g. "40 cá độ bóng đá"' };
  const weight = Number(match[1]);
  if (weight === 0 || Math.abs(weight) > MAX_PHRASE_WEIGHT)
    return { error: `weight must be a non-zero integer between -${MAX_PHRASE_WEIGHT} and ${MAX_PHRASE_WEIGHT}` };
  return { weight, phrase: match[2]!.trim() };
}

export class PhraseSetBuilder {
  private readonly keywords = new KeywordSetBuilder();
  private readonly weights: number[] = [];

  /**
   * Adds one line of a phrases file; null when accepted, otherwise an English message
   * for `lachan rules lint` (the caller prefixes FILE:LINE). A phrase written twice in
   * one category counts once, with the weight of its first line.
   */
  addLine(line: string, categoryId: number, fileId: number, lineNumber: number): string | null {
    const parsed = parsePhraseLine(line);
    if ('error' in parsed) return parsed.error;
    const before = this.keywords.count;
    const error = this.keywords.add(parsed.phrase, categoryId, fileId, lineNumber);
    if (error !== null) return `phrase "${parsed.phrase}": ${error}`;
    if (this.keywords.count > before) this.weights.push(parsed.weight);
    return null;
  }

  build(): PhraseSet {
    return new PhraseSet(this.keywords.build(), Int32Array.from(this.weights));
  }
}

/** Scanners kept for reuse per PhraseSet: about the pages inspected at once on a busy gateway. */
const MAX_SPARE_SCANNERS = 64;
/** A scanner grown past this by an odd page is left to the collector. */
const RECYCLED_CAPACITY = 4 * SLICE;

export class PhraseSet {
  private readonly spares: PhraseScanner[] = [];

  constructor(
    readonly automaton: KeywordSet,
    /** Weight per automaton entry. */
    readonly weights: Int32Array,
  ) {}

  get size(): number {
    return this.weights.length;
  }

  /**
   * A fresh scanner for one text; `shortText` (a search query) sizes its buffer for a
   * line. A page's buffer starts at 1 KiB and grows to a slice as text comes: most
   * inspected responses are small, and 50 KB of typed arrays per response were most
   * of what a small page's inspection cost.
   */
  scanner(categoryCount: number, shortText = false): PhraseScanner {
    if (!shortText) {
      const spare = this.spares.pop();
      if (spare !== undefined && spare.scores.length === categoryCount) return spare;
    }
    return new PhraseScanner(this, categoryCount, shortText ? 256 : 1024);
  }

  /**
   * Takes back a page scanner whose results are no longer read, for the next page:
   * typed arrays are slow to allocate, and a small page's scan cost less than its
   * scanner's allocation.
   */
  recycle(scanner: PhraseScanner): void {
    if (this.spares.length >= MAX_SPARE_SCANNERS || scanner.capacity > RECYCLED_CAPACITY) return;
    scanner.reset();
    this.spares.push(scanner);
  }
}

/** One streaming scan: feed text with `append`, then `finish`; scores are per category id. */
export class PhraseScanner {
  /** Score per category id, current after `flush` or `finish`. */
  readonly scores: Int32Array;
  /** Entries found so far, in order of discovery (each once). */
  readonly found: number[] = [];
  /** Bumped whenever a score changes, so callers re-check limits only then. */
  changes = 0;

  private readonly folded: FoldedText;
  private readonly seen: Uint8Array;
  private state = 0;
  private scanned = 0;
  private readonly keep: number;
  private readonly onEntry = (entry: number): void => this.count(entry);

  constructor(
    private readonly phrases: PhraseSet,
    categoryCount: number,
    capacity: number,
  ) {
    this.folded = new FoldedText(capacity);
    this.scores = new Int32Array(categoryCount);
    this.seen = new Uint8Array(phrases.size);
    this.keep = phrases.automaton.longestPattern + 1;
    this.folded.reset();
  }

  /** Folded positions its buffer holds without growing. */
  get capacity(): number {
    return this.folded.base.length;
  }

  /**
   * Counts entry `entry` as found in the text (once, however often it is reported):
   * for a scan of the page done elsewhere, the compiled one of content/page-scan.ts.
   */
  count(entry: number): void {
    if (this.seen[entry] !== 0) return;
    this.seen[entry] = 1;
    this.found.push(entry);
    const category = this.phrases.automaton.categoryOf(entry);
    this.scores[category] = this.scores[category]! + this.phrases.weights[entry]!;
    this.changes++;
  }

  /** Back to the state of a fresh scanner. */
  reset(): void {
    for (const entry of this.found) this.seen[entry] = 0;
    this.found.length = 0;
    this.scores.fill(0);
    this.changes = 0;
    this.state = 0;
    this.scanned = 0;
    this.folded.reset();
  }

  /** Scans `text[start, end)`, a piece of the page's text continuing the previous one. */
  append(text: string, start = 0, end = text.length): void {
    if (this.phrases.size === 0) return;
    for (let from = start; from < end; from += SLICE) {
      this.folded.appendText(text, from, Math.min(end, from + SLICE));
      // Pages hand over many short runs of text between tags: fold them into one
      // slice and run the automaton once it is full, not once per run.
      if (this.folded.length >= SLICE) this.scanUpToTail();
    }
  }

  /** Scans what was appended so far, so that `scores` are current (before a verdict is read). */
  flush(): void {
    if (this.phrases.size !== 0) this.scanUpToTail();
  }

  /** A break between pieces of text that are not one sentence (a tag, a table cell). */
  separate(): void {
    this.folded.reserve(1);
    this.folded.pushSeparator();
  }

  /** The end of the text: the last word can now match. */
  finish(): void {
    if (this.phrases.size === 0) return;
    this.folded.reserve(1);
    this.folded.pushSeparator();
    this.state = this.phrases.automaton.scanAll(this.folded, this.state, this.scanned, this.folded.length, this.onEntry);
    this.scanned = this.folded.length;
  }

  /** Display forms of the phrases found, in order of discovery, with their weights. */
  evidence(category?: number): string[] {
    const automaton = this.phrases.automaton;
    return this.found
      .filter((e) => category === undefined || automaton.categoryOf(e) === category)
      .map((e) => `${automaton.phraseOf(e)} (${this.phrases.weights[e]})`);
  }

  /**
   * Scans all but the last folded position, which a combining mark of the next piece
   * (NFD text) may still change, then keeps only the tail a phrase could span.
   */
  private scanUpToTail(): void {
    const upTo = this.folded.length - 1;
    if (upTo > this.scanned) {
      this.state = this.phrases.automaton.scanAll(this.folded, this.state, this.scanned, upTo, this.onEntry);
      this.scanned = upTo;
    }
    this.scanned -= this.folded.keepTail(this.keep);
  }
}

/**
 * The content rules of a loaded policy: every category's phrases in one PhraseSet and
 * each profile's content_limit. Kept beside the Policy in a WeakMap, like the
 * organisation, because the decision engine has no use for them: a reload builds a
 * new Policy and its content rules with it, and the old pair is collected together.
 */
export interface ContentRules {
  readonly phrases: PhraseSet;
  /** Profile id → content_limit; a profile absent here is not inspected. */
  readonly limits: ReadonlyMap<string, number>;
}

const CONTENT_RULES = new WeakMap<Policy, ContentRules>();
let emptyRules: ContentRules | null = null;

export function attachContentRules(policy: Policy, rules: ContentRules): void {
  CONTENT_RULES.set(policy, rules);
}

/** The content rules loaded with `policy`; none (nothing inspected) for a policy built without the loader. */
export function contentRulesOf(policy: Policy): ContentRules {
  return CONTENT_RULES.get(policy) ?? (emptyRules ??= { phrases: new PhraseSetBuilder().build(), limits: new Map() });
}
