/**
 * Keyword rules (docs/contract.md §3): whole-word, multi-word and `*`-wildcard phrases matched
 * in URLs and page text, ignoring case, Unicode composition and, per word, missing
 * diacritics.
 *
 * Over ~400 lines on purpose: the automaton's builder and its scanners share one packed
 * layout (transition table, output bit sets, pattern records); keeping them together
 * keeps that layout in one place.
 *
 * How: every keyword is folded (see text.ts) to its diacritic-free base form and
 * padded with a separator on each side that is not a `*`. All patterns go into one
 * Aho–Corasick automaton compiled to a dense transition table (an Int32Array over
 * states × symbols, where only characters used by some keyword get a symbol), so
 * scanning costs one table load per position whatever the number of keywords.
 * Inactive categories cost nothing beyond that: each output state carries a bit set
 * of its categories, tested before any verification. A candidate is verified against
 * the diacritic rule: each word of the text inside the match must either carry no
 * diacritics at all or carry exactly the keyword word's diacritics.
 *
 * Word boundaries come for free: the folded text starts and ends with a separator
 * and collapses punctuation runs into one, so a padded pattern can only match at
 * word edges.
 *
 * Host signals (a category's `host-signals` file, see docs/brands.md) are entries of
 * the same automaton marked host-only: they count only where the match ends inside the
 * URL's host, and never in page text, so they cost no second scan of the request.
 *
 * Lint rules enforced by `add` (returned as messages, the entry is then dropped):
 *   - a keyword must contain a letter or digit;
 *   - `*` only at the very start or end, touching a letter or digit;
 *   - a whole-word keyword needs at least 3 letters or digits (`ke`, `co`, `a b`
 *     would match far too much);
 *   - a keyword with `*` needs at least 4 letters or digits (it matches inside
 *     other words, so short ones hit everywhere: `*bet*` is in `alphabet`);
 *   - at most 100 letters, digits and separators.
 */
import { CATEGORY_BLOCKS } from './types.js';
import { FoldedText, SEPARATOR, TONE_MARKS, displayForm, foldPhrase, foldedBaseOf, isSeparatorChar } from './text.js';

const MAX_PATTERN_LENGTH = 100;
const MIN_WHOLE_WORD_LETTERS = 3;
const MIN_WILDCARD_LETTERS = 4;
/** Page text is folded and scanned in slices of this many UTF-16 code units. */
const TEXT_SLICE = 4096;

interface PendingEntry {
  readonly pattern: Uint16Array; // with padding separators
  readonly marks: Int32Array;
  readonly categoryId: number;
  readonly fileId: number;
  readonly line: number;
  readonly phrase: string;
  /** A host signal: counts only where it ends inside the URL's host, never in path or page text. */
  readonly hostOnly: boolean;
}

/** Marks a character the ASCII fast path of matchUrl cannot fold by itself. */
const NOT_ASCII_FAST = -1;
const SEPARATOR_SYMBOL = 1;
/** matchAsciiUrl's answer when the URL needs the full fold (percent-decoding, Unicode). */
const NEEDS_FULL_FOLD = -2;

/**
 * The transition table for page text: states are renumbered so that those ending some
 * keyword come last, so a cell holds the next row (state × alphabet size) and "ends a
 * keyword" is `row >= outputsFrom`, the same one load and one comparison a step as the
 * dense table. In 16 bits while states × alphabet fits them, for the string path
 * (scanAll) and the compiled page scan: half the dense table's bytes (117 KB for the
 * shipped phrases against 234 KB); a 1 KB page visits a few hundred states, and in a
 * proxy whose other work has evicted them, every row is a cache miss. Larger lists get
 * 32-bit rows, made only for the compiled page scan, which copies them into its memory
 * (content/page-scan.ts): the string path keeps the dense table, as large.
 */
interface CompactRows<Cells extends Uint16Array | Uint32Array = Uint16Array | Uint32Array> {
  readonly table: Cells;
  /** Rows from here on end some keyword. */
  readonly outputsFrom: number;
  /** Renumbered state → the builder's state number (firstOutput and the like). */
  readonly original: Int32Array;
}

/** The most cells a table of 16-bit rows holds: a row (state × alphabet) must fit in a u16. */
const MAX_16_BIT_CELLS = 0x10000;

