import { badResponse, OriginError } from '../origin-error.js';
import { CONTROL, Framing, parseResponseHead, TOKEN, type ResponseHead } from './response-head.js';

/**
 * A sans-IO HTTP/1 response reader: bytes in, the response's head, data, end or error
 * out, through ResponseReaderEvents. It owns no socket and no timer, so every framing
 * case can be fed in memory, cut at any byte (test/http1-response-reader.test.ts); the
 * connection (origin-connection.ts) feeds it what its socket reads.
 *
 * What it reads: 1xx interim responses (skipped; an unasked-for 101 refused), then the
 * final head (response-head.ts), then a body delimited by Content-Length, chunked
 * coding (trailers read and dropped: the client's response is re-framed) or the close
 * of the connection; none for HEAD, 204 and 304. Results do not depend on how the
 * bytes are cut: a head is too large, or ended by bare LFs, at the same byte whatever
 * the packets. Data events do depend on the cut, their concatenation does not.
 */

export interface ResponseReaderEvents {
  /** The final (non-1xx) head. */
  onHead(head: ResponseHead): void;
  onData(chunk: Buffer): void;
  /** The response is complete; `last`: its final bytes, not given to onData; `trailingBytes`: more bytes followed it in the same feed. */
  onEnd(last: Buffer | undefined, trailingBytes: boolean): void;
  onError(error: OriginError): void;
}

const CRLF_CRLF = Buffer.from('\r\n\r\n', 'latin1');
const LF_LF = Buffer.from('\n\n', 'latin1');
const EMPTY = Buffer.alloc(0);
const LF = 0x0a;
const CR = 0x0d;
const HEX_SIZE = /^([0-9A-Fa-f]{1,12})[ \t]*(?:;[^\x00-\x08\x0a-\x1f\x7f]*)?$/;
const BARE_LF_HEAD = 'response head with bare LF line endings';
const HEAD_TOO_LARGE = 'response head too large';
/** Longest chunk-size line or trailer line accepted. */
const MAX_LINE = 8 * 1024;

const enum Phase {
  /** Not expecting a response: before start(), after its end or an error. */
  Idle,
  Head,
  FixedBody,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
}

export class ResponseReader {
  private phase = Phase.Idle;
  /**
   * Bumped at every start, stop, end and error: an event handler that ends the response
   * (an abort, a next request started from onEnd) ends the feed that called it.
   */
  private epoch = 0;
  private isHead = false;
  /** An interim (1xx) response was read for the current request. */
  private interim = false;
  /** A response head that has not come whole yet: its pieces, joined once its end is found. */
  private headPieces: Buffer[] = [];
  private headBytes = 0;
  /** The last (up to 3) bytes of the pieces: the blank line ending a head may straddle packets. */
  private headTail: Buffer = EMPTY;
  private remaining = 0;
  private line = '';
  private trailerBytes = 0;

  constructor(
    private readonly events: ResponseReaderEvents,
    /** Largest response head (and largest trailer section) accepted. */
    private readonly maxHeadBytes: number,
  ) {}

  /** Expects the response to a request; `isHead`: a HEAD request, whose response has no body whatever its fields say. */
  start(isHead: boolean): void {
    this.epoch++;
    this.phase = Phase.Head;
    this.isHead = isHead;
    this.interim = false;
    this.trailerBytes = 0;
    this.dropHead();
  }

  /** The response is not wanted any more: no further events. */
  stop(): void {
    this.epoch++;
    this.phase = Phase.Idle;
    this.dropHead();
  }

  /** Not expecting bytes: any fed now would be bytes nobody asked for (callers check before feeding). */
  get idle(): boolean {
    return this.phase === Phase.Idle;
  }

  get awaitingHead(): boolean {
    return this.phase === Phase.Head;
  }

  /** Part of a head, or an interim response, came and the final head has not: the origin is answering slowly. */
  get midHead(): boolean {
    return this.phase === Phase.Head && (this.headBytes > 0 || this.interim);
  }

  /** Whether the body runs to the close of the connection. */
  get untilClose(): boolean {
    return this.phase === Phase.UntilClose;
  }

