/**
 * Text folding for keyword matching (docs/contract.md §3).
 * Over ~400 lines on purpose: the per-code-unit tables and the one folding state machine
 * that keywords, phrases and content inspection all read; split, the tables would have
 * one reader in another file and the hot loop would lose its local view of them.
 *
 * Text is turned into a stream of "positions", one per letter or digit, plus single
 * separator positions standing for every run of spaces and punctuation. Each
 * position carries two things:
 *   - `base`: the letter case-folded with all diacritics removed (`Ờ` → `o`, `đ` → `d`);
 *   - `marks`: a bit set of the diacritics it carried (horn, grave, ..., stroke).
 * The keyword automaton runs over `base`; `marks` is only read to verify candidates
 * against the diacritic rule. NFC and NFD input give the same stream because a
 * combining mark ORs its bit into the position before it. Zero-width characters and
 * the soft hyphen are dropped, so `c\u200Bờ` folds like `cờ`.
 *
 * Per-code-unit facts are cached in module-level tables, filled eagerly for Latin
 * (where Vietnamese lives) and lazily for the rest of the BMP. Characters outside the
 * BMP (emoji, rare CJK) fold to separators.
 */

/** Base value written for a separator position. Never the base of a letter. */
export const SEPARATOR = 0x20;

/** Character classes, one bit each in `charInfo` (bits 16–19). */
const CLASS_WORD = 1 << 16;
const CLASS_SEPARATOR = 1 << 17;
const CLASS_MARK = 1 << 18;
const CLASS_IGNORED = 1 << 19;

/** Bit for `đ`/`Đ`, which Unicode does not decompose but the keyword rules fold to `d` (docs/contract.md §3). */
export const MARK_STROKE = 1 << 30;
const MARK_OTHER = 1 << 31;

/**
 * The five Vietnamese tone marks: grave, acute, tilde, hook above, dot below.
 * Old and new orthography place the tone on different vowels of one syllable
 * (`hoà`/`hòa`, `thuý`/`thúy`); comparing tones per word instead of per letter makes
 * both spellings the same word, which is what a reader sees.
 */
export const TONE_MARKS = (1 << 0x00) | (1 << 0x01) | (1 << 0x03) | (1 << 0x09) | (1 << 28);

/**
 * Per code unit: base in bits 0–15, one class bit, INFO_HAS_MARKS when the
 * character carries marks (then in `charMarks`). 0 means not computed yet.
 */
const charInfo = new Int32Array(0x10000);
const charMarks = new Int32Array(0x10000);
const INFO_HAS_MARKS = 1 << 20;

const WORD_CHAR = /^[\p{L}\p{N}]$/u;
const MARK_CHAR = /^\p{M}$/u;

function markBit(cp: number): number {
  if (cp >= 0x300 && cp <= 0x31b) return 1 << (cp - 0x300);
  if (cp === 0x323) return 1 << 28; // dot below (nặng)
  if (cp === 0x327) return 1 << 29; // cedilla
  return MARK_OTHER;
}

function isIgnorable(cu: number): boolean {
  return (
    cu === 0x00ad || // soft hyphen
    cu === 0x180e ||
    (cu >= 0x200b && cu <= 0x200f) || // zero-width space/joiners, direction marks
    (cu >= 0x2060 && cu <= 0x2064) ||
    cu === 0xfeff
  );
}

