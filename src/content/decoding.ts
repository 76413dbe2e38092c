/**
 * Content-Encoding (gzip, deflate, br) undone for inspection only: the client still gets
 * the bytes the origin sent.
 *
 * Everything runs in the call that hands the bytes over: a body that came whole is
 * inflated by node's one-shot call; one that streams is inflated chunk by chunk with a
 * sync flush, so the text a chunk holds is read before the next one arrives and a
 * verdict does not wait for the end of the response. node:zlib's own streams inflate on
 * libuv's thread pool, with a promise and two thread hops a chunk, and cost far more a
 * page (bench/RESULTS.md, "Compressed pages inflated in step"). minizlib (the zlib
 * streams of npm's own tar) drives the same native zlib synchronously.
 */
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import { BrotliDecompress, Gunzip, Inflate, InflateRaw, constants } from 'minizlib';

const OUTPUT_PIECE = 64 * 1024;
/**
 * A chunk is inflated this much at a time. Deflate expands a byte to at most 1,032, so
 * a slice inflates to 4 MiB at most: a gzip or deflate body is always read up to the
 * inspector's limit, bomb or not. Brotli has no such bound (a few bytes can say
 * "repeat this 16 MiB"); a brotli slice past the bound is a bomb, and breaks the decoder.
 */
const INPUT_SLICE = 4 * 1024;
const DEFLATE_MAX_RATIO = 1032;

export type ContentCoding = 'gzip' | 'deflate' | 'br';

/** The single coding of a Content-Encoding value; null for identity, undefined for one not inspected (zstd, two codings). */
export function contentCoding(value: string | undefined): ContentCoding | null | undefined {
  const coding = (value ?? '').trim().toLowerCase();
  if (coding === '' || coding === 'identity') return null;
  if (coding === 'gzip' || coding === 'x-gzip') return 'gzip';
  if (coding === 'deflate') return 'deflate';
  if (coding === 'br') return 'br';
  return undefined;
}

type Inflater = Gunzip | Inflate | InflateRaw | BrotliDecompress;

const NOTHING: readonly Buffer[] = [];

/** One response body's Content-Encoding undone, in the calls that hand its bytes over (whole or in chunks). */
export class BodyDecoder {
  private stream: Inflater | null = null;
  private output: Buffer[] = [];
  private failed = false;
  private ended = false;
  /** Deflate is zlib-wrapped by the standard and raw by some servers; the first two bytes tell. */
  private firstBytes: Buffer | null = null;

  /** What one slice may inflate to: past it the decoder is broken, like one whose data is not what the header said. */
  private readonly maxOutputPerSlice: number;

  /** `readLimit`: the decoded bytes the caller reads at most (a slice may inflate to that much, and more for deflate's own bound). */
  constructor(
    private readonly coding: ContentCoding,
    readLimit: number,
  ) {
    this.maxOutputPerSlice = Math.max(readLimit, INPUT_SLICE * DEFLATE_MAX_RATIO) + OUTPUT_PIECE;
  }

  /** Whether the data turned out not to be what the header said (or a bomb); nothing more comes out after the call that found it. */
  get broken(): boolean {
    return this.failed;
  }

  /**
   * The decoded bytes of `chunk`, in order, up to where it broke, if it did. `last`: the
   * body ends with it (`end` is still called).
   */
  decode(chunk: Buffer, last = false): readonly Buffer[] {
    if (this.failed || this.ended) return NOTHING;
    if (last && this.stream === null && this.firstBytes === null) {
      const whole = this.decodeWhole(chunk);
      if (whole !== null) return whole;
    }
    if (this.stream === null) {
      if (this.coding === 'deflate') {
        chunk = this.firstBytes === null ? chunk : Buffer.concat([this.firstBytes, chunk]);
        if (chunk.length < 2) {
          this.firstBytes = chunk;
          return NOTHING;
        }
        this.firstBytes = null;
      }
      this.stream = this.open(chunk);
    }
    // The output of one write is held at once: slices bound it (see INPUT_SLICE).
    for (let at = 0; at < chunk.length && !this.failed; at += INPUT_SLICE)
      this.stream.write(at === 0 && chunk.length <= INPUT_SLICE ? chunk : chunk.subarray(at, at + INPUT_SLICE));
    return this.take();
  }

  /** The last decoded bytes; the zlib state is freed after. */
  end(): readonly Buffer[] {
    const stream = this.stream;
    if (this.failed || stream === null) return NOTHING;
    stream.end();
    const last = this.take();
    stream.close();
    this.stream = null;
    this.ended = true;
    return last;
  }

  /**
   * A body that came whole, in one call: node's one-shot inflate, which costs a fifth of
   * opening a stream (a 1 KB page: ~7 µs against ~30). A body cut short is read as far
   * as it goes, as the stream reads it. null when the one-shot call failed (broken data,
   * or more than a slice's bound, a bomb): the stream then reads what it can, up to the
   * break or the bound, at twice the work for such bodies only.
   */
  private decodeWhole(body: Buffer): readonly Buffer[] | null {
    // 64 KiB pieces as the stream's: a 100 KB page in two instead of seven, ~10 % less work.
    const zlibOptions = { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: this.maxOutputPerSlice, chunkSize: OUTPUT_PIECE };
    try {
      let whole: Buffer;
      if (this.coding === 'gzip') whole = gunzipSync(body, zlibOptions);
      else if (this.coding === 'br') whole = brotliDecompressSync(body, { ...zlibOptions, finishFlush: constants.BROTLI_OPERATION_FLUSH });
      else if (body.length < 2) return null;
      else whole = zlibWrapped(body) ? inflateSync(body, zlibOptions) : inflateRawSync(body, zlibOptions);
      this.ended = true;
      return [whole];
    } catch {
      return null;
    }
  }

  /** Frees the zlib state of a response no longer inspected. */
  dispose(): void {
    this.stream?.close();
    this.stream = null;
    this.failed = true;
    this.output = [];
  }

  private open(first: Buffer): Inflater {
    // Larger output pieces than the 16 KiB default: fewer pieces for the scan to take.
    const options = { flush: constants.Z_SYNC_FLUSH, chunkSize: OUTPUT_PIECE, maxOutputLength: this.maxOutputPerSlice };
    let stream: Inflater;
    if (this.coding === 'gzip') stream = new Gunzip(options);
    else if (this.coding === 'br') stream = new BrotliDecompress({ ...options, flush: constants.BROTLI_OPERATION_FLUSH });
    else {
      stream = zlibWrapped(first) ? new Inflate(options) : new InflateRaw(options);
    }
    stream.on('data', (piece: Buffer) => {
      if (!this.failed) this.output.push(piece);
    });
    // What came out before the error is the body's own text, and is still handed over.
    stream.on('error', () => {
      this.failed = true;
    });
    return stream;
  }

  private take(): readonly Buffer[] {
    const out = this.output;
    if (out.length === 0) return NOTHING;
    this.output = [];
    return out;
  }
}

/** Whether deflate data starts with a zlib header (RFC 1950: method 8, check bits), as the standard says, or is raw. */
function zlibWrapped(first: Buffer): boolean {
  return (first[0]! & 0x0f) === 8 && ((first[0]! << 8) | first[1]!) % 31 === 0;
}
