/**
 * Streaming content inspection of one response (docs/contract.md §8), sans-IO: the
 * proxy hands over the body as it arrives and sends on what `pass` returns.
 *
 *   const inspection = ContentInspection.for(policy, profileId);   // null: not inspected
 *   const inspector = inspection?.begin(contentType, contentEncoding, headers); // null: not text
 *   for each chunk: const { pass, verdict } = inspector.write(chunk);
 *   at the end:     const { pass, verdict } = inspector.end();
 *
 * Both answer at once, compressed bodies too (decoding.ts inflates in the same call):
 * a page is scanned as it arrives, with no promise or turn of the event loop a chunk.
 *
 * The first `holdBackBytes` of the body (as sent, before decoding) are held back: a
 * page that crosses its limit within them gets the block page instead of half a
 * page. The verdict over the held prefix falls when it is full (or the body ends), so
 * harmless context anywhere in it counts. Past the prefix, bytes pass as they arrive
 * and a verdict ends the response.
 *
 * Inspection fails open: a body whose encoding breaks (or a brotli bomb, decoding.ts)
 * passes unread from there, and so does text past `maxInspectedBytes` (the URL rules
 * have already decided the request).
 */
import type { Policy } from '../policy/engine.js';
import type { PhraseScanner } from '../policy/phrases.js';
import { PRESCAN_BYTES, type TextReader, byteOrderMark, charsetParameter, metaCharset, readsAsUtf8, textReaderFor } from './charset.js';
import { BodyDecoder, contentCoding } from './decoding.js';
import { MarkupText } from './markup.js';
import { PageScan, PageScanKernel } from './page-scan.js';
import { contentProfileOf, type ContentProfile, type ContentVerdict } from './profile.js';

export type { ContentVerdict } from './profile.js';

export interface InspectionOptions {
  /** Body bytes held back before the first byte is sent (default 64 KiB). */
  readonly holdBackBytes?: number;
  /** Decoded bytes read per response; the rest passes unread (default 4 MiB). */
  readonly maxInspectedBytes?: number;
  /**
   * Read UTF-8 pages with the compiled page scan (page-scan.ts) when it was built
   * (default true); false reads every page through the string path, as tests compare.
   */
  readonly compiledScan?: boolean;
}

export interface InspectStep {
  /** Bytes to send to the client now, in order (the origin's bytes, still encoded). */
  readonly pass: readonly Buffer[];
  /** Set once the page is blocked: send nothing more (the block page if nothing was sent yet). */
  readonly verdict?: ContentVerdict;
}

export const DEFAULT_HOLD_BACK = 64 * 1024;
export const DEFAULT_MAX_INSPECTED = 4 * 1024 * 1024;

const HTML_TYPES = new Set(['text/html', 'application/xhtml+xml']);
const NOTHING: readonly Buffer[] = [];
/** The step of a write whose bytes are held back: one object for all. */
const HOLD: InspectStep = { pass: NOTHING };

/** What a Content-Type value says to the inspector: markup or plain text, and the charset it declares. */
interface TextType {
  readonly html: boolean;
  readonly charset: string | null;
}

const NOT_TEXT = null;
/**
 * Content-Type values seen, parsed: a gateway sees a few dozen spellings, so parsing
 * one costs a lookup, not a split, a trim and a search per response. Emptied when
 * full, so that odd values cannot grow it.
 */
const TEXT_TYPES = new Map<string, TextType | null>();
const MAX_TEXT_TYPES = 256;

function textTypeOf(contentType: string | undefined): TextType | null {
  if (contentType === undefined) return NOT_TEXT;
  let known = TEXT_TYPES.get(contentType);
  if (known === undefined) {
    const type = contentType.split(';', 1)[0]!.trim().toLowerCase();
    const html = HTML_TYPES.has(type);
    known = html || type === 'text/plain' ? { html, charset: charsetParameter(contentType) } : NOT_TEXT;
    if (TEXT_TYPES.size >= MAX_TEXT_TYPES) TEXT_TYPES.clear();
    TEXT_TYPES.set(contentType, known);
  }
  return known;
}

export type InspectedHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

const DEFAULT_INSPECTIONS = new WeakMap<ContentProfile, ContentInspection>();

/** Content inspection for one profile of one policy; null from `for` when the profile has no content_limit. */
export class ContentInspection {
  private readonly holdBack: number;
  private readonly maxInspected: number;
  private readonly compiledScan: boolean;

  constructor(
    readonly profile: ContentProfile,
    options: InspectionOptions = {},
  ) {
    this.holdBack = options.holdBackBytes ?? DEFAULT_HOLD_BACK;
    this.maxInspected = options.maxInspectedBytes ?? DEFAULT_MAX_INSPECTED;
    this.compiledScan = options.compiledScan ?? true;
  }