/**
 * CompactRows from the dense table (KeywordSet.delta: rows, inverted for states that end
 * a keyword), in `Cells` (Uint16Array only when states × alphabet ≤ MAX_16_BIT_CELLS).
 */
function compactRows<Cells extends Uint16Array | Uint32Array>(
  delta: Int32Array,
  alphabetSize: number,
  firstOutput: Int32Array,
  Cells: new (length: number) => Cells,
): CompactRows<Cells> {
  const states = delta.length / alphabetSize;
  const renumbered = new Int32Array(states);
  const original = new Int32Array(states);
  let next = 0;
  // The root ends nothing, so it stays state 0: a scan starts there in either numbering.
  for (let state = 0; state < states; state++) if (firstOutput[state]! < 0) (renumbered[state] = next), (original[next++] = state);
  const outputsFrom = next * alphabetSize;
  for (let state = 0; state < states; state++) if (firstOutput[state]! >= 0) (renumbered[state] = next), (original[next++] = state);
  const table = new Cells(delta.length);
  for (let state = 0; state < states; state++) {
    const row = renumbered[state]! * alphabetSize;
    for (let symbol = 0; symbol < alphabetSize; symbol++) {
      const target = delta[state * alphabetSize + symbol]!;
      table[row + symbol] = renumbered[(target < 0 ? ~target : target) / alphabetSize]! * alphabetSize;
    }
  }
  return { table, outputsFrom, original };
}

/**
 * The page-text automaton in the layout the compiled page scan copies into its memory
 * (content/page-scan.ts): the CompactRows and the entry records, read-only.
 */
export interface PackedPhraseAutomaton {
  readonly symbolOf: Uint16Array;
  readonly alphabetSize: number;
  /** 16-bit rows while they fit, else 32-bit (CompactRows). */
  readonly table: Uint16Array | Uint32Array;
  readonly outputsFrom: number;
  readonly originalState: Int32Array;
  readonly firstOutput: Int32Array;
  readonly nextOutput: Int32Array;
  readonly entryAt: Int32Array;
  readonly entryNext: Int32Array;
  readonly entryHostOnly: Uint8Array;
  readonly entryOffset: Int32Array;
  readonly entryLength: Int32Array;
  readonly patternBase: Uint16Array;
  readonly patternMarks: Int32Array;
}

function categoryBit(categoryId: number): number {
  return categoryId < 31 ? 1 << categoryId : 1 << 31;
}

export class KeywordSetBuilder {
  private readonly entries: PendingEntry[] = [];
  private readonly seen = new Set<string>();

  /**
   * Adds one keyword line. Returns null when accepted, otherwise an English message
   * saying why the line is unusable (for `lachan rules lint`).
   */
  add(phrase: string, categoryId: number, fileId: number, line: number, hostOnly = false): string | null {
    let text = phrase.trim();
    if (text.length === 0) return 'empty keyword';
    const leadingStar = text.startsWith('*');
    if (leadingStar) text = text.slice(1);
    const trailingStar = text.endsWith('*');
    if (trailingStar) text = text.slice(0, -1);
    if (text.includes('*')) return "'*' is allowed only at the start or the end of a keyword";
    if (text.length === 0) return 'keyword has no letters or digits';
    if ((leadingStar && isSeparatorChar(text.charCodeAt(0))) || (trailingStar && isSeparatorChar(text.charCodeAt(text.length - 1)))) {
      return "'*' must touch a letter or digit (write `*word`, not `* word`)";
    }
    const folded = foldPhrase(text);
    let letters = 0;
    let words = folded.base.length > 0 ? 1 : 0;
    for (const b of folded.base) {
      if (b === SEPARATOR) words++;
      else letters++;
    }
    if (letters === 0) return 'keyword has no letters or digits';
    const wildcard = leadingStar || trailingStar;
    if (wildcard && letters < MIN_WILDCARD_LETTERS) {
      return `a keyword with '*' needs at least ${MIN_WILDCARD_LETTERS} letters or digits; shorter ones match inside too many words`;
    }
    if (!wildcard && letters < MIN_WHOLE_WORD_LETTERS) {
      return words === 1
        ? `a one-word keyword needs at least ${MIN_WHOLE_WORD_LETTERS} letters or digits; use a phrase of several words instead`
        : `a keyword needs at least ${MIN_WHOLE_WORD_LETTERS} letters or digits`;
    }
    const padLeft = leadingStar ? 0 : 1;
    const padRight = trailingStar ? 0 : 1;
    const length = folded.base.length + padLeft + padRight;
    if (length > MAX_PATTERN_LENGTH) return `keyword is too long (at most ${MAX_PATTERN_LENGTH} characters)`;

    const pattern = new Uint16Array(length);
    const marks = new Int32Array(length);
    if (padLeft) pattern[0] = SEPARATOR;
    if (padRight) pattern[length - 1] = SEPARATOR;
    pattern.set(folded.base, padLeft);
    marks.set(folded.marks, padLeft);

    // The same keyword twice in one category adds nothing; the first line is kept.
    const key = `${categoryId}\u0000${String.fromCharCode(...pattern)}\u0000${marks.join(',')}\u0000${hostOnly ? 'h' : ''}`;
    if (this.seen.has(key)) return null;
    this.seen.add(key);

    const display = (leadingStar ? '*' : '') + displayForm(text) + (trailingStar ? '*' : '');
    this.entries.push({ pattern, marks, categoryId, fileId, line, phrase: display, hostOnly });
    return null;
  }

