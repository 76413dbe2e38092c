/**
 * Which character encoding a page is written in, decided as browsers do (WHATWG
 * "encoding sniffing", simplified): a byte order mark first, then the charset of the
 * Content-Type header, then `<meta charset>` or `<meta http-equiv="content-type">`
 * in the first bytes, then UTF-8 (what Vietnamese sites use today; older ones that
 * use windows-1258 declare it).
 *
 * Node's TextDecoder (full ICU) decodes windows-1258, windows-1252 and UTF-16; a
 * label it does not know (TCVN3, VISCII: fonts hacks, not declared encodings) falls
 * back to UTF-8, which only loses the diacritics of that page.
 */
import { TextDecoder } from 'node:util';

/** Bytes of the body read before giving up on finding a `<meta>` charset. */
export const PRESCAN_BYTES = 1024;

export interface ByteOrderMark {
  readonly encoding: 'utf-8' | 'utf-16le' | 'utf-16be';
  readonly length: number;
}

export function byteOrderMark(bytes: Uint8Array): ByteOrderMark | null {
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return { encoding: 'utf-8', length: 3 };
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xfe) return { encoding: 'utf-16le', length: 2 };
  if (bytes.length >= 2 && bytes[0] === 0xfe && bytes[1] === 0xff) return { encoding: 'utf-16be', length: 2 };
  return null;
}

/** The charset parameter of a Content-Type value (`text/html; charset="windows-1258"` → `windows-1258`), or null. */
export function charsetParameter(contentType: string): string | null {
  const lower = contentType.toLowerCase();
  let at = lower.indexOf('charset');
  while (at >= 0) {
    let i = at + 7;
    while (lower.charCodeAt(i) === 0x20) i++;
    if (lower.charCodeAt(i) === 0x3d /* = */) {
      i++;
      while (lower.charCodeAt(i) === 0x20) i++;
      const quote = lower.charCodeAt(i) === 0x22 || lower.charCodeAt(i) === 0x27 ? lower[i++] : '';
      let end = i;
      while (end < lower.length && !' ;"\''.includes(lower[end]!)) end++;
      if (quote !== '' || end > i) return end > i ? lower.slice(i, end) : null;
    }
    at = lower.indexOf('charset', at + 7);
  }
  return null;
}

/**
 * The charset a `<meta>` tag in the first bytes declares, or null. Bytes are read as
 * Latin-1, which keeps ASCII markup intact whatever the real encoding is.
 */
export function metaCharset(bytes: Uint8Array): string | null {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, PRESCAN_BYTES)).toString('latin1').toLowerCase();
  let at = head.indexOf('<meta');
  while (at >= 0) {
    const end = head.indexOf('>', at);
    const tag = head.slice(at, end < 0 ? head.length : end);
    const direct = attributeValue(tag, 'charset');
    if (direct !== null && direct !== '') return direct.trim();
    if (attributeValue(tag, 'http-equiv')?.trim() === 'content-type') {
      const content = attributeValue(tag, 'content');
      const found = content === null ? null : charsetParameter(content);
      if (found !== null) return found;
    }
    if (end < 0) break;
    at = head.indexOf('<meta', end);
  }
  return null;
}

/**
 * The value of attribute `name` in a lower-cased tag's text (`<meta name="rating" …`),
 * or null. Enough for the few attributes read here; not a general HTML parser.
 */
export function attributeValue(tag: string, name: string): string | null {
  let at = tag.indexOf(name);
  while (at >= 0) {
    const before = tag.charCodeAt(at - 1);
    let i = at + name.length;
    while (tag.charCodeAt(i) === 0x20) i++;
    if (
      (before === 0x20 || before === 0x09 || before === 0x0a || before === 0x0d || before === 0x2f || before === 0x22 || before === 0x27) &&
      tag.charCodeAt(i) === 0x3d
    ) {
      i++;
      while (tag.charCodeAt(i) === 0x20) i++;
      const quote = tag[i];
      if (quote === '"' || quote === "'") {
        const close = tag.indexOf(quote, i + 1);
        return tag.slice(i + 1, close < 0 ? tag.length : close);
      }
      let end = i;
      while (end < tag.length && !' \t\n\r/>"\''.includes(tag[end]!)) end++;
      return tag.slice(i, end);
    }
    at = tag.indexOf(name, at + name.length);
  }
  return null;
}

