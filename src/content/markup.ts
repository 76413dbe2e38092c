/**
 * The readable text of an HTML page, extracted as it streams in: a small state
 * machine over characters (not a DOM), with its state carried across chunks, so a
 * tag, an entity or a word cut by a chunk boundary reads as if whole.
 *
 * Text between tags goes to the sink; every tag is a word break (a page puts words
 * in separate cells, not halves of one word in two tags). Script, style, comments
 * and the content of tags are not text. Character references (`&#7897;`, `&agrave;`,
 * which older Vietnamese pages use for every accented letter) are decoded. Besides
 * the text, it reads `<title>` and the `<meta name="rating">` adult labels.
 *
 * It also reads UTF-8 bytes given as a latin1 string (one character per byte), for
 * the compiled page scan (page-scan.ts): HTML syntax is ASCII, which no byte of a
 * multi-byte sequence is, so it finds the same tags at the same offsets. In that mode
 * an entity's value is handed over as UTF-8 in the same form, and the title is decoded.
 */
import { attributeValue } from './charset.js';

export interface TextSink {
  append(text: string, start: number, end: number): void;
  separate(): void;
}

const enum State {
  Text,
  TagOpen,
  TagName,
  InTag,
  InQuote,
  Comment,
  Declaration,
  Raw,
  Entity,
}

/** Labels that mark a page for adults only: the RTA label and the common `adult`/`mature`. */
const ADULT_RATINGS = ['rta-5042-1996-1400-1577-rta', 'adult', 'mature', 'restricted'];
const TITLE_LIMIT = 200;
/** Bytes of title kept in UTF-8 mode: enough for TITLE_LIMIT characters of any kind. */
const TITLE_BYTES_LIMIT = 4 * TITLE_LIMIT;
const TAG_TEXT_LIMIT = 1024;
const ENTITY_LIMIT = 12;

/**
 * Named references that stand for letters or spaces in Vietnamese and English pages;
 * any other name is read as a word break, which is what most of them are.
 */
const NAMED_ENTITIES: Readonly<Record<string, string>> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
  shy: '',
  agrave: 'à',
  aacute: 'á',
  acirc: 'â',
  atilde: 'ã',
  egrave: 'è',
  eacute: 'é',
  ecirc: 'ê',
  igrave: 'ì',
  iacute: 'í',
  ograve: 'ò',
  oacute: 'ó',
  ocirc: 'ô',
  otilde: 'õ',
  ugrave: 'ù',
  uacute: 'ú',
  yacute: 'ý',
  Agrave: 'À',
  Aacute: 'Á',
  Acirc: 'Â',
  Atilde: 'Ã',
  Egrave: 'È',
  Eacute: 'É',
  Ecirc: 'Ê',
  Igrave: 'Ì',
  Iacute: 'Í',
  Ograve: 'Ò',
  Oacute: 'Ó',
  Ocirc: 'Ô',
  Otilde: 'Õ',
  Ugrave: 'Ù',
  Uacute: 'Ú',
  Yacute: 'Ý',
};

/**
 * A tag name as a number, base 27 over its letters (a = 1), so that a tag costs no
 * string: only four names are acted on, none longer than NAME_LETTERS letters; any
 * longer name, or one with a digit or a dash, is NO_NAME.
 */
function nameCode(name: string): number {
  let code = 0;
  for (let i = 0; i < name.length; i++) code = code * 27 + (name.charCodeAt(i) - 0x60);
  return code;
}

const NAME_LETTERS = 6;
const NO_NAME = -1;
/** Codes of this value or more already hold NAME_LETTERS letters. */
const FULL_NAME = 27 ** (NAME_LETTERS - 1);
const META = nameCode('meta');
const SCRIPT = nameCode('script');
const STYLE = nameCode('style');
const TITLE = nameCode('title');

function isLetter(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
}

export class MarkupText {
  /** The page's title (first 200 characters), once its closing tag was read. */
  title: string | null = null;
  /** Whether a `<meta name="rating">` labelled the page for adults. */
  adultRating = false;

  private state = State.Text;
  /** The tag's name (nameCode), read so far. */
  private tagName = 0;
  private closing = false;
  /** Lower-cased text of a `<meta>` tag being read, for its attributes. */
  private tagText: string | null = null;
  private quote = 0;
  /** `</script` or `</style` while inside one; how much of it was matched so far. */
  private rawEnd = '';
  private rawMatched = 0;
  private dashes = 0;
  private entity = '';
  private inTitle = false;
  private titleText = '';