function computeClass(cu: number): void {
  let cls = CLASS_SEPARATOR;
  let base = SEPARATOR;
  let marks = 0;
  if (cu >= 0xd800 && cu <= 0xdfff) {
    // Astral code points (emoji mostly) act as separators.
  } else if (isIgnorable(cu)) {
    cls = CLASS_IGNORED;
  } else if (cu === 0x110 || cu === 0x111) {
    cls = CLASS_WORD;
    base = 0x64; // d
    marks = MARK_STROKE;
  } else if (cu >= 0xff10 && cu <= 0xff5a && WORD_CHAR.test(String.fromCharCode(cu))) {
    // Full-width ASCII letters and digits, as some users type them.
    cls = CLASS_WORD;
    base = String.fromCharCode(cu - 0xfee0)
      .toLowerCase()
      .charCodeAt(0);
  } else {
    const ch = String.fromCharCode(cu);
    if (MARK_CHAR.test(ch)) {
      cls = CLASS_MARK;
      marks = markBit(cu);
    } else if (WORD_CHAR.test(ch)) {
      cls = CLASS_WORD;
      let lower = ch.toLowerCase();
      if (lower.length !== 1) lower = ch; // e.g. İ: keep the letter, fold its marks below
      const decomposed = lower.normalize('NFD');
      base = decomposed.charCodeAt(0);
      for (let i = 1; i < decomposed.length; i++) marks |= markBit(decomposed.charCodeAt(i));
      if (base >= 0xd800 && base <= 0xdfff) {
        base = cu;
        marks = 0;
      }
    }
  }
  charMarks[cu] = marks;
  charInfo[cu] = base | cls | (marks !== 0 ? INFO_HAS_MARKS : 0);
}

for (let cu = 0; cu < 0x250; cu++) computeClass(cu);
for (let cu = 0x300; cu < 0x370; cu++) computeClass(cu);
for (let cu = 0x1e00; cu < 0x1f00; cu++) computeClass(cu);

/** Code points of one punycode label; folding is synchronous, so one buffer serves every FoldedText. */
const PUNYCODE_SCRATCH = new Uint32Array(256);

/**
 * A growable buffer of folded positions. One instance is reused for every request,
 * so the hot path allocates only when a longer input than ever before arrives.
 */
export class FoldedText {
  base: Uint16Array;
  marks: Int32Array;
  length = 0;

  constructor(initialCapacity = 512) {
    this.base = new Uint16Array(initialCapacity);
    this.marks = new Int32Array(initialCapacity);
  }

  /** Empties the buffer and opens it with a separator, the left edge of the text. */
  reset(): void {
    this.base[0] = SEPARATOR;
    this.marks[0] = 0;
    this.length = 1;
  }

  /** Empties the buffer without the leading separator (used to fold keywords). */
  clear(): void {
    this.length = 0;
  }