  /** Entries accepted so far; the index of the next one (phrases.ts keeps a weight per entry). */
  get count(): number {
    return this.entries.length;
  }

  build(): KeywordSet {
    return new KeywordSet(this.entries);
  }
}

export class KeywordSet {
  /** Number of keyword entries. */
  readonly size: number;

  private readonly alphabetSize: number;
  /** Folded base code unit → symbol: 0 = a letter no keyword uses, 1 (SEPARATOR_SYMBOL) = separator. */
  private readonly symbolOf: Uint16Array;
  /**
   * The transition table: `delta[row + symbol]` is the next state's row
   * (state × alphabetSize), bitwise-inverted (negative) when that state ends some
   * keyword, so the scan loop needs no second lookup on the common path.
   */
  private readonly delta: Int32Array;
  /** The same transitions in 16 bits for page text (scanAll), when they fit; see CompactRows. */
  private readonly compact: CompactRows<Uint16Array> | null;
  /** Per state: first entry whose pattern ends exactly here, or -1. */
  private readonly entryAt: Int32Array;

  /** Whether page text scans the 16-bit table (CompactRows) rather than the dense one. */
  get scansCompactRows(): boolean {
    return this.compact !== null;
  }

  /** The shape of the page-text table (CompactRows): 2-byte cells while they fit 16 bits, else 4. */
  get pageTable(): { readonly states: number; readonly alphabetSize: number; readonly cellBytes: 2 | 4 } {
    const states = this.delta.length / this.alphabetSize;
    return { states, alphabetSize: this.alphabetSize, cellBytes: this.compact !== null ? 2 : 4 };
  }

  /**
   * The page-text automaton for the compiled page scan. Its 32-bit rows (a large list)
   * are made at each call and not kept: the page scan copies them into its memory once.
   */
  packedForPages(): PackedPhraseAutomaton {
    const compact = this.compact ?? compactRows(this.delta, this.alphabetSize, this.firstOutput, Uint32Array);
    return {
      symbolOf: this.symbolOf,
      alphabetSize: this.alphabetSize,
      table: compact.table,
      outputsFrom: compact.outputsFrom,
      originalState: compact.original,
      firstOutput: this.firstOutput,
      nextOutput: this.nextOutput,
      entryAt: this.entryAt,
      entryNext: this.entryNext,
      entryHostOnly: this.entryHostOnly,
      entryOffset: this.entryOffset,
      entryLength: this.entryLength,
      patternBase: this.patternBase,
      patternMarks: this.patternMarks,
    };
  }
  /** Per state: nearest state on its failure chain (itself included) with entries, or -1. */
  private readonly firstOutput: Int32Array;
  /** Per state: next state with entries on its failure chain after this one, or -1. */
  private readonly nextOutput: Int32Array;