  private readonly titleLimit: number;

  /** `utf8Bytes`: the strings written are UTF-8 bytes as latin1 (see above). */
  constructor(
    private readonly sink: TextSink,
    private readonly utf8Bytes = false,
  ) {
    this.titleLimit = utf8Bytes ? TITLE_BYTES_LIMIT : TITLE_LIMIT;
  }

  write(s: string): void {
    const end = s.length;
    let i = 0;
    // Where the next `&` and the next `<` are, remembered: searching the rest of the
    // chunk again after every tag (for `&`) or every entity (for `<`) would cost the
    // chunk's length each time, and a page of entities without a tag would take time
    // growing with the square of its size.
    let amp = -1;
    let lt = -1;
    while (i < end) {
      switch (this.state) {
        case State.Text: {
          // The common case: jump to the next `<` or `&`, hand over the text before it.
          if (lt < i) {
            lt = s.indexOf('<', i);
            if (lt < 0) lt = end;
          }
          let next = lt;
          if (amp < i) {
            amp = s.indexOf('&', i);
            if (amp < 0) amp = end;
          }
          if (amp < next) next = amp;
          if (next > i) this.text(s, i, next);
          if (next === end) return;
          if (s.charCodeAt(next) === 0x3c) {
            const after = this.bareTag(s, next + 1, end);
            if (after >= 0) {
              i = after;
              break;
            }
            this.state = State.TagOpen;
          } else {
            this.state = State.Entity;
            this.entity = '';
          }
          i = next + 1;
          break;
        }
        case State.TagOpen: {
          const c = s.charCodeAt(i);
          this.closing = c === 0x2f;
          this.tagName = 0;
          if (c === 0x21 /* ! */) {
            this.state = State.Declaration;
            this.dashes = 0;
            i++;
          } else if (c === 0x2f || isLetter(c)) {
            this.state = State.TagName;
            if (c === 0x2f) i++;
          } else {
            this.sink.separate(); // a lone `<` (`a < b`) is punctuation
            this.state = State.Text;
          }
          break;
        }
        case State.TagName: {
          i = this.readName(s, i, end);
          if (i < end) {
            this.state = State.InTag;
            this.tagText = !this.closing && this.tagName === META ? '' : null;
          }
          break;
        }
        case State.InTag:
        case State.InQuote: {
          const start = i;
          for (; i < end; i++) {
            const c = s.charCodeAt(i);
            if (this.state === State.InQuote) {
              if (c === this.quote) this.state = State.InTag;
            } else if (c === 0x22 || c === 0x27) {
              this.state = State.InQuote;
              this.quote = c;
            } else if (c === 0x3e) break;
          }
          if (this.tagText !== null && this.tagText.length < TAG_TEXT_LIMIT) this.tagText += s.slice(start, i).toLowerCase();
          if (i < end) {
            i++;
            this.endOfTag();
          }
          break;
        }
        case State.Declaration: {
          // `<!--` opens a comment; `<!DOCTYPE …>` and the like end at `>`.
          const c = s.charCodeAt(i);
          if (c === 0x2d && this.dashes < 2) {
            this.dashes++;
            i++;
            if (this.dashes === 2) {
              this.state = State.Comment;
              this.dashes = 0;
            }
          } else {
            this.state = State.InTag;
          }
          break;
        }
        case State.Comment: {
          for (; i < end; i++) {
            const c = s.charCodeAt(i);
            if (c === 0x3e && this.dashes >= 2) break;
            this.dashes = c === 0x2d ? this.dashes + 1 : 0;
          }
          if (i < end) {
            i++;
            this.state = State.Text;
            this.sink.separate();
          }
          break;
        }
        case State.Raw:
          i = this.raw(s, i);
          break;
        case State.Entity: {
          const c = s.charCodeAt(i);
          if ((isLetter(c) || (c >= 0x30 && c <= 0x39) || (c === 0x23 && this.entity === '')) && this.entity.length < ENTITY_LIMIT) {
            this.entity += s[i];
            i++;
          } else {
            if (c === 0x3b) i++;
            this.endOfEntity();
          }
          break;
        }
      }
    }
  }