  /**
   * With the default options, one per profile of a policy, kept beside the (cached)
   * ContentProfile: it holds no state of a response, so every response of the profile
   * shares it, and the proxy looks it up per request instead of building one.
   */
  static for(policy: Policy, profileId: string, options?: InspectionOptions): ContentInspection | null {
    const profile = contentProfileOf(policy, profileId);
    if (profile === null) return null;
    if (options !== undefined) return new ContentInspection(profile, options);
    let shared = DEFAULT_INSPECTIONS.get(profile);
    if (shared === undefined) {
      shared = new ContentInspection(profile);
      DEFAULT_INSPECTIONS.set(profile, shared);
    }
    return shared;
  }

  /**
   * An inspector for a response, or null when it is not read: not text/html,
   * text/plain or XHTML, a download (Content-Disposition: attachment), or an encoding
   * other than gzip, deflate and br.
   */
  begin(contentType: string | undefined, contentEncoding: string | undefined, headers: InspectedHeaders = {}): ContentInspector | null {
    const type = textTypeOf(contentType);
    if (type === NOT_TEXT) return null;
    const disposition = headers['content-disposition'];
    if (typeof disposition === 'string' && disposition.trim().toLowerCase().startsWith('attachment')) return null;
    const coding = contentCoding(contentEncoding);
    if (coding === undefined) return null;
    return new ContentInspector(
      this.profile,
      type,
      coding === null ? null : new BodyDecoder(coding, this.maxInspected),
      this.holdBack,
      this.maxInspected,
      this.compiledScan ? PageScanKernel.of(this.profile.phrases) : null,
    );
  }
}

export class ContentInspector {
  private readonly scanner: PhraseScanner;
  /** Made when the charset is known: over text for the string path, over bytes for the compiled scan. */
  private markup: MarkupText | null = null;
  private readonly decoder: BodyDecoder | null;
  /** The string path's decoder, or null: before the charset is known, and for the compiled scan. */
  private text: TextReader | null = null;
  /** The compiled scan of a UTF-8 page (page-scan.ts), or null. */
  private page: PageScan | null = null;
  private decided = false;
  /** Decoded bytes kept until the charset is known (BOM, header or `<meta>`). */
  private undecided: Buffer[] | null = null;
  private undecidedBytes = 0;
  private inspecting = true;
  private inspectedBytes = 0;
  /** Whether a compressed body's decoding has begun (readEncoded). */
  private encodedRead = false;

  /** The held-back prefix; null once it went out (or the response was dropped). */
  private held: Buffer[] | null = null;
  private heldBytes = 0;
  private released = false;
  private verdict: ContentVerdict | null = null;
  private checkedChanges = -1;
  private checkedRating = false;
  private recycled = false;

  constructor(
    private readonly profile: ContentProfile,
    private readonly type: TextType,
    decoder: BodyDecoder | null,
    private readonly holdBack: number,
    private readonly maxInspected: number,
    private readonly kernel: PageScanKernel | null,
  ) {
    this.scanner = profile.scanner();
    this.decoder = decoder;
  }

  /** The phrase scores so far, per category id (for measurements and `lachan check`-style tools). */
  get scores(): Int32Array {
    return this.scanner.scores;
  }

  /** The phrases found so far with their weights, in order of discovery (of one category id, or all). */
  evidence(category?: number): string[] {
    return this.scanner.evidence(category);
  }

  get title(): string | null {
    return this.markup?.title ?? null;
  }

  /** Reads a chunk of the body as sent (compressed or not) and says what to send on. */
  write(chunk: Buffer): InspectStep {
    return this.take(chunk, false);
  }

  /** The body is over, with `last` its last bytes if they came with the end: the last verdict, and what is still to send. */
  end(last?: Buffer): InspectStep {
    return this.take(last, true);
  }

  private take(chunk: Buffer | undefined, final: boolean): InspectStep {
    if (this.verdict !== null) return { pass: NOTHING, verdict: this.verdict };
    const bytes = chunk !== undefined && chunk.length > 0;
    if (bytes) this.hold(chunk);
    if (this.decoder === null) {
      if (bytes) this.read(chunk);
    } else if (this.inspecting && (this.encodedRead || final || this.heldBytes >= this.holdBack)) {
      this.readEncoded(bytes ? chunk : undefined, final);
    }
    if (final) {
      if (this.inspecting && this.decoder !== null) this.readDecoded(this.decoder.end());
      // The last pieces may have reached maxInspected or broken the decoder, which end the text themselves.
      if (this.inspecting) this.endOfText();
    }
    const alreadyReleased = this.released;
    const step = this.step(final);
    if (step.verdict !== undefined || !alreadyReleased || !bytes) return step;
    return { pass: [chunk] };
  }

  private hold(chunk: Buffer): void {
    if (!this.released) {
      (this.held ??= []).push(chunk);
      this.heldBytes += chunk.length;
    }
  }

  /** Stops reading (a verdict, or the response is over): frees the decoder and the held bytes. */
  private close(): void {
    this.stopInspecting();
    this.held = null;
  }