  private readonly entryCategory: Int32Array;
  private readonly entryFile: Int32Array;
  private readonly entryLine: Int32Array;
  private readonly entryNext: Int32Array;
  private readonly entryHostOnly: Uint8Array;
  /** Folded length of the host during a full-fold URL scan; -1 while scanning page text. */
  private hostEnd = -1;
  private readonly entryOffset: Int32Array;
  private readonly entryLength: Int32Array;
  private readonly patternBase: Uint16Array;
  private readonly patternMarks: Int32Array;
  private readonly phrases: string[];
  private readonly maxPatternLength: number;

  private readonly outputCategories: Int32Array;
  /** Distinct category ids that have keywords, to skip scanning when none blocks. */
  private readonly categoriesUsed: Int32Array;

  /**
   * ASCII code unit → automaton symbol (1 for separators); `%` maps to NOT_ASCII_FAST
   * because it needs percent-decoding. Drives the fast path for plain ASCII URLs.
   */
  private readonly asciiSymbol: Int32Array;

  private readonly folded = new FoldedText(512);

  /** Use KeywordSetBuilder. */
  constructor(entries: readonly PendingEntry[]) {
    const count = entries.length;
    this.size = count;
    this.phrases = entries.map((e) => e.phrase);
    this.entryCategory = Int32Array.from(entries, (e) => e.categoryId);
    this.entryFile = Int32Array.from(entries, (e) => e.fileId);
    this.entryLine = Int32Array.from(entries, (e) => e.line);
    this.entryNext = new Int32Array(count).fill(-1);
    this.entryHostOnly = Uint8Array.from(entries, (e) => (e.hostOnly ? 1 : 0));
    this.entryOffset = new Int32Array(count);
    this.entryLength = new Int32Array(count);

    let poolSize = 0;
    let maxLength = 0;
    for (const e of entries) {
      poolSize += e.pattern.length;
      if (e.pattern.length > maxLength) maxLength = e.pattern.length;
    }
    this.maxPatternLength = maxLength;
    this.patternBase = new Uint16Array(poolSize);
    this.patternMarks = new Int32Array(poolSize);

    // Alphabet: only characters that occur in some pattern get their own symbol.
    this.symbolOf = new Uint16Array(0x10000);
    let symbols = 2;
    this.symbolOf[SEPARATOR] = SEPARATOR_SYMBOL;
    for (const e of entries) {
      for (const b of e.pattern) if (b !== SEPARATOR && this.symbolOf[b] === 0) this.symbolOf[b] = symbols++;
    }
    this.alphabetSize = symbols;
    this.asciiSymbol = new Int32Array(128);
    for (let c = 0; c < 128; c++) {
      const b = foldedBaseOf(c);
      this.asciiSymbol[c] = c === 0x25 || b < 0 ? NOT_ASCII_FAST : this.symbolOf[b]!;
    }

    // Trie, with children in maps while building.
    const children: Map<number, number>[] = [new Map()];
    const entryAt: number[] = [-1];
    let offset = 0;
    entries.forEach((e, index) => {
      this.patternBase.set(e.pattern, offset);
      this.patternMarks.set(e.marks, offset);
      this.entryOffset[index] = offset;
      this.entryLength[index] = e.pattern.length;
      offset += e.pattern.length;
      let state = 0;
      for (const b of e.pattern) {
        const symbol = this.symbolOf[b]!;
        let next = children[state]!.get(symbol);
        if (next === undefined) {
          next = children.length;
          children.push(new Map());
          entryAt.push(-1);
          children[state]!.set(symbol, next);
        }
        state = next;
      }
      // Chain entries that share a pattern, keeping file order.
      if (entryAt[state] === -1) entryAt[state] = index;
      else {
        let last = entryAt[state]!;
        while (this.entryNext[last] !== -1) last = this.entryNext[last]!;
        this.entryNext[last] = index;
      }
    });

    const states = children.length;
    const A = symbols;
    const delta = new Int32Array(states * A);
    const fail = new Int32Array(states);
    const firstOutput = new Int32Array(states).fill(-1);
    const nextOutput = new Int32Array(states).fill(-1);
    this.entryAt = Int32Array.from(entryAt);

    // Breadth-first: a state's failure target is always shallower, hence done.
    const queue = new Int32Array(states);
    let head = 0;
    let tail = 0;
    for (let a = 0; a < A; a++) {
      const child = children[0]!.get(a);
      if (child === undefined) delta[a] = 0;
      else {
        delta[a] = child;
        fail[child] = 0;
        queue[tail++] = child;
      }
    }
    // Root's children fail to the root, which has no entries.
    for (let q = 0; q < tail; q++) {
      const s = queue[q]!;
      firstOutput[s] = this.entryAt[s]! >= 0 ? s : -1;
    }
    while (head < tail) {
      const s = queue[head++]!;
      const row = s * A;
      const failRow = fail[s]! * A;
      for (let a = 0; a < A; a++) {
        const child = children[s]!.get(a);
        if (child === undefined) {
          delta[row + a] = delta[failRow + a]!;
        } else {
          delta[row + a] = child;
          const f = delta[failRow + a]!;
          fail[child] = f;
          const inherited = firstOutput[f]!;
          if (this.entryAt[child]! >= 0) {
            firstOutput[child] = child;
            nextOutput[child] = inherited;
          } else {
            firstOutput[child] = inherited;
          }
          queue[tail++] = child;
        }
      }
    }
    // Per output state: the categories of every entry on its output chain, one bit
    // each (ids above 30 share bit 31), so inactive keywords cost no verification.
    const outputCategories = new Int32Array(states);
    for (let q = 0; q < tail; q++) {
      const st = queue[q]!;
      let mask = 0;
      for (let out = firstOutput[st]!; out >= 0; out = nextOutput[out]!) {
        for (let e = this.entryAt[out]!; e >= 0; e = this.entryNext[e]!) mask |= categoryBit(this.entryCategory[e]!);
      }
      outputCategories[st] = mask;
    }
    this.outputCategories = outputCategories;
    for (let i = 0; i < delta.length; i++) {
      const target = delta[i]!;
      delta[i] = firstOutput[target]! >= 0 ? ~(target * A) : target * A;
    }
    this.delta = delta;
    this.compact = delta.length <= MAX_16_BIT_CELLS ? compactRows(delta, A, firstOutput, Uint16Array) : null;
    this.firstOutput = firstOutput;
    this.categoriesUsed = Int32Array.from(new Set(entries.map((e) => e.categoryId)));
    this.nextOutput = nextOutput;
  }