  /**
   * A tag whose name ends in this chunk, read at once: one without attributes (`<p>`,
   * `</td>`, most of a page's tags) to its `>`, one with attributes into State.InTag. The
   * index after what was read, or -1 to leave the tag to the states from its `<`.
   */
  private bareTag(s: string, at: number, end: number): number {
    const closing = s.charCodeAt(at) === 0x2f;
    const start = closing ? at + 1 : at;
    if (start >= end || !isLetter(s.charCodeAt(start))) return -1;
    this.tagName = 0;
    const i = this.readName(s, start, end);
    if (i >= end) return -1;
    this.closing = closing;
    if (s.charCodeAt(i) === 0x3e) {
      this.tagText = null;
      this.endOfTag();
      return i + 1;
    }
    this.state = State.InTag;
    this.tagText = !closing && this.tagName === META ? '' : null;
    return i;
  }

  /**
   * Reads a tag name on from `i`, adding to `tagName` (base 27 over the letters; NO_NAME
   * for a name with digits or dashes, or too long to be one acted on); where it stopped.
   */
  private readName(s: string, i: number, end: number): number {
    let name = this.tagName;
    for (; i < end; i++) {
      const c = s.charCodeAt(i);
      if (isLetter(c)) name = name >= 0 && name < FULL_NAME ? name * 27 + ((c | 0x20) - 0x60) : NO_NAME;
      else if ((c >= 0x30 && c <= 0x39) || c === 0x2d) name = NO_NAME;
      else break;
    }
    this.tagName = name;
    return i;
  }

  /** The end of the page: an entity or title still open ends here. */
  end(): void {
    if (this.state === State.Entity) this.endOfEntity();
    this.sink.separate();
  }

  private text(s: string, start: number, end: number): void {
    this.sink.append(s, start, end);
    if (this.inTitle && this.titleText.length < this.titleLimit)
      this.titleText += s.slice(start, Math.min(end, start + this.titleLimit - this.titleText.length));
  }

  private endOfTag(): void {
    this.state = State.Text;
    this.sink.separate();
    const name = this.tagName;
    if (this.closing) {
      if (name === TITLE && this.inTitle) {
        this.inTitle = false;
        const title = this.utf8Bytes ? Buffer.from(this.titleText, 'latin1').toString('utf8').slice(0, TITLE_LIMIT) : this.titleText;
        this.title = title.replace(/\s+/gu, ' ').trim();
      }
      return;
    }
    if (name === SCRIPT || name === STYLE) {
      this.state = State.Raw;
      this.rawEnd = name === SCRIPT ? '</script' : '</style';
      this.rawMatched = 0;
    } else if (name === TITLE && this.title === null) {
      this.inTitle = true;
      this.titleText = '';
    } else if (this.tagText !== null) {
      const tag = ` ${this.tagText}`;
      this.tagText = null;
      if (attributeValue(tag, 'name')?.trim() === 'rating') {
        const content = attributeValue(tag, 'content') ?? '';
        if (ADULT_RATINGS.some((label) => content.includes(label))) this.adultRating = true;
      }
    }
  }

  /** Skips script or style text up to its end tag, which may be cut by a chunk boundary. */
  private raw(s: string, i: number): number {
    const target = this.rawEnd;
    const end = s.length;
    while (i < end) {
      if (this.rawMatched === 0) {
        const lt = s.indexOf('<', i);
        if (lt < 0) return end;
        i = lt + 1;
        this.rawMatched = 1;
        continue;
      }
      const c = s.charCodeAt(i) | (this.rawMatched >= 2 ? 0x20 : 0);
      if (c === target.charCodeAt(this.rawMatched)) {
        i++;
        if (++this.rawMatched === target.length) {
          this.rawMatched = 0;
          this.closing = true;
          this.tagName = target === '</script' ? SCRIPT : STYLE;
          this.tagText = null;
          this.state = State.InTag;
          return i;
        }
      } else {
        this.rawMatched = 0;
      }
    }
    return i;
  }

  private endOfEntity(): void {
    this.state = State.Text;
    const name = this.entity;
    let value: string | undefined;
    if (name.charCodeAt(0) === 0x23) {
      const hex = name.charCodeAt(1) === 0x78 || name.charCodeAt(1) === 0x58;
      const code = Number.parseInt(name.slice(hex ? 2 : 1), hex ? 16 : 10);
      if (Number.isInteger(code) && code > 0 && code <= 0x10ffff && (code < 0xd800 || code > 0xdfff)) value = String.fromCodePoint(code);
    } else {
      value = NAMED_ENTITIES[name];
    }
    if (value === undefined) this.sink.separate();
    else if (value.length > 0) {
      if (this.utf8Bytes) value = Buffer.from(value, 'utf8').toString('latin1');
      this.text(value, 0, value.length);
    }
  }
}