  /** Makes room for `extra` more positions. */
  reserve(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.base.length) return;
    let capacity = this.base.length * 2;
    while (capacity < needed) capacity *= 2;
    const base = new Uint16Array(capacity);
    base.set(this.base.subarray(0, this.length));
    const marks = new Int32Array(capacity);
    marks.set(this.marks.subarray(0, this.length));
    this.base = base;
    this.marks = marks;
  }

  /** Drops all but the last `keep` positions; returns how many were dropped. */
  keepTail(keep: number): number {
    const drop = this.length - keep;
    if (drop <= 0) return 0;
    this.base.copyWithin(0, drop, this.length);
    this.marks.copyWithin(0, drop, this.length);
    this.length = keep;
    return drop;
  }

  pushSeparator(): void {
    const n = this.length;
    if (n > 0 && this.base[n - 1] === SEPARATOR) return;
    this.base[n] = SEPARATOR;
    this.marks[n] = 0;
    this.length = n + 1;
  }

  /** Folds one UTF-16 code unit. Capacity must have been reserved. */
  pushCodeUnit(cu: number): void {
    this.length = foldCodeUnit(this.base, this.marks, this.length, cu);
  }

  pushCodePoint(cp: number): void {
    if (cp < 0x10000) this.pushCodeUnit(cp);
    else this.pushSeparator();
  }

  /** Folds `text[start, end)` as plain text. */
  appendText(text: string, start = 0, end = text.length): void {
    this.reserve(end - start + 2);
    this.length = foldRange(this.base, this.marks, this.length, text, start, end);
  }

  /**
   * Folds a canonical (lower-case) host. Punycode labels (`xn--`) are decoded to
   * Unicode so a keyword written in Vietnamese can match an internationalised name.
   */
  appendHost(host: string): void {
    this.reserve(host.length + 2);
    if (host.indexOf('xn--') < 0) {
      // The common case: dots are separators like any punctuation.
      this.length = foldRange(this.base, this.marks, this.length, host, 0, host.length);
      return;
    }
    let labelStart = 0;
    const end = host.length;
    for (let i = 0; i <= end; i++) {
      if (i < end && host.charCodeAt(i) !== 0x2e) continue;
      if (
        i - labelStart > 4 &&
        (host.charCodeAt(labelStart) | 0x20) === 0x78 && // x
        (host.charCodeAt(labelStart + 1) | 0x20) === 0x6e && // n
        host.charCodeAt(labelStart + 2) === 0x2d &&
        host.charCodeAt(labelStart + 3) === 0x2d
      ) {
        const out = PUNYCODE_SCRATCH;
        const count = decodePunycode(host, labelStart + 4, i, out);
        if (count >= 0) {
          for (let k = 0; k < count; k++) this.pushCodePoint(out[k]!);
        } else {
          this.length = foldRange(this.base, this.marks, this.length, host, labelStart, i);
        }
      } else {
        this.length = foldRange(this.base, this.marks, this.length, host, labelStart, i);
      }
      if (i < end) this.pushSeparator();
      labelStart = i + 1;
    }
  }

  /**
   * Folds a URL path and query: `%XX` sequences are decoded as UTF-8 (an invalid
   * sequence becomes a separator). `+` needs no special case: it is punctuation,
   * hence a separator, in the path and the query alike.
   */
  appendUrlPart(url: string): void {
    const end = url.length;
    this.reserve(end + 2);
    const base = this.base;
    const marks = this.marks;
    let n = this.length;
    let i = 0;
    while (i < end) {
      const c = url.charCodeAt(i);
      if (c !== 0x25) {
        n = foldCodeUnit(base, marks, n, c);
        i++;
        continue;
      }
      const lead = percentByte(url, i, end);
      if (lead < 0) {
        n = foldCodeUnit(base, marks, n, c); // a stray `%` is punctuation
        i++;
        continue;
      }
      i += 3;
      if (lead < 0x80) {
        n = foldCodeUnit(base, marks, n, lead);
        continue;
      }
      let need: number;
      let cp: number;
      if (lead >= 0xc2 && lead <= 0xdf) {
        need = 1;
        cp = lead & 0x1f;
      } else if (lead >= 0xe0 && lead <= 0xef) {
        need = 2;
        cp = lead & 0x0f;
      } else if (lead >= 0xf0 && lead <= 0xf4) {
        need = 3;
        cp = lead & 0x07;
      } else {
        n = foldCodeUnit(base, marks, n, SEPARATOR);
        continue;
      }
      let ok = true;
      for (let k = 0; k < need; k++) {
        const b = percentByte(url, i, end);
        if (b < 0x80 || b > 0xbf) {
          ok = false;
          break;
        }
        cp = (cp << 6) | (b & 0x3f);
        i += 3;
      }
      const overlong = (need === 2 && cp < 0x800) || (need === 3 && cp < 0x10000);
      // Invalid UTF-8, surrogates and astral code points (emoji) fold to a separator.
      const valid = ok && !overlong && cp < 0x10000 && (cp < 0xd800 || cp > 0xdfff);
      n = foldCodeUnit(base, marks, n, valid ? cp : SEPARATOR);
    }
    this.length = n;
  }
}

/**
 * Folds one code unit into `base`/`marks` at `n`; returns the new length. Kept a
 * free function over locals so the per-character loop does no property writes.
 */
function foldCodeUnit(base: Uint16Array, marks: Int32Array, n: number, cu: number): number {
  let info = charInfo[cu]!;
  if (info === 0) {
    computeClass(cu);
    info = charInfo[cu]!;
  }
  if ((info & CLASS_WORD) !== 0) {
    base[n] = info & 0xffff;
    marks[n] = (info & INFO_HAS_MARKS) === 0 ? 0 : charMarks[cu]!;
    return n + 1;
  }
  if ((info & CLASS_SEPARATOR) !== 0) {
    if (n > 0 && base[n - 1] === SEPARATOR) return n;
    base[n] = SEPARATOR;
    marks[n] = 0;
    return n + 1;
  }
  // A combining mark belongs to the letter before it (NFD input).
  if ((info & CLASS_MARK) !== 0 && n > 0 && base[n - 1] !== SEPARATOR) marks[n - 1] = marks[n - 1]! | charMarks[cu]!;
  // CLASS_IGNORED: zero-width characters vanish.
  return n;
}

