import { connect as netConnect, type Socket } from 'node:net';

/**
 * The hot path's upstream client: HTTP/1.1 over pooled keep-alive TCP connections,
 * for the requests that make up nearly all of a school's plain-HTTP traffic (GET and
 * HEAD without a body, to `http:` origins). Everything else (request bodies, HTTPS
 * origins inside an intercepted tunnel) still goes through undici.
 *
 * Why not undici here: measured on the bench's box, one core, 1 KB responses, the
 * bare undici forward proxy spends 46 µs of CPU a request and a proxy whose upstream
 * side is a plain socket and a head parser 32 µs (bench/RESULTS.md). undici's general
 * machinery (its Request object and header validation, the dispatcher queue, timers
 * per request, the llhttp WebAssembly parser calling back into JavaScript for every
 * header field and value) is most of the difference. This client does one thing: it
 * writes a request head the proxy has already vetted and parses the response head
 * with one scan for its end and one pass over its lines.
 *
 * Strict where it matters for a proxy (response splitting and smuggling): a status
 * line that is not `HTTP/1.0` or `HTTP/1.1` and three digits, a field name that is
 * not a token, a control character or a bare CR or LF in the head, a folded line,
 * Content-Length together with Transfer-Encoding, Content-Length values that differ,
 * a transfer coding other than chunked, a malformed chunk, a head over the size
 * limit, an unasked-for 101: each is an error (a 502 page if nothing was sent yet),
 * and the connection is closed rather than reused.
 */

/** Callbacks in the shape of undici's classic dispatch handlers, so one handler serves both clients. */
export interface OriginResponseHandler {
  onConnect(abort: (error?: Error) => void): void;
  onHeaders(statusCode: number, rawHeaders: string[], resume: () => void): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  /** The response's last bytes, and its end: one call where undici makes two, so the client gets them in one write. */
  onLastData(chunk: Buffer): void;
  onError(error: Error): void;
}

export type OriginErrorCode =
  | 'LACHAN_UPSTREAM_CONNECT_TIMEOUT'
  | 'LACHAN_UPSTREAM_HEADERS_TIMEOUT'
  | 'LACHAN_UPSTREAM_BODY_TIMEOUT'
  | 'LACHAN_UPSTREAM_BAD_RESPONSE'
  | 'LACHAN_UPSTREAM_CLOSED';

export class OriginError extends Error {
  constructor(
    readonly code: OriginErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'OriginError';
  }

  get isTimeout(): boolean {
    return this.code.endsWith('_TIMEOUT');
  }
}

export interface OriginClientOptions {
  /** Resolves a URL hostname (IPv6 in brackets) to the vetted address to dial; rejects to refuse. */
  resolve(hostname: string): Promise<string>;
  readonly connectTimeoutMs: number;
  /** Time the origin has, from the request, to finish its response head. */
  readonly headersTimeoutMs: number;
  /** Longest silence allowed inside a response body. */
  readonly bodyIdleMs: number;
  readonly connectionsPerOrigin: number;
  /** Idle keep-alive connections are closed after this. */
  readonly idleMs: number;
  /** Largest response head accepted. */
  readonly maxHeadBytes: number;
}

/** One request to send: its head, written by the caller (request line, fields, blank line). */
export interface OriginRequest {
  /** The URL hostname, as `URL.hostname` gives it. */
  readonly hostname: string;
  readonly port: number;
  readonly head: string;
  /** A HEAD request: the response has no body whatever its fields say. */
  readonly isHead: boolean;
}

const CRLF_CRLF = Buffer.from('\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);
const LF_LF = Buffer.from('\n\n', 'latin1');
const LF = 0x0a;
const CR = 0x0d;
/** A control character other than HTAB, CR and LF, or DEL (CR and LF are checked line by line). */
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;
/** `HTTP/1.0` or `HTTP/1.1`, a space, a code 100–999, then the end or a space before the reason. */
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: |$)/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CLOSE_TOKEN = /(?:^|[\s,])close(?:$|[\s,])/i;
const KEEP_ALIVE_TOKEN = /(?:^|[\s,])keep-alive(?:$|[\s,])/i;
const DIGITS = /^\d{1,15}$/;
const HEX_SIZE = /^([0-9A-Fa-f]{1,12})[ \t]*(?:;[^\x00-\x08\x0a-\x1f\x7f]*)?$/;
const BARE_LF_HEAD = 'response head with bare LF line endings';
const HEAD_TOO_LARGE = 'response head too large';
/** Origin pools kept before the empty ones are dropped. */
const MIN_PRUNE_AT = 4096;
/** A connection paused this long for its client is taken to be held by a client that is not reading. */
const STALLED_AFTER_MS = 2_000;
/** Longest chunk-size line or trailer line accepted. */
const MAX_LINE = 8 * 1024;