  /** Folded length of the longest pattern: a streaming scan keeps this many positions of context. */
  get longestPattern(): number {
    return this.maxPatternLength;
  }

  categoryOf(i: number): number {
    return this.entryCategory[i]!;
  }
  fileOf(i: number): number {
    return this.entryFile[i]!;
  }
  lineOf(i: number): number {
    return this.entryLine[i]!;
  }
  /** The keyword as written, in NFC lower case, with its `*`. */
  phraseOf(i: number): string {
    return this.phrases[i]!;
  }

  /**
   * First keyword (by position in the URL) of a blocking category found in the host,
   * path and query; -1 if none. `host` is canonical (lower case, punycode).
   */
  matchUrl(host: string, pathAndQuery: string, actions: Uint8Array): number {
    const mask = this.blockingMask(actions);
    if (mask === 0) return -1;
    if (host.indexOf('xn--') < 0) {
      const fast = this.matchAsciiUrl(host, pathAndQuery, actions, mask);
      if (fast !== NEEDS_FULL_FOLD) return fast;
    }
    const folded = this.folded;
    folded.reset();
    folded.appendHost(host);
    this.hostEnd = folded.length;
    folded.pushSeparator();
    folded.appendUrlPart(pathAndQuery);
    folded.pushSeparator();
    const entry = this.scan(0, 0, folded.length, actions, mask).entry;
    this.hostEnd = -1;
    return entry;
  }

