// The page-text scan of content inspection (docs/contract.md §8), compiled to WebAssembly
// with AssemblyScript (`npm run build`). The host, src/content/page-scan.ts, owns the memory
// layout: it writes the tables once per phrase set, keeps in one slot (544+ bytes) the scan
// state of the page whose turn it is, and writes per chunk the page's UTF-8 bytes and the
// ranges of them that are text.
//
// This does in one pass over UTF-8 bytes what src/policy/text.ts (fold) and
// src/policy/keywords.ts (scanAll, reportAt, verify) do over a decoded string; the two
// must give the same phrases for the same text, and test/content-page-scan.test.ts checks
// that they do. Why a second implementation: decoding to a string, folding it into typed
// arrays and running the automaton over those took three passes and most of a page's
// inspection time; here a byte is read once and no string is made.
//
// Memory is the host's: every pointer below is an offset it passed in. Nothing allocates.
//
// Why the decoder in scan branches on the byte, measured (the "scan" stage of
// bench/content.ts, 2.5 MB of Vietnamese news text; least CPU time of 6 rounds, variants
// run in turn on the shared 2-core box, node 20; ns per byte, lower is better):
//   this kernel                                                          3.6-3.9
//   the same text stripped to ASCII (1.9 MB)                             2.5-2.7 a character
//   no decoding at all (every byte a character; not a fix, a bound)      2.3-2.4
//   branch-free decode (length from the lead byte, three forms, select)  4.3-4.7
//   one step per byte, non-final bytes leave the row as it is            6.9-8.2
//   8-byte blocks, character starts as a bit mask (ctz), same decode     6.3-6.5
//   2- and 3-byte forms without a branch between them                    no difference
//   marks in the code-unit entry (one u64 load a character)              no difference
//   marks ring written only for marked letters (tagged entries)          3-5 % slower
//   ASCII path with no mark check or ring store                          no difference
//   (bounds) no automaton table load: no difference; no marks ring store: 4-9 % faster
//   -O3 with --converge or --shrinkLevel 0                               the same binary
// A Vietnamese character beyond ASCII costs ~10 ns more than an ASCII one: the branch
// predictor misses where the text switches between 1-, 2- and 3-byte forms (every few
// letters). Every branch-free form tried is slower: where the next character starts
// then waits for this one's bytes (a load and a few operations a character, in a
// chain), or the per-byte and per-block work costs more than the misses save, the way
// V8 compiles it. What is left to try: a byte-level automaton (the UTF-8 decode folded
// into the table, one load a byte and no branch), a larger change of the host's tables.
// Not built, measured first: skipping the rest of a word once the automaton is in a row
// every letter loops on (for the shipped phrases only the root: every pattern opens
// with a separator) would pass over 12.3 % of the text's bytes, 13.5 % of its characters
// and 7.8 % of its non-ASCII ones (the bench's 2.5 MB of extracted text): a third of the
// words are a prefix of some phrase word to their end, and most others leave the phrase
// words only at their second or third letter, so the costly characters are mostly read
// before the row goes dead. At ~2.5 ns an ASCII character and ~12.5 ns another (above),
// that is at most 11 % of this kernel's time if skipping cost nothing; the skip still
// reads every lead byte, and every letter step would test the row.
//
// Automaton rows are u16 while states × alphabet fits 16 bits, else u32 (setTables): a
// larger list (Debian's e2guardian lists converted, 5,889 phrases, with the shipped
// ones: 43,200 states × 73 symbols, 12.6 MB of rows) used to fall back to the string
// path. The scan loop is compiled once per width and chosen per call. Measured
// (bench/content.ts, least CPU of 7 rounds, 3 runs each, both builds in the same rounds,
// load 2-3; MB of page per CPU-second, higher is better):
//   shipped phrases, this build against the one before (both u16)     305-312 / 310-316
//   the same with Debian's e2guardian lists (bench/e2guardian-rules.ts),
//     u32 rows against the string path the build before took          252-269 / 115-142
//     (gzip pages 181-184 / 64-73, br 181-183 / 64-71)
//   shipped phrases, u16 against forced u32 rows, each first in turn  308-310 / 308-312
//     (and run second in its rounds)                                  317-319 / 312-315
// bench:proxy's inspection phase (--duration 2 --reps 1, three runs, load 2-10), CPU µs
// a 100 KB page, shipped phrases / with e2guardian's: before 835/1381, 487/780, 602/855;
// now 878/852, 568/441, 477/443. u32 rows for the shipped list cost 0-2 % in the
// bench, where the table stays in cache; u16 is kept where it fits because the string
// path builds that table anyway (a u32 copy would be another 234 KB) and, in a proxy
// whose other work evicts the rows, half the bytes is half the misses. A large list
// still costs more than the shipped one (252-269 against 305-312 above): more phrases
// found and verified, and rows spread over 12.6 MB.