const enum Phase {
  /** Connecting, or connected and not yet holding a request. */
  Idle,
  Head,
  FixedBody,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
}

const enum Framing {
  None,
  Fixed,
  Chunked,
  UntilClose,
}

/** One request, from dispatch to its last callback; it may move to a fresh connection once (see OriginConnection.onSocketClose). */
class Exchange {
  retried = false;
  aborted = false;
  /** The connection serving it now, or null while it waits for one. */
  connection: OriginConnection | null = null;
  /** Handed to the handler once: aborts this exchange wherever it is, and nothing else. */
  readonly abort = (): void => {
    if (this.aborted) return;
    this.aborted = true;
    this.connection?.abandon(this);
  };

  constructor(
    readonly request: OriginRequest,
    readonly handler: OriginResponseHandler,
  ) {}
}

/** The parsed response head: only what framing and reuse need, besides the fields passed on. */
interface ResponseHead {
  status: number;
  fields: string[];
  framing: Framing;
  length: number;
  keepAlive: boolean;
}

function badResponse(message: string): OriginError {
  return new OriginError('LACHAN_UPSTREAM_BAD_RESPONSE', message);
}

/** `text` from `start`, without the spaces and tabs (HTTP's OWS, nothing else) at either end. */
function trimOptionalWhitespace(text: string, start: number): string {
  let end = text.length;
  while (start < end && (text.charCodeAt(start) === 0x20 || text.charCodeAt(start) === 0x09)) start++;
  while (end > start && (text.charCodeAt(end - 1) === 0x20 || text.charCodeAt(end - 1) === 0x09)) end--;
  return text.slice(start, end);
}

/**
 * Parses a response head (without its final blank line) for a request of the given
 * kind. Returns an OriginError for anything a strict HTTP/1.1 parser refuses.
 */
export function parseResponseHead(text: string, isHead: boolean): ResponseHead | OriginError {
  if (CONTROL.test(text)) return badResponse('control character in the response head');
  const lines = text.split('\r\n');
  const statusLine = lines[0]!;
  if (statusLine.indexOf('\n') !== -1 || statusLine.indexOf('\r') !== -1) return badResponse('bare CR or LF in the response head');
  const statusMatch = STATUS_LINE.exec(statusLine);
  if (statusMatch === null) return badResponse('not an HTTP/1.x status line with a three-digit code');
  const status = Number(statusMatch[2]);
  const http10 = statusMatch[1] === '0';
  const fields: string[] = [];
  let length = -1;
  let transferEncoding: string | null = null;
  let connection: string | null = null;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    // A CR or LF left after splitting on CRLF is a bare one: response splitting.
    if (line.indexOf('\n') !== -1 || line.indexOf('\r') !== -1) return badResponse('bare CR or LF in the response head');
    const colon = line.indexOf(':');
    if (colon <= 0) return badResponse('field line without a name');
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return badResponse('field name is not a token (folded or malformed line)');
    const value = trimOptionalWhitespace(line, colon + 1);
    // Only fields starting c or t matter for framing: skip the lower-casing for the rest.
    const first = name.charCodeAt(0) | 0x20;
    if (first === 0x63 || first === 0x74) {
      const lower = name.toLowerCase();
      if (lower === 'content-length') {
        for (const part of value.split(',')) {
          const item = trimOptionalWhitespace(part, 0);
          if (!DIGITS.test(item)) return badResponse('malformed Content-Length');
          const n = Number(item);
          if (length !== -1 && n !== length) return badResponse('Content-Length values differ');
          length = n;
        }
        // Passed on once, in one spelling (below): `5, 5` or two fields would be read differently by different clients.
        continue;
      } else if (lower === 'transfer-encoding') {
        transferEncoding = transferEncoding === null ? value : `${transferEncoding}, ${value}`;
      } else if (lower === 'connection') {
        connection = connection === null ? value : `${connection}, ${value}`;
      }
    }
    fields.push(name, value);
  }
  if (transferEncoding !== null && length !== -1) return badResponse('both Content-Length and Transfer-Encoding');
  if (length !== -1) fields.push('Content-Length', String(length));
  let keepAlive = !http10;
  if (connection !== null) {
    if (CLOSE_TOKEN.test(connection)) keepAlive = false;
    else if (http10 && KEEP_ALIVE_TOKEN.test(connection)) keepAlive = true;
  }
  let framing: Framing;
  if (isHead || status < 200 || status === 204 || status === 304) framing = Framing.None;
  else if (transferEncoding !== null) {
    // Only chunked is taken off: the client's response is re-framed without Transfer-Encoding,
    // so any other coding (gzip, chunked; or gzip alone, read until close) would reach it undeclared.
    if (trimOptionalWhitespace(transferEncoding, 0).toLowerCase() !== 'chunked') return badResponse('a transfer coding other than chunked');
    framing = Framing.Chunked;
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing; do not reuse.
    if (http10) keepAlive = false;
  } else if (length !== -1) framing = length === 0 ? Framing.None : Framing.Fixed;
  else framing = Framing.UntilClose;
  if (framing === Framing.UntilClose) keepAlive = false;
  return { status, fields, framing, length, keepAlive };
}