/**
 * foldCodeUnit over `s[start, end)`, written out so the loop keeps its state in locals.
 * Letters and separators, nearly every code unit, take one path without branches:
 * prose alternates them every few characters, which a branch predictor cannot learn.
 * The slot at `n` is written even when a separator run does not advance it (it lies
 * past the length, in reserved room).
 */
function foldRange(base: Uint16Array, marks: Int32Array, n: number, s: string, start: number, end: number): number {
  let afterSeparator = n > 0 && base[n - 1] === SEPARATOR ? 1 : 0;
  for (let i = start; i < end; i++) {
    const cu = s.charCodeAt(i);
    let info = charInfo[cu]!;
    if ((info & (CLASS_WORD | CLASS_SEPARATOR)) === 0) {
      if (info === 0) {
        computeClass(cu);
        info = charInfo[cu]!;
        if ((info & (CLASS_WORD | CLASS_SEPARATOR)) !== 0) {
          i--; // computed now: take the common path
          continue;
        }
      }
      // A combining mark belongs to the letter before it (NFD input); ignored characters vanish.
      if ((info & CLASS_MARK) !== 0 && n > 0 && afterSeparator === 0) marks[n - 1] = marks[n - 1]! | charMarks[cu]!;
      continue;
    }
    const separator = (info >>> 17) & 1;
    base[n] = info; // the low 16 bits: the base
    marks[n] = charMarks[cu]!; // 0 for separators and unmarked letters
    n += 1 - (separator & afterSeparator);
    afterSeparator = separator;
  }
  return n;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** The byte of a `%XX` escape at `i`, or -1 when there is none. */
function percentByte(s: string, i: number, end: number): number {
  if (i + 2 >= end || s.charCodeAt(i) !== 0x25) return -1;
  const hi = hexValue(s.charCodeAt(i + 1));
  const lo = hexValue(s.charCodeAt(i + 2));
  if (hi < 0 || lo < 0) return -1;
  return (hi << 4) | lo;
}

function punycodeDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 22; // 0-9 → 26-35
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x7a) return l - 0x61; // a-z → 0-25
  return 36;
}

function punycodeAdapt(delta: number, numPoints: number, firstTime: boolean): number {
  delta = firstTime ? Math.floor(delta / 700) : delta >> 1;
  delta += Math.floor(delta / numPoints);
  let k = 0;
  while (delta > 455) {
    delta = Math.floor(delta / 35);
    k += 36;
  }
  return k + Math.floor((36 * delta) / (delta + 38));
}

/**
 * RFC 3492 decoding of `s[start, end)` (the part after `xn--`) into `out`.
 * Returns the number of code points, or -1 if the label is not valid punycode.
 */
export function decodePunycode(s: string, start: number, end: number, out: Uint32Array): number {
  let basicEnd = start;
  for (let j = end - 1; j >= start; j--) {
    if (s.charCodeAt(j) === 0x2d) {
      basicEnd = j;
      break;
    }
  }
  let length = 0;
  for (let j = start; j < basicEnd; j++) {
    const c = s.charCodeAt(j);
    if (c >= 0x80 || length >= out.length) return -1;
    out[length++] = c;
  }
  let n = 128;
  let i = 0;
  let bias = 72;
  let pos = basicEnd > start ? basicEnd + 1 : start;
  while (pos < end) {
    const oldI = i;
    let w = 1;
    for (let k = 36; ; k += 36) {
      if (pos >= end) return -1;
      const digit = punycodeDigit(s.charCodeAt(pos++));
      if (digit >= 36) return -1;
      i += digit * w;
      if (i > 0x10ffff * 64) return -1;
      const t = k <= bias ? 1 : k >= bias + 26 ? 26 : k - bias;
      if (digit < t) break;
      w *= 36 - t;
    }
    bias = punycodeAdapt(i - oldI, length + 1, oldI === 0);
    n += Math.floor(i / (length + 1));
    i %= length + 1;
    if (n > 0x10ffff || length >= out.length) return -1;
    out.copyWithin(i + 1, i, length);
    out[i] = n;
    length++;
    i++;
  }
  return length;
}