// Per BMP code unit, one u32 in `codeUnits`: the automaton symbol of its folded base in
// bits 0-15, its kind in bits 16-17; `codeUnitMarks` holds its diacritics (0 for most).
const KIND_SHIFT = 16;
const KIND_SEPARATOR: u32 = 1;
const KIND_MARK: u32 = 2;
const SEPARATOR_SYMBOL: i32 = 1;
/** Base value of a separator in the pattern pool (text.ts SEPARATOR). */
const SEPARATOR_BASE: u16 = 0x20;
/** Tone marks, compared per word (text.ts TONE_MARKS). */
const TONE_MARKS: i32 = (1 << 0x00) | (1 << 0x01) | (1 << 0x03) | (1 << 0x09) | (1 << 28);
/** A replacement character: what a malformed or astral sequence folds to (a separator). */
const REPLACEMENT: u32 = 0xfffd;

// A slot: the state of one page's scan, carried across chunks.
const SLOT_ROW = 0; // automaton row (state × alphabet), in the compact numbering
const SLOT_POSITIONS = 4; // folded positions so far (position 0 is the opening separator)
const SLOT_AFTER_SEPARATOR = 8; // 1 when the last position is a separator
const SLOT_PENDING = 12; // an output row reached at the last position, verified once the next arrives; -1 if none
const SLOT_RING = 32; // marks of the last RING positions, i32 each
const RING = 128; // > the longest pattern (100 + 2 separators)
const SLOT_SEEN: usize = SLOT_RING + RING * 4; // one bit per entry: reported already

let codeUnits: usize = 0;
let codeUnitMarks: usize = 0;
let table: usize = 0; // rows premultiplied by the alphabet size: u16 while they fit, else u32
let wideRows = false;
let alphabet: i32 = 0;
let outputsFrom: i32 = 0;
let originalState: usize = 0; // i32 per compact state: the dense state number
let firstOutput: usize = 0;
let nextOutput: usize = 0;
let entryAt: usize = 0;
let entryNext: usize = 0;
let entryHostOnly: usize = 0; // u8
let entryOffset: usize = 0;
let entryLength: usize = 0;
let patternBase: usize = 0; // u16
let patternMarks: usize = 0; // i32

/**
 * The tables, written by the host. `rows` is KeywordSet's CompactRows table with one
 * change: a state reached by a separator loops on a separator, so a run of them steps
 * the automaton once, as the folded text (one separator per run) would. Its cells are
 * u16 while states × alphabet fits 16 bits, else u32 (`rowBytes` 2 or 4).
 */
export function setTables(
  units: usize,
  unitMarks: usize,
  rows: usize,
  alphabetSize: i32,
  firstOutputRow: i32,
  rowBytes: i32,
  original: usize,
  first: usize,
  next: usize,
  at: usize,
  entryNextAt: usize,
  hostOnly: usize,
  offsets: usize,
  lengths: usize,
  bases: usize,
  marks: usize,
): void {
  codeUnits = units;
  codeUnitMarks = unitMarks;
  table = rows;
  alphabet = alphabetSize;
  outputsFrom = firstOutputRow;
  wideRows = rowBytes == 4;
  originalState = original;
  firstOutput = first;
  nextOutput = next;
  entryAt = at;
  entryNext = entryNextAt;
  entryHostOnly = hostOnly;
  entryOffset = offsets;
  entryLength = lengths;
  patternBase = bases;
  patternMarks = marks;
}

/** The row after `row` on `symbol`, in the table's width; for the steps outside the scan loop. */
function step(row: i32, symbol: i32): i32 {
  return wideRows ? nextRow<u32>(table, row + symbol) : nextRow<u16>(table, row + symbol);
}

@inline
function nextRow<T>(rows: usize, cell: i32): i32 {
  return <i32>load<T>(rows + (<usize>cell << alignof<T>()));
}

/** A fresh slot: the text opens with a separator (FoldedText.reset), already through the automaton. */
export function resetSlot(slot: usize, seenBytes: i32): void {
  memory.fill(slot, 0, SLOT_SEEN + <usize>seenBytes);
  store<i32>(slot + SLOT_ROW, step(0, SEPARATOR_SYMBOL));
  store<i32>(slot + SLOT_POSITIONS, 1);
  store<i32>(slot + SLOT_AFTER_SEPARATOR, 1);
  store<i32>(slot + SLOT_PENDING, -1);
}