/** Decoded text of a body handed over in pieces; `end` returns what a cut-off last character leaves. */
export interface TextReader {
  decode(bytes: Uint8Array): string;
  end(): string;
}

/**
 * One UTF-8 decoder for every response: a response keeps only the 1–3 bytes of a
 * character its chunk cut, and the shared decoder reads whole characters only, so it
 * carries no state between calls. A TextDecoder per response cost a microsecond and
 * more, a tenth of what a small page's whole inspection may cost. It is called in
 * streaming mode all the same: Node 20 decodes non-ASCII text twice as fast that
 * way (ICU) as through its one-shot path. A BOM is stripped only where the decoder
 * started; elsewhere it reaches the folding, which drops it (docs/contract.md §3).
 */
const SHARED_UTF8 = new TextDecoder('utf-8');
const STREAM = { stream: true } as const;
const UTF8_LABELS = new Set(['utf-8', 'utf8', 'unicode-1-1-utf-8', 'unicode11utf8', 'unicode20utf8', 'x-unicode20utf8']);

class Utf8Reader implements TextReader {
  private carry: Buffer | null = null;

  decode(bytes: Uint8Array): string {
    if (this.carry !== null) {
      bytes = Buffer.concat([this.carry, bytes]);
      this.carry = null;
    }
    const whole = wholeCharacters(bytes);
    if (whole < bytes.length) {
      this.carry = Buffer.from(bytes.subarray(whole));
      bytes = bytes.subarray(0, whole);
    }
    return bytes.length === 0 ? '' : SHARED_UTF8.decode(bytes, STREAM);
  }

  end(): string {
    const rest = this.carry;
    this.carry = null;
    // A character cut by the end of the body: the decoder must not keep it for the next response.
    return rest === null ? '' : SHARED_UTF8.decode(rest, STREAM) + SHARED_UTF8.decode();
  }
}

/** The length of `bytes` without a multi-byte character its end cuts short. */
export function wholeCharacters(bytes: Uint8Array): number {
  const n = bytes.length;
  for (let back = 1; back <= 3 && back <= n; back++) {
    const b = bytes[n - back]!;
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: the lead is further back
    const length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return length > back ? n - back : n;
  }
  return n;
}

class StreamingReader implements TextReader {
  constructor(private readonly decoder: TextDecoder) {}

  decode(bytes: Uint8Array): string {
    return this.decoder.decode(bytes, STREAM);
  }

  end(): string {
    return this.decoder.decode();
  }
}

/** Whether a declared label (see decoderFor) reads as UTF-8. */
export function readsAsUtf8(label: string | null, fromMeta: boolean): boolean {
  return label === null || UTF8_LABELS.has(label) || decoderFor(label, fromMeta).encoding === 'utf-8';
}

/** A reader for a declared label (see decoderFor); UTF-8 needs no decoder of its own. */
export function textReaderFor(label: string | null, fromMeta: boolean): TextReader {
  if (label === null || UTF8_LABELS.has(label)) return new Utf8Reader();
  const decoder = decoderFor(label, fromMeta);
  return decoder.encoding === 'utf-8' ? new Utf8Reader() : new StreamingReader(decoder);
}

/**
 * A TextDecoder for a declared label; UTF-8 for labels Node does not know. A meta
 * tag cannot declare UTF-16 (the page would not have been readable as ASCII to find
 * it), so that case reads as UTF-8, as browsers do.
 */
export function decoderFor(label: string | null, fromMeta: boolean): TextDecoder {
  if (label !== null) {
    try {
      const decoder = new TextDecoder(label);
      if (!(fromMeta && decoder.encoding.startsWith('utf-16'))) return decoder;
    } catch {
      // Unknown label: fall through to UTF-8.
    }
  }
  return new TextDecoder('utf-8');
}