/** One TCP connection to an origin, serving one exchange at a time. */
class OriginConnection {
  private readonly socket: Socket;
  private exchange: Exchange | null = null;
  /** Exchanges completed on this connection: a reused connection may have been closed by the origin meanwhile. */
  private served = 0;
  private connected = false;
  private phase = Phase.Idle;
  /** A response head that has not come whole yet: its pieces, joined once its end is found. */
  private headPieces: Buffer[] = [];
  private headBytes = 0;
  /** The last (up to 3) bytes of the pieces: the blank line ending a head may straddle packets. */
  private headTail: Buffer = EMPTY;
  private remaining = 0;
  private line = '';
  private keepAlive = false;
  private receivedAny = false;
  /** When the request went out: the origin has headersTimeoutMs from then to finish its head, 1xx answers or not. */
  private sentAt = 0;
  /** Time without bytes (or, paused, without room at the client), counted in ticks of the socket's idle timer. */
  private silentMs = 0;
  private pausedMs = 0;
  /** Paused so long that its client is taken not to be reading: no longer counted against the origin's connection limit. */
  private stalled = false;
  private trailerBytes = 0;
  private connectStartedAt: number;
  private failure: Error | null = null;
  private readonly resumeSocket = (): void => {
    this.socket.resume();
  };

  constructor(
    private readonly pool: OriginPool,
    address: string,
    port: number,
  ) {
    this.connectStartedAt = performance.now();
    const socket = netConnect({ host: address, port, noDelay: true });
    this.socket = socket;
    socket.setTimeout(pool.tickMs);
    socket.on('connect', () => {
      this.connected = true;
    });
    socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    socket.on('end', () => this.onSocketEnd());
    socket.on('error', (error: Error) => {
      this.failure ??= error;
    });
    socket.on('close', () => this.onSocketClose());
    socket.on('timeout', () => this.onSocketTimeout());
  }

  /** Sends `exchange`'s request on this connection. */
  send(exchange: Exchange): void {
    this.exchange = exchange;
    exchange.connection = this;
    this.phase = Phase.Head;
    // (The head pieces are empty: every head either completed, which empties them, or failed, which closes the connection.)
    this.receivedAny = false;
    this.silentMs = 0;
    this.pausedMs = 0;
    this.unstall();
    this.trailerBytes = 0;
    this.sentAt = performance.now();
    this.socket.write(exchange.request.head, 'latin1');
  }

  /** The client went away: the rest of this response is not wanted, and the connection cannot be reused. */
  abandon(exchange: Exchange): void {
    if (this.exchange !== exchange) return;
    this.exchange = null;
    this.socket.destroy();
  }

  get isUsable(): boolean {
    return !this.socket.destroyed;
  }

  /** Closes an idle connection. */
  close(): void {
    this.socket.destroy();
  }