  /** The text is over (the body ended, or maxInspected was read): the last word, then the scores are final. */
  private endOfText(): void {
    if (!this.decided) this.decide();
    if (this.page !== null) {
      this.page.end();
    } else {
      this.feed(this.text!.end());
      this.markup?.end();
    }
    this.scanner.finish();
    this.stopInspecting();
  }

  /**
   * The response is over and nothing more will be asked of this inspector (not even
   * its scores): its scanner goes back to the profile for the next response.
   */
  release(): void {
    this.close();
    if (this.recycled) return;
    this.recycled = true;
    this.profile.recycle(this.scanner);
  }

  private step(final: boolean): InspectStep {
    const due = this.released || final || this.heldBytes >= this.holdBack;
    if (due) this.scanner.flush();
    const rating = this.markup?.adultRating ?? false;
    if (due && (this.scanner.changes !== this.checkedChanges || rating !== this.checkedRating)) {
      this.checkedChanges = this.scanner.changes;
      this.checkedRating = rating;
      this.verdict = this.profile.verdictOf(this.scanner, rating, this.title);
    }
    if (this.verdict !== null) {
      this.close();
      return { pass: NOTHING, verdict: this.verdict };
    }
    if (this.released || !due) return HOLD;
    this.released = true;
    const held = this.held ?? NOTHING;
    this.held = null;
    return { pass: held };
  }

  /**
   * A compressed body is decoded once its verdict can fall: nothing is judged before
   * the held-back prefix is full or the body ends, so until then its chunks are only
   * held. A page that ends within the prefix (nearly every page: 64 KiB of gzip is
   * 300 KB of HTML) is then inflated in one call, with no zlib stream opened
   * (decoding.ts); past the prefix, the held chunks and the ones after are streamed.
   */
  private readEncoded(chunk: Buffer | undefined, final: boolean): void {
    const decoder = this.decoder!;
    if (this.encodedRead) {
      if (chunk !== undefined) this.readDecoded(decoder.decode(chunk, final));
      return;
    }
    this.encodedRead = true;
    // `chunk` is the last of the held ones.
    const held = this.held ?? NOTHING;
    if (final) {
      if (held.length > 0) this.readDecoded(decoder.decode(held.length === 1 ? held[0]! : Buffer.concat(held), true));
      return;
    }
    for (const piece of held) if (this.inspecting) this.readDecoded(decoder.decode(piece));
  }

  /** Reads what the decoder gave; a decoder that broke ends the text there (the rest passes unread). */
  private readDecoded(pieces: readonly Buffer[]): void {
    for (const piece of pieces) this.read(piece);
    if (this.inspecting && this.decoder!.broken) this.endOfText();
  }

  /** Reads decoded body bytes, up to maxInspected in all. */
  private read(bytes: Buffer): void {
    if (!this.inspecting) return;
    const room = this.maxInspected - this.inspectedBytes;
    if (bytes.length > room) bytes = bytes.subarray(0, room);
    this.inspectedBytes += bytes.length;
    if (!this.decided) {
      (this.undecided ??= []).push(bytes);
      this.undecidedBytes += bytes.length;
      if (this.undecidedBytes < PRESCAN_BYTES && !this.bomDecides()) return;
      this.decide();
    } else if (this.page !== null) {
      this.page.write(bytes);
    } else {
      this.feed(this.text!.decode(bytes));
    }
    if (this.inspectedBytes >= this.maxInspected) this.endOfText();
  }

  /** A BOM settles the charset with its first bytes, without waiting for the prescan. */
  private bomDecides(): boolean {
    const undecided = this.undecided!;
    return this.undecidedBytes >= 3 && byteOrderMark(undecided[0]!.length >= 3 ? undecided[0]! : Buffer.concat(undecided)) !== null;
  }

  private decide(): void {
    const undecided = this.undecided ?? [];
    const head = undecided.length === 1 ? undecided[0]! : Buffer.concat(undecided);
    this.undecided = null;
    this.decided = true;
    const bom = byteOrderMark(head);
    const fromMeta = bom === null && this.type.charset === null;
    const label = bom !== null ? bom.encoding : !fromMeta ? this.type.charset : this.type.html ? metaCharset(head) : null;
    if (this.kernel !== null && readsAsUtf8(label, fromMeta)) {
      // A BOM needs no stripping here: U+FEFF folds to nothing (docs/contract.md §3).
      this.page = new PageScan(this.kernel, this.scanner, this.type.html);
      this.markup = this.page.markup;
      this.page.write(head);
      return;
    }
    this.text = textReaderFor(label, fromMeta);
    if (this.type.html) this.markup = new MarkupText(this.scanner);
    this.feed(this.text.decode(head));
  }

  private feed(text: string): void {
    if (text.length === 0) return;
    if (this.markup !== null) this.markup.write(text);
    else this.scanner.append(text);
  }

  private stopInspecting(): void {
    this.inspecting = false;
    this.decoder?.dispose();
    this.page?.release();
  }
}