  feed(chunk: Buffer): void {
    const epoch = this.epoch;
    let offset = 0;
    while (offset < chunk.length && this.epoch === epoch) {
      switch (this.phase) {
        case Phase.Head:
          offset = this.readHead(chunk, offset);
          break;
        case Phase.FixedBody:
        case Phase.ChunkData:
          offset = this.readBody(chunk, offset);
          break;
        case Phase.UntilClose:
          this.events.onData(offset === 0 ? chunk : chunk.subarray(offset));
          return;
        case Phase.ChunkDataEnd:
          offset = this.readChunkDataEnd(chunk, offset);
          break;
        case Phase.ChunkSize:
        case Phase.Trailers:
          offset = this.readLine(chunk, offset);
          break;
        case Phase.Idle:
          return;
      }
    }
  }

  /** The peer closed its side: ends a body delimited by the close; returns whether it did. */
  endOfInput(): boolean {
    if (this.phase !== Phase.UntilClose) return false;
    this.end(undefined, false);
    return true;
  }

  private dropHead(): void {
    if (this.headBytes === 0) return;
    this.headPieces = [];
    this.headBytes = 0;
    this.headTail = EMPTY;
  }

  private end(last: Buffer | undefined, trailingBytes: boolean): void {
    this.epoch++;
    this.phase = Phase.Idle;
    this.events.onEnd(last, trailingBytes);
  }

  /** Reports a malformed response; returns the end of `chunk`, where reading stops. */
  private refuse(chunk: Buffer, reason: string | OriginError): number {
    this.epoch++;
    this.phase = Phase.Idle;
    this.dropHead();
    this.events.onError(typeof reason === 'string' ? badResponse(reason) : reason);
    return chunk.length;
  }

  private readHead(chunk: Buffer, offset: number): number {
    const rest = offset === 0 ? chunk : chunk.subarray(offset);
    const kept = this.headBytes;
    // Index in `rest` just past the blank line. Only the new bytes are searched (and
    // the seam with the kept ones), so this stays linear however the head is cut up.
    let end = -1;
    if (kept > 0) {
      const atSeam = Buffer.concat([this.headTail, rest.subarray(0, 3)]).indexOf(CRLF_CRLF);
      if (atSeam !== -1) end = atSeam + 4 - this.headTail.length;
    }
    if (end === -1) {
      const at = rest.indexOf(CRLF_CRLF);
      if (at !== -1) end = at + 4;
    }
    // Index in `rest` by which the blank line must have ended for the head to fit.
    const limit = this.maxHeadBytes + 4 - kept;
    if (end === -1 || end > limit) return this.unfinishedHead(chunk, rest, end, limit);
    let head: string;
    if (kept === 0) head = rest.toString('latin1', 0, end - 4);
    else {
      this.headPieces.push(rest.subarray(0, end));
      const whole = Buffer.concat(this.headPieces);
      head = whole.toString('latin1', 0, whole.length - 4);
      this.dropHead();
    }
    const next = offset + end;
    const parsed = parseResponseHead(head, this.isHead);
    // A head with bare LF line endings gets one answer, whether its LFs came before its CRLFs or after.
    if (parsed instanceof OriginError) return this.refuse(chunk, head.indexOf('\n\n') !== -1 ? BARE_LF_HEAD : parsed);
    if (parsed.status < 200) {
      // 101 was not asked for; other 1xx answers (100 Continue, 103 Early Hints) precede the real one.
      if (parsed.status === 101) return this.refuse(chunk, '101 Switching Protocols without an upgrade');
      this.interim = true;
      return next;
    }
    const epoch = this.epoch;
    this.events.onHead(parsed);
    if (this.epoch !== epoch) return chunk.length;
    switch (parsed.framing) {
      case Framing.None:
        this.end(undefined, next < chunk.length);
        return chunk.length;
      case Framing.Fixed:
        this.phase = Phase.FixedBody;
        this.remaining = parsed.length;
        break;
      case Framing.Chunked:
        this.phase = Phase.ChunkSize;
        this.line = '';
        break;
      case Framing.UntilClose:
        this.phase = Phase.UntilClose;
        break;
    }
    return next;
  }