/**
 * keywords.ts verify: every word of the text in the match has no diacritics, or the
 * keyword word's (modifiers letter by letter, tones per word).
 */
function verify(e: i32, end: i32, ring: usize): bool {
  const offset = load<i32>(entryOffset + (<usize>e << 2));
  const length = load<i32>(entryLength + (<usize>e << 2));
  const start = end - length + 1;
  let k = 0;
  while (k < length) {
    if (load<u16>(patternBase + (<usize>(offset + k) << 1)) == SEPARATOR_BASE) {
      k++;
      continue;
    }
    let plain = true;
    let sameModifiers = true;
    let textTones = 0;
    let keywordTones = 0;
    for (; k < length && load<u16>(patternBase + (<usize>(offset + k) << 1)) != SEPARATOR_BASE; k++) {
      const tm = load<i32>(ring + (<usize>((start + k) & (RING - 1)) << 2));
      const km = load<i32>(patternMarks + (<usize>(offset + k) << 2));
      if (tm != 0) plain = false;
      if ((tm & ~TONE_MARKS) != (km & ~TONE_MARKS)) sameModifiers = false;
      textTones |= tm & TONE_MARKS;
      keywordTones |= km & TONE_MARKS;
    }
    if (!plain && !(sameModifiers && textTones == keywordTones)) return false;
  }
  return true;
}

/** keywords.ts reportAt: writes each page-text entry ending at `row` that verifies and was not reported before. */
function report(slot: usize, row: i32, end: i32, found: usize, count: i32): i32 {
  const state = load<i32>(originalState + (<usize>(row / alphabet) << 2));
  const ring = slot + SLOT_RING;
  for (let out = load<i32>(firstOutput + (<usize>state << 2)); out >= 0; out = load<i32>(nextOutput + (<usize>out << 2))) {
    for (let e = load<i32>(entryAt + (<usize>out << 2)); e >= 0; e = load<i32>(entryNext + (<usize>e << 2))) {
      const seen = slot + SLOT_SEEN + (<usize>e >> 3);
      const bit: u8 = <u8>(1 << <u8>(e & 7));
      if ((load<u8>(seen) & bit) != 0 || load<u8>(entryHostOnly + <usize>e) != 0 || !verify(e, end, ring)) continue;
      store<u8>(seen, load<u8>(seen) | bit);
      store<i32>(found + (<usize>count << 2), e);
      count++;
    }
  }
  return count;
}

/**
 * Scans `count` ranges of text, pairs of (start, end) byte offsets at `ranges`; a pair
 * whose start is -1 is a break between words (a tag). Writes the entries found (each
 * once per slot) at `found` and returns how many. A range must not end inside a UTF-8
 * sequence unless the text is malformed there (the host carries a sequence cut by the
 * end of a chunk over to the next), and the byte after a range must not be a
 * continuation byte (the host writes a 0 after its last range): the decoder then needs
 * no bounds check, since a sequence stops at the first byte that does not continue it.
 */
export function scan(slot: usize, ranges: usize, count: i32, found: usize): i32 {
  // The width is chosen once a call, not per character: each loop is compiled for one.
  return wideRows ? scanRows<u32>(slot, ranges, count, found) : scanRows<u16>(slot, ranges, count, found);
}