  private onSocketData(chunk: Buffer): void {
    const exchange = this.exchange;
    if (exchange === null) {
      // Bytes nobody asked for: the origin is not speaking HTTP/1.1 as agreed.
      this.socket.destroy();
      return;
    }
    this.receivedAny = true;
    this.silentMs = 0;
    this.pausedMs = 0;
    this.unstall();
    let offset = 0;
    while (offset < chunk.length && this.exchange === exchange) {
      switch (this.phase) {
        case Phase.Head:
          offset = this.readHead(exchange, chunk, offset);
          break;
        case Phase.FixedBody:
        case Phase.ChunkData:
          offset = this.readBody(exchange, chunk, offset);
          break;
        case Phase.UntilClose:
          this.deliver(exchange, offset === 0 ? chunk : chunk.subarray(offset));
          offset = chunk.length;
          break;
        case Phase.ChunkDataEnd:
          offset = this.readChunkDataEnd(exchange, chunk, offset);
          break;
        case Phase.ChunkSize:
        case Phase.Trailers:
          offset = this.readLine(exchange, chunk, offset);
          break;
        default:
          this.fail(exchange, badResponse('response bytes after the response'));
          return;
      }
    }
    // More bytes after a complete response: nothing was asked for them.
    if (offset < chunk.length && this.exchange === null && this.phase === Phase.Idle) this.socket.destroy();
  }