/** A phrase folded once at load time. */
export interface FoldedPhrase {
  /** Bases, single separators between words, no separator at either end. */
  readonly base: Uint16Array;
  readonly marks: Int32Array;
}

const phraseBuffer = new FoldedText(128);

/** Folds a phrase the way text is folded; separators are trimmed from both ends. */
export function foldPhrase(phrase: string): FoldedPhrase {
  phraseBuffer.clear();
  phraseBuffer.appendText(phrase);
  let start = 0;
  let end = phraseBuffer.length;
  if (start < end && phraseBuffer.base[start] === SEPARATOR) start++;
  if (end > start && phraseBuffer.base[end - 1] === SEPARATOR) end--;
  return {
    base: phraseBuffer.base.slice(start, end),
    marks: phraseBuffer.marks.slice(start, end),
  };
}

/** What folding does with each BMP code unit, as tables for a compiled scanner (content/page-scan.ts). */
export interface CodeUnitTables {
  /** CODE_UNIT_LETTER, CODE_UNIT_SEPARATOR, CODE_UNIT_MARK (belongs to the letter before) or CODE_UNIT_IGNORED (vanishes). */
  readonly kinds: Uint8Array;
  /** The folded base of a letter (SEPARATOR for separators). */
  readonly bases: Uint16Array;
  /** The diacritics a letter carries, or a combining mark adds, as `marks` bits (the module's own table: read only). */
  readonly marks: Int32Array;
}

export const CODE_UNIT_LETTER = 0;
export const CODE_UNIT_SEPARATOR = 1;
export const CODE_UNIT_MARK = 2;
export const CODE_UNIT_IGNORED = 3;

/**
 * The folding of every BMP code unit. The first call computes what was never met (about
 * 20 ms) into the module's own tables, which keep it; later calls only lay it out (~1 ms).
 */
export function codeUnitTables(): CodeUnitTables {
  const kinds = new Uint8Array(0x10000);
  const bases = new Uint16Array(0x10000);
  for (let cu = 0; cu < 0x10000; cu++) {
    if (charInfo[cu] === 0) computeClass(cu);
    const info = charInfo[cu]!;
    kinds[cu] =
      (info & CLASS_WORD) !== 0
        ? CODE_UNIT_LETTER
        : (info & CLASS_SEPARATOR) !== 0
          ? CODE_UNIT_SEPARATOR
          : (info & CLASS_MARK) !== 0
            ? CODE_UNIT_MARK
            : CODE_UNIT_IGNORED;
    bases[cu] = (info & CLASS_SEPARATOR) !== 0 ? SEPARATOR : info & 0xffff;
  }
  return { kinds, bases, marks: charMarks };
}

/** Whether a code unit starts with a separator when folded (used by lint checks). */
export function isSeparatorChar(cu: number): boolean {
  if (charInfo[cu] === 0) computeClass(cu);
  return (charInfo[cu]! & CLASS_SEPARATOR) !== 0;
}

/**
 * The folded base of one code unit: its base letter or digit, SEPARATOR for
 * punctuation and spaces, or -1 for a combining mark or an ignored character.
 */
export function foldedBaseOf(cu: number): number {
  if (charInfo[cu] === 0) computeClass(cu);
  const info = charInfo[cu]!;
  if ((info & CLASS_WORD) !== 0) return info & 0xffff;
  if ((info & CLASS_SEPARATOR) !== 0) return SEPARATOR;
  return -1;
}

/** The form shown for a rule: NFC, lower case, single spaces. */
export function displayForm(phrase: string): string {
  return phrase.normalize('NFC').toLowerCase().trim().replace(/\s+/gu, ' ');
}