function scanRows<T>(slot: usize, ranges: usize, count: i32, found: usize): i32 {
  let row = load<i32>(slot + SLOT_ROW);
  let n = load<i32>(slot + SLOT_POSITIONS);
  let afterSeparator: u32 = <u32>load<i32>(slot + SLOT_AFTER_SEPARATOR);
  let pending = load<i32>(slot + SLOT_PENDING);
  const ring = slot + SLOT_RING;
  // Globals copied to locals: V8 reads a global from the instance at every use.
  const units = codeUnits;
  const unitMarks = codeUnitMarks;
  const rows = table;
  const firstOutputRow = outputsFrom;
  let reported = 0;
  for (let r = 0; r < count; r++) {
    const start = load<i32>(ranges + (<usize>r << 3));
    if (start < 0) {
      if (afterSeparator != 0) continue;
      if (pending >= 0) {
        reported = report(slot, pending, n - 1, found, reported);
        pending = -1;
      }
      store<i32>(ring + (<usize>(n & (RING - 1)) << 2), 0);
      row = nextRow<T>(rows, row + SEPARATOR_SYMBOL);
      if (row >= firstOutputRow) pending = row;
      n++;
      afterSeparator = 1;
      continue;
    }
    const end = <usize>load<i32>(ranges + (<usize>r << 3) + 4);
    let i = <usize>start;
    while (i < end) {
      const b0 = <u32>load<u8>(i);
      let cu: u32;
      if (b0 < 0x80) {
        cu = b0;
        i += 1;
      } else if (b0 >= 0xc2 && b0 < 0xe0) {
        const b1 = <u32>load<u8>(i + 1);
        if ((b1 & 0xc0) == 0x80) {
          cu = ((b0 & 0x1f) << 6) | (b1 & 0x3f);
          i += 2;
        } else {
          cu = REPLACEMENT;
          i += 1;
        }
      } else if (b0 >= 0xe0 && b0 < 0xf0) {
        const b1 = <u32>load<u8>(i + 1);
        // WHATWG UTF-8: E0 needs A0–BF next (no overlong forms), ED 80–9F (no surrogates).
        const low: u32 = b0 == 0xe0 ? 0xa0 : 0x80;
        const high: u32 = b0 == 0xed ? 0x9f : 0xbf;
        if (b1 < low || b1 > high) {
          cu = REPLACEMENT;
          i += 1;
        } else {
          const b2 = <u32>load<u8>(i + 2);
          if ((b2 & 0xc0) == 0x80) {
            cu = ((b0 & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f);
            i += 3;
          } else {
            cu = REPLACEMENT;
            i += 2;
          }
        }
      } else if (b0 >= 0xf0 && b0 < 0xf5) {
        // Astral code points (emoji mostly) fold to separators, as their surrogates do in text.ts.
        const b1 = <u32>load<u8>(i + 1);
        const low: u32 = b0 == 0xf0 ? 0x90 : 0x80;
        const high: u32 = b0 == 0xf4 ? 0x8f : 0xbf;
        cu = REPLACEMENT;
        if (b1 < low || b1 > high) i += 1;
        else {
          const b2 = <u32>load<u8>(i + 2);
          if ((b2 & 0xc0) != 0x80) i += 2;
          else {
            const b3 = <u32>load<u8>(i + 3);
            i += (b3 & 0xc0) == 0x80 ? 4 : 3;
          }
        }
      } else {
        cu = REPLACEMENT;
        i += 1;
      }
      const unit = load<u32>(units + (<usize>cu << 2));
      const kind = (unit >>> KIND_SHIFT) & 3;
      if (kind >= KIND_MARK) {
        // A combining mark belongs to the letter before it (NFD text); ignored characters vanish.
        if (kind == KIND_MARK && afterSeparator == 0) {
          const at = ring + (<usize>((n - 1) & (RING - 1)) << 2);
          store<i32>(at, load<i32>(at) | load<i32>(unitMarks + (<usize>cu << 2)));
        }
        continue;
      }
      // A separator after a separator is no new position (text.ts collapses runs): the
      // table loops on it (see setTables), and the position count does not move.
      const separator = kind & KIND_SEPARATOR;
      if (pending >= 0 && (separator & afterSeparator) == 0) {
        reported = report(slot, pending, n - 1, found, reported);
        pending = -1;
      }
      store<i32>(ring + (<usize>(n & (RING - 1)) << 2), load<i32>(unitMarks + (<usize>cu << 2)));
      row = nextRow<T>(rows, row + <i32>(unit & 0xffff));
      n += 1 - <i32>(separator & afterSeparator);
      afterSeparator = separator;
      if (row >= firstOutputRow) pending = row;
    }
  }
  store<i32>(slot + SLOT_ROW, row);
  store<i32>(slot + SLOT_POSITIONS, n);
  store<i32>(slot + SLOT_AFTER_SEPARATOR, <i32>afterSeparator);
  store<i32>(slot + SLOT_PENDING, pending);
  return reported;
}

/** The end of the text (PhraseScanner.finish): a closing separator, and the match that was waiting for it. */
export function finish(slot: usize, found: usize): i32 {
  let row = load<i32>(slot + SLOT_ROW);
  let n = load<i32>(slot + SLOT_POSITIONS);
  let pending = load<i32>(slot + SLOT_PENDING);
  const ring = slot + SLOT_RING;
  let reported = 0;
  if (load<i32>(slot + SLOT_AFTER_SEPARATOR) == 0) {
    if (pending >= 0) reported = report(slot, pending, n - 1, found, reported);
    store<i32>(ring + (<usize>(n & (RING - 1)) << 2), 0);
    row = step(row, SEPARATOR_SYMBOL);
    pending = row >= outputsFrom ? row : -1;
    n++;
  }
  if (pending >= 0) reported = report(slot, pending, n - 1, found, reported);
  store<i32>(slot + SLOT_ROW, row);
  store<i32>(slot + SLOT_POSITIONS, n);
  store<i32>(slot + SLOT_AFTER_SEPARATOR, 1);
  store<i32>(slot + SLOT_PENDING, -1);
  return reported;
}