  /**
   * matchUrl for the common URL made of ASCII without `%`: folds and scans in one
   * pass with no buffer. Text without diacritics passes the diacritic rule by
   * definition, so a candidate only needs a blocking category. Returns
   * NEEDS_FULL_FOLD at the first character it cannot handle (non-ASCII, `%`).
   */
  private matchAsciiUrl(host: string, pathAndQuery: string, actions: Uint8Array, mask: number): number {
    const asciiSymbol = this.asciiSymbol;
    const delta = this.delta;
    const outputCategories = this.outputCategories;
    const A = this.alphabetSize;
    // The text starts with a separator (the left edge), and no pattern is that alone.
    let row = delta[SEPARATOR_SYMBOL]!;
    let afterSeparator = true;
    const hostLength = host.length;
    const total = hostLength + 1 + pathAndQuery.length + 1;
    for (let i = 0; i < total; i++) {
      let symbol: number;
      if (i < hostLength) {
        const c = host.charCodeAt(i);
        symbol = c < 128 ? asciiSymbol[c]! : NOT_ASCII_FAST;
      } else if (i === hostLength || i === total - 1) {
        symbol = SEPARATOR_SYMBOL; // between host and path, and the right edge
      } else {
        const c = pathAndQuery.charCodeAt(i - hostLength - 1);
        symbol = c < 128 ? asciiSymbol[c]! : NOT_ASCII_FAST;
      }
      if (symbol === NOT_ASCII_FAST) return NEEDS_FULL_FOLD;
      if (symbol === SEPARATOR_SYMBOL) {
        if (afterSeparator) continue;
        afterSeparator = true;
      } else {
        afterSeparator = false;
      }
      row = delta[row + symbol]!;
      if (row < 0) {
        row = ~row;
        const state = row / A;
        if ((outputCategories[state]! & mask) !== 0) {
          const entry = this.firstBlocking(state, actions, i < hostLength);
          if (entry >= 0) return entry;
        }
      }
    }
    return -1;
  }

  /** The first entry of a blocking category ending at `state` or on its failure chain. */
  private firstBlocking(state: number, actions: Uint8Array, inHost: boolean): number {
    for (let out = this.firstOutput[state]!; out >= 0; out = this.nextOutput[out]!) {
      for (let e = this.entryAt[out]!; e >= 0; e = this.entryNext[e]!) {
        if (actions[this.entryCategory[e]!] === CATEGORY_BLOCKS && (inHost || this.entryHostOnly[e] === 0)) return e;
      }
    }
    return -1;
  }

  /** First keyword of a blocking category found in page text; -1 if none. */
  matchText(text: string, actions: Uint8Array): number {
    const mask = this.blockingMask(actions);
    if (mask === 0) return -1;
    const folded = this.folded;
    folded.reset();
    let state = 0;
    let scanned = 0;
    // The last folded position may still receive a combining mark from the next
    // slice, so each slice is scanned only up to its second-to-last position.
    for (let start = 0; start < text.length; start += TEXT_SLICE) {
      folded.appendText(text, start, Math.min(text.length, start + TEXT_SLICE));
      const upTo = folded.length - 1;
      if (upTo > scanned) {
        const result = this.scan(state, scanned, upTo, actions, mask);
        if (result.entry >= 0) return result.entry;
        state = result.state;
        scanned = upTo;
      }
      const dropped = folded.keepTail(this.maxPatternLength + 1);
      scanned -= dropped;
    }
    folded.pushSeparator();
    return this.scan(state, scanned, folded.length, actions, mask).entry;
  }

  /** Bits (see categoryBit) of the categories with keywords that `actions` blocks. */
  private blockingMask(actions: Uint8Array): number {
    const used = this.categoriesUsed;
    let mask = 0;
    for (let i = 0; i < used.length; i++) if (actions[used[i]!] === CATEGORY_BLOCKS) mask |= categoryBit(used[i]!);
    return mask;
  }

  private readonly scanResult = { entry: -1, state: 0 };

  /** Runs the automaton over folded positions [from, to) starting in `state`. */
  private scan(state: number, from: number, to: number, actions: Uint8Array, mask: number): { entry: number; state: number } {
    const base = this.folded.base;
    const symbolOf = this.symbolOf;
    const delta = this.delta;
    const A = this.alphabetSize;
    const outputCategories = this.outputCategories;
    const result = this.scanResult;
    let row = state * A;
    for (let p = from; p < to; p++) {
      row = delta[row + symbolOf[base[p]!]!]!;
      if (row < 0) {
        row = ~row;
        const entry = (outputCategories[row / A]! & mask) === 0 ? -1 : this.firstVerified(row / A, p, actions);
        if (entry >= 0) {
          result.entry = entry;
          result.state = row / A;
          return result;
        }
      }
    }
    result.entry = -1;
    result.state = row / A;
    return result;
  }