  /**
   * No blank line in time (`end` -1, or past `limit`): a head ended by bare LFs or too
   * large is refused at the byte where that became certain, else the piece is kept.
   */
  private unfinishedHead(chunk: Buffer, rest: Buffer, end: number, limit: number): number {
    let bareEnd = -1;
    if (this.headBytes > 0 && this.headTail[this.headTail.length - 1] === LF && rest[0] === LF) bareEnd = 1;
    else {
      const at = rest.indexOf(LF_LF);
      if (at !== -1) bareEnd = at + 2;
    }
    if (bareEnd !== -1 && bareEnd <= limit) return this.refuse(chunk, BARE_LF_HEAD);
    if (end !== -1 || rest.length >= limit) return this.refuse(chunk, HEAD_TOO_LARGE);
    this.headBytes += rest.length;
    this.headPieces.push(rest);
    this.headTail = rest.length >= 3 ? rest.subarray(rest.length - 3) : Buffer.concat([this.headTail, rest]).subarray(-3);
    return chunk.length;
  }

  private readBody(chunk: Buffer, offset: number): number {
    const available = chunk.length - offset;
    const take = Math.min(available, this.remaining);
    this.remaining -= take;
    const end = offset + take;
    const data = offset === 0 && end === chunk.length ? chunk : chunk.subarray(offset, end);
    if (this.remaining === 0 && this.phase === Phase.FixedBody) {
      this.end(data, end < chunk.length);
      return chunk.length;
    }
    const epoch = this.epoch;
    this.events.onData(data);
    if (this.epoch !== epoch || this.remaining > 0) return end;
    this.phase = Phase.ChunkDataEnd;
    this.remaining = 2;
    return end;
  }

  /** The CRLF after a chunk's data. */
  private readChunkDataEnd(chunk: Buffer, offset: number): number {
    while (this.remaining > 0 && offset < chunk.length) {
      const expected = this.remaining === 2 ? CR : LF;
      if (chunk[offset] !== expected) return this.refuse(chunk, 'chunk data not followed by CRLF');
      this.remaining--;
      offset++;
    }
    if (this.remaining === 0) {
      this.phase = Phase.ChunkSize;
      this.line = '';
    }
    return offset;
  }

  /** A chunk-size line or a trailer line, possibly across chunks. */
  private readLine(chunk: Buffer, offset: number): number {
    const lf = chunk.indexOf(LF, offset);
    const end = lf === -1 ? chunk.length : lf;
    this.line += chunk.toString('latin1', offset, end);
    if (this.line.length > MAX_LINE) return this.refuse(chunk, 'chunk-size or trailer line too long');
    if (lf === -1) return chunk.length;
    const line = this.line;
    this.line = '';
    if (line.charCodeAt(line.length - 1) !== CR) return this.refuse(chunk, 'bare LF in chunked framing');
    const text = line.slice(0, -1);
    if (this.phase === Phase.Trailers) {
      if (text === '') {
        this.end(undefined, lf + 1 < chunk.length);
        return chunk.length;
      }
      // Trailers are not relayed (the client's response is re-framed); malformed or endless ones are still refused.
      this.trailerBytes += line.length + 1;
      if (
        this.trailerBytes > this.maxHeadBytes ||
        CONTROL.test(text) ||
        text.indexOf('\r') !== -1 ||
        !TOKEN.test(text.slice(0, Math.max(0, text.indexOf(':'))))
      ) {
        return this.refuse(chunk, 'malformed trailer');
      }
      return lf + 1;
    }
    const match = HEX_SIZE.exec(text);
    if (match === null) return this.refuse(chunk, 'malformed chunk size');
    const size = Number.parseInt(match[1]!, 16);
    if (size === 0) this.phase = Phase.Trailers;
    else {
      this.phase = Phase.ChunkData;
      this.remaining = size;
    }
    return lf + 1;
  }
}