  private readHead(exchange: Exchange, chunk: Buffer, offset: number): number {
    const rest = offset === 0 ? chunk : chunk.subarray(offset);
    // Bytes of `rest` up to and including the blank line; only the new bytes are searched
    // (and the seam with the kept ones), so this stays linear however the head is cut up.
    let consumed = -1;
    if (this.headBytes > 0) {
      const atSeam = Buffer.concat([this.headTail, rest.subarray(0, 3)]).indexOf(CRLF_CRLF);
      if (atSeam !== -1) consumed = atSeam + 4 - this.headTail.length;
    }
    if (consumed === -1) {
      const end = rest.indexOf(CRLF_CRLF);
      if (end === -1) {
        // A head ended by bare LFs: refused now rather than waited on until the deadline.
        if (rest.indexOf(LF_LF) !== -1) return this.refuse(exchange, chunk, BARE_LF_HEAD);
        return this.keepHeadPiece(exchange, rest, chunk.length);
      }
      consumed = end + 4;
    }
    if (this.headBytes + consumed - 4 > this.pool.options.maxHeadBytes) return this.refuse(exchange, chunk, HEAD_TOO_LARGE);
    let head: string;
    if (this.headBytes === 0) head = rest.toString('latin1', 0, consumed - 4);
    else {
      this.headPieces.push(rest.subarray(0, consumed));
      const whole = Buffer.concat(this.headPieces);
      head = whole.toString('latin1', 0, whole.length - 4);
      this.headPieces = [];
      this.headBytes = 0;
      this.headTail = EMPTY;
    }
    const next = offset + consumed;
    const parsed = parseResponseHead(head, exchange.request.isHead);
    if (parsed instanceof OriginError) return this.refuse(exchange, chunk, parsed);
    if (parsed.status < 200) {
      // 101 was not asked for; other 1xx answers (100 Continue, 103 Early Hints) precede the real one.
      if (parsed.status === 101) return this.refuse(exchange, chunk, '101 Switching Protocols without an upgrade');
      // A stream of 1xx answers does not extend the deadline.
      if (this.pastHeadDeadline(exchange)) return chunk.length;
      return next;
    }
    this.keepAlive = parsed.keepAlive;
    if (!exchange.handler.onHeaders(parsed.status, parsed.fields, this.resumeSocket) && this.exchange === exchange) this.socket.pause();
    if (this.exchange !== exchange) return chunk.length;
    switch (parsed.framing) {
      case Framing.None:
        this.complete(exchange, next < chunk.length);
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

  /** Keeps part of a head that has not ended yet; returns where reading stops (`end`: all of the chunk). */
  private keepHeadPiece(exchange: Exchange, piece: Buffer, end: number): number {
    // Nor does a head trickled in: the deadline counts from the request.
    if (this.pastHeadDeadline(exchange)) return end;
    this.headBytes += piece.length;
    if (this.headBytes > this.pool.options.maxHeadBytes) return this.refuse(exchange, piece, HEAD_TOO_LARGE);
    this.headPieces.push(piece);
    this.headTail = piece.length >= 3 ? piece.subarray(piece.length - 3) : Buffer.concat([this.headTail, piece]).subarray(-3);
    return end;
  }

  /** Fails the exchange when its head is overdue (checked when bytes come; silence is the idle timer's). */
  private pastHeadDeadline(exchange: Exchange): boolean {
    if (performance.now() - this.sentAt <= this.pool.options.headersTimeoutMs) return false;
    this.fail(exchange, new OriginError('LACHAN_UPSTREAM_HEADERS_TIMEOUT', 'origin did not finish its response head in time'));
    return true;
  }

  /** Fails the exchange on a malformed response; returns the end of `chunk`, where reading stops. */
  private refuse(exchange: Exchange, chunk: Buffer, reason: string | OriginError): number {
    this.fail(exchange, typeof reason === 'string' ? badResponse(reason) : reason);
    return chunk.length;
  }

  private readBody(exchange: Exchange, chunk: Buffer, offset: number): number {
    const available = chunk.length - offset;
    const take = available < this.remaining ? available : this.remaining;
    this.remaining -= take;
    const end = offset + take;
    const data = offset === 0 && end === chunk.length ? chunk : chunk.subarray(offset, end);
    if (this.remaining === 0 && this.phase === Phase.FixedBody) {
      this.complete(exchange, end < chunk.length, data);
      return chunk.length;
    }
    this.deliver(exchange, data);
    if (this.exchange !== exchange || this.remaining > 0) return end;
    this.phase = Phase.ChunkDataEnd;
    this.remaining = 2;
    return end;
  }

  /** The CRLF after a chunk's data. */
  private readChunkDataEnd(exchange: Exchange, chunk: Buffer, offset: number): number {
    while (this.remaining > 0 && offset < chunk.length) {
      const expected = this.remaining === 2 ? CR : LF;
      if (chunk[offset] !== expected) return this.refuse(exchange, chunk, 'chunk data not followed by CRLF');
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
  private readLine(exchange: Exchange, chunk: Buffer, offset: number): number {
    const lf = chunk.indexOf(LF, offset);
    const end = lf === -1 ? chunk.length : lf;
    this.line += chunk.toString('latin1', offset, end);
    if (this.line.length > MAX_LINE) return this.refuse(exchange, chunk, 'chunk-size or trailer line too long');
    if (lf === -1) return chunk.length;
    const line = this.line;
    this.line = '';
    if (line.charCodeAt(line.length - 1) !== CR) return this.refuse(exchange, chunk, 'bare LF in chunked framing');
    const text = line.slice(0, -1);
    if (this.phase === Phase.Trailers) {
      if (text === '') {
        this.complete(exchange, lf + 1 < chunk.length);
        return chunk.length;
      }
      // Trailers are not relayed (the client's response is re-framed); malformed or endless ones are still refused.
      this.trailerBytes += line.length + 1;
      if (this.trailerBytes > this.pool.options.maxHeadBytes || CONTROL.test(text) || text.indexOf('\r') !== -1 || !TOKEN.test(text.slice(0, Math.max(0, text.indexOf(':'))))) {
        return this.refuse(exchange, chunk, 'malformed trailer');
      }
      return lf + 1;
    }
    const match = HEX_SIZE.exec(text);
    if (match === null) return this.refuse(exchange, chunk, 'malformed chunk size');
    const size = Number.parseInt(match[1]!, 16);
    if (size === 0) this.phase = Phase.Trailers;
    else {
      this.phase = Phase.ChunkData;
      this.remaining = size;
    }
    return lf + 1;
  }

  private deliver(exchange: Exchange, data: Buffer): void {
    if (!exchange.handler.onData(data) && this.exchange === exchange) this.socket.pause();
  }

  /** The response is complete; `trailingBytes`: the origin sent more than the response; `last`: its final bytes, not yet delivered. */
  private complete(exchange: Exchange, trailingBytes: boolean, last?: Buffer): void {
    this.exchange = null;
    this.phase = Phase.Idle;
    this.served++;
    this.silentMs = 0;
    const reusable = this.keepAlive && !trailingBytes && !this.socket.destroyed;
    if (this.socket.isPaused()) this.socket.resume();
    if (last === undefined) exchange.handler.onComplete();
    else exchange.handler.onLastData(last);
    if (reusable) this.pool.release(this);
    else this.socket.destroy();
  }

  private fail(exchange: Exchange, error: Error): void {
    this.exchange = null;
    this.phase = Phase.Idle;
    this.socket.destroy();
    if (!exchange.aborted) exchange.handler.onError(error);
  }

  private onSocketEnd(): void {
    const exchange = this.exchange;
    if (exchange !== null && this.phase === Phase.UntilClose) {
      this.exchange = null;
      this.phase = Phase.Idle;
      this.served++;
      exchange.handler.onComplete();
    }
    this.socket.destroy();
  }

  /** Counted against the origin's connection limit again (reading resumed, a new exchange, or closed). */
  private unstall(): void {
    if (!this.stalled) return;
    this.stalled = false;
    this.pool.unstall();
  }

  private onSocketClose(): void {
    this.unstall();
    const exchange = this.exchange;
    this.exchange = null;
    this.pool.forget(this);
    if (exchange === null || exchange.aborted) return;
    exchange.connection = null;
    // A kept-alive connection the origin closed just as the request went out: try once more on a fresh one (GET and HEAD are safe to repeat).
    if (!this.receivedAny && this.served > 0 && !exchange.retried) {
      exchange.retried = true;
      this.pool.dispatch(exchange);
      return;
    }
    const failure = this.failure;
    if (failure !== null) exchange.handler.onError(failure);
    else exchange.handler.onError(new OriginError('LACHAN_UPSTREAM_CLOSED', this.receivedAny ? 'origin closed the connection mid-response' : 'origin closed the connection without answering'));
  }

  private onSocketTimeout(): void {
    const options = this.pool.options;
    const tickMs = this.pool.tickMs;
    const exchange = this.exchange;
    let error: OriginError | null = null;
    if (!this.connected) {
      if (performance.now() - this.connectStartedAt >= options.connectTimeoutMs) error = new OriginError('LACHAN_UPSTREAM_CONNECT_TIMEOUT', 'connecting to the origin timed out');
    } else if (exchange === null) {
      this.silentMs += tickMs;
      if (this.silentMs >= options.idleMs) {
        this.socket.destroy();
        return;
      }
    } else if (this.phase === Phase.Head) {
      if (performance.now() - this.sentAt >= options.headersTimeoutMs) error = new OriginError('LACHAN_UPSTREAM_HEADERS_TIMEOUT', 'origin did not answer in time');
    } else if (this.socket.isPaused()) {
      // Paused: the client's socket is full. A client that stops reading altogether must not hold the origin connection for ever.
      this.pausedMs += tickMs;
      if (this.pausedMs >= 2 * options.bodyIdleMs) error = new OriginError('LACHAN_UPSTREAM_BODY_TIMEOUT', 'the client stopped reading the response');
      else if (!this.stalled && this.pausedMs >= STALLED_AFTER_MS) {
        this.stalled = true;
        this.pool.stall();
      }
    } else {
      this.silentMs += tickMs;
      if (this.silentMs >= options.bodyIdleMs) error = new OriginError('LACHAN_UPSTREAM_BODY_TIMEOUT', 'origin went silent mid-response');
    }
    if (error !== null) {
      if (exchange !== null) this.fail(exchange, error);
      else this.socket.destroy();
      return;
    }
    // A fired idle timer stays disarmed until the next read or write: silence must keep being counted.
    this.socket.setTimeout(tickMs);
  }
}

/** The connections to one origin (host and port), at most `connectionsPerOrigin` of them. */
class OriginPool {
  private readonly idle: OriginConnection[] = [];
  private readonly waiting: Exchange[] = [];
  private open = 0;
  /**
   * Connections held by clients that stopped reading. They do not count against the
   * limit: otherwise a few dozen never-reading clients of one site would make every
   * other request to it wait until their connections time out.
   */
  private stalled = 0;
  closed = false;

  constructor(
    readonly options: OriginClientOptions,
    readonly tickMs: number,
    private readonly hostname: string,
    private readonly port: number,
  ) {}

  dispatch(exchange: Exchange): void {
    if (this.closed) {
      exchange.handler.onError(new OriginError('LACHAN_UPSTREAM_CLOSED', 'the proxy is shutting down'));
      return;
    }
    // A connection destroyed this very tick stays listed until its 'close' event: pass over it.
    let connection = this.idle.pop();
    while (connection !== undefined && !connection.isUsable) connection = this.idle.pop();
    if (connection !== undefined) connection.send(exchange);
    else if (this.open - this.stalled >= this.options.connectionsPerOrigin) this.waiting.push(exchange);
    else this.connect(exchange);
  }

  private connect(exchange: Exchange): void {
    this.open++;
    this.options.resolve(this.hostname).then(
      (address) => {
        if (exchange.aborted) {
          this.open--;
          this.next();
          return;
        }
        try {
          new OriginConnection(this, address, this.port).send(exchange);
        } catch (error) {
          // net.connect refusing what the resolver gave: no socket, so no 'close' to count it down.
          this.open--;
          exchange.handler.onError(error as Error);
          this.next();
        }
      },
      (error: Error) => {
        this.open--;
        if (!exchange.aborted) exchange.handler.onError(error);
        this.next();
      },
    );
  }

  /** A connection finished its exchange and may serve another. */
  release(connection: OriginConnection): void {
    if (this.closed) {
      connection.close();
      return;
    }
    const exchange = this.takeWaiting();
    if (exchange !== undefined) connection.send(exchange);
    else this.idle.push(connection);
  }

  /** A connection closed. */
  forget(connection: OriginConnection): void {
    this.open--;
    const at = this.idle.indexOf(connection);
    if (at !== -1) this.idle.splice(at, 1);
    this.next();
  }

  private takeWaiting(): Exchange | undefined {
    let exchange = this.waiting.shift();
    while (exchange !== undefined && exchange.aborted) exchange = this.waiting.shift();
    return exchange;
  }

  /** A connection's client stopped reading: a request waiting for this origin may open another. */
  stall(): void {
    this.stalled++;
    this.next();
  }

  unstall(): void {
    this.stalled--;
  }

  private next(): void {
    if (this.closed || this.open - this.stalled >= this.options.connectionsPerOrigin) return;
    const exchange = this.takeWaiting();
    if (exchange !== undefined) this.connect(exchange);
  }

  close(): void {
    this.closed = true;
    for (const connection of this.idle.splice(0)) connection.close();
    for (const exchange of this.waiting.splice(0)) {
      if (!exchange.aborted) exchange.handler.onError(new OriginError('LACHAN_UPSTREAM_CLOSED', 'the proxy is shutting down'));
    }
  }

  get isEmpty(): boolean {
    return this.open === 0 && this.waiting.length === 0;
  }
}

export class OriginClient {
  private readonly pools = new Map<string, OriginPool>();
  /** How often a connection checks its deadlines: the finest of them, at most a second. */
  private readonly tickMs: number;
  private closed = false;
  private pruneAt = MIN_PRUNE_AT;

  constructor(readonly options: OriginClientOptions) {
    this.tickMs = Math.max(50, Math.min(1000, options.connectTimeoutMs, options.headersTimeoutMs, options.bodyIdleMs, options.idleMs));
  }

  /** Sends one request; the handler hears of it exactly as from undici's dispatch. */
  request(request: OriginRequest, handler: OriginResponseHandler): void {
    const exchange = new Exchange(request, handler);
    handler.onConnect(exchange.abort);
    if (exchange.aborted) return;
    const key = `${request.hostname}:${request.port}`;
    let pool = this.pools.get(key);
    if (pool === undefined) {
      if (this.pools.size >= this.pruneAt) this.prune();
      pool = new OriginPool(this.options, this.tickMs, request.hostname, request.port);
      if (this.closed) pool.close();
      this.pools.set(key, pool);
    }
    pool.dispatch(exchange);
  }

  /** Drops the pools with no connection left, so that one-off origins do not pile up; at most once per doubling. */
  private prune(): void {
    for (const [key, pool] of this.pools) if (pool.isEmpty) this.pools.delete(key);
    this.pruneAt = Math.max(MIN_PRUNE_AT, 2 * this.pools.size);
  }

  /** Closes idle connections now and every connection as it finishes. */
  close(): void {
    this.closed = true;
    for (const pool of this.pools.values()) pool.close();
  }
}

/** The request head for the origin: request line, the given fields, blank line. */
export function requestHead(method: string, pathAndQuery: string, rawHeaders: readonly string[]): string {
  let head = `${method} ${pathAndQuery} HTTP/1.1\r\n`;
  for (let i = 0; i < rawHeaders.length; i += 2) head += `${rawHeaders[i]!}: ${rawHeaders[i + 1]!}\r\n`;
  return `${head}\r\n`;
}