  /**
   * Runs the automaton over `text` positions [from, to) from `state` (0 at the start
   * of a text, else what the previous call returned: a number of this set's own) and calls `found` with every entry that ends there and passes the
   * diacritic rule, whatever its category: the phrase scorer (phrases.ts) weighs and
   * sums them itself. Returns the state to resume from on the next positions.
   */
  scanAll(text: FoldedText, state: number, from: number, to: number, found: (entry: number) => void): number {
    const compact = this.compact;
    if (compact === null) return this.scanAllDense(text, state, from, to, found);
    const base = text.base;
    const symbolOf = this.symbolOf;
    const table = compact.table;
    const outputsFrom = compact.outputsFrom;
    const A = this.alphabetSize;
    let row = state * A;
    for (let p = from; p < to; p++) {
      row = table[row + symbolOf[base[p]!]!]!;
      if (row >= outputsFrom) this.reportAt(compact.original[row / A]!, p, text.marks, found);
    }
    return row / A;
  }

  /** Calls `found` with every page-text entry ending at `state` (or on its failure chain) that verifies at `end`. */
  private reportAt(state: number, end: number, marks: Int32Array, found: (entry: number) => void): void {
    for (let out = this.firstOutput[state]!; out >= 0; out = this.nextOutput[out]!) {
      for (let e = this.entryAt[out]!; e >= 0; e = this.entryNext[e]!) {
        if (this.entryHostOnly[e] === 0 && this.verify(e, end, marks)) found(e);
      }
    }
  }

  /** scanAll over the dense table, for automata too large for the compact one. */
  private scanAllDense(text: FoldedText, state: number, from: number, to: number, found: (entry: number) => void): number {
    const base = text.base;
    const symbolOf = this.symbolOf;
    const delta = this.delta;
    const A = this.alphabetSize;
    let row = state * A;
    for (let p = from; p < to; p++) {
      row = delta[row + symbolOf[base[p]!]!]!;
      if (row < 0) {
        row = ~row;
        this.reportAt(row / A, p, text.marks, found);
      }
    }
    return row / A;
  }

  /** The first blocking entry ending at `state` (or on its failure chain) that verifies. */
  private firstVerified(state: number, end: number, actions: Uint8Array): number {
    for (let out = this.firstOutput[state]!; out >= 0; out = this.nextOutput[out]!) {
      for (let e = this.entryAt[out]!; e >= 0; e = this.entryNext[e]!) {
        if (
          actions[this.entryCategory[e]!] === CATEGORY_BLOCKS &&
          (end < this.hostEnd || this.entryHostOnly[e] === 0) &&
          this.verify(e, end, this.folded.marks)
        )
          return e;
      }
    }
    return -1;
  }

  /**
   * The diacritic rule for a match of entry `e` ending at folded position `end`:
   * every word of the text in the match either has no diacritics, or has the
   * keyword word's diacritics (modifiers letter by letter, tones per word).
   */
  private verify(e: number, end: number, textMarks: Int32Array): boolean {
    const patternBase = this.patternBase;
    const patternMarks = this.patternMarks;
    const offset = this.entryOffset[e]!;
    const length = this.entryLength[e]!;
    const start = end - length + 1;
    let k = 0;
    while (k < length) {
      if (patternBase[offset + k] === SEPARATOR) {
        k++;
        continue;
      }
      let plain = true;
      let sameModifiers = true;
      let textTones = 0;
      let keywordTones = 0;
      for (; k < length && patternBase[offset + k] !== SEPARATOR; k++) {
        const tm = textMarks[start + k]!;
        const km = patternMarks[offset + k]!;
        if (tm !== 0) plain = false;
        if ((tm & ~TONE_MARKS) !== (km & ~TONE_MARKS)) sameModifiers = false;
        textTones |= tm & TONE_MARKS;
        keywordTones |= km & TONE_MARKS;
      }
      if (!plain && !(sameModifiers && textTones === keywordTones)) return false;
    }
    return true;
  }
}
