import type { Socket } from 'node:net';
import { dialOrigin, type TlsDial } from './dial-origin.js';
import { ResponseReader, type ResponseReaderEvents } from './http1/response-reader.js';
import type { ResponseHead } from './http1/response-head.js';
import { OriginError } from './origin-error.js';
import type { Exchange, ExchangeCarrier, OriginClientOptions, UnparsedHeaders } from './origin-exchange.js';

/**
 * One connection to an origin (TCP, or TLS for an `https:` origin), serving one exchange
 * at a time: writes the request head, feeds what it reads to a ResponseReader and relays the reader's events to the
 * exchange's handler. It keeps the deadlines (connect, response head, body silence),
 * the handler's back-pressure (the controller's pause and resume pause the socket), and
 * the rule for clients that stop reading (see onSocketTimeout).
 */

/** What a connection asks of the pool that opened it (origin-pool.ts). */
export interface ConnectionOwner {
  readonly options: OriginClientOptions;
  /** Null: plain TCP. */
  readonly tls: TlsDial | null;
  /** How often connections check their deadlines. */
  readonly tickMs: number;
  /** The connection finished its exchange and may serve another. */
  release(connection: OriginConnection): void;
  /** The connection closed. */
  forget(connection: OriginConnection): void;
  /** Sends an exchange again, on another connection. */
  dispatch(exchange: Exchange): void;
  /** The connection's client stopped reading (stall) or reads again, or the connection closed (unstall). */
  stall(): void;
  unstall(): void;
}

/** A connection paused this long for its client is taken to be held by a client that is not reading. */
const STALLED_AFTER_MS = 2_000;
/**
 * What the handler gets for undici's parsed headers and trailers: nothing. Building an
 * object of lower-cased names for every response cost about 5% of the client's CPU per
 * request, for a handler that reads the fields from controller.rawHeaders anyway;
 * trailers are read and dropped (the client's response is re-framed).
 */
const UNPARSED: UnparsedHeaders = Object.freeze({});

export class OriginConnection implements ResponseReaderEvents, ExchangeCarrier {
  private readonly socket: Socket;
  private readonly reader: ResponseReader;
  private exchange: Exchange | null = null;
  /** Exchanges completed on this connection: a reused connection may have been closed by the origin meanwhile. */
  private served = 0;
  private keepAlive = false;
  private receivedAny = false;
  /** When the request went out: the origin has headersTimeoutMs from then to finish its head, 1xx answers or not. */
  private sentAt = 0;
  /** Time without bytes (or, paused, without room at the client), counted in ticks of the socket's idle timer. */
  private silentMs = 0;
  private pausedMs = 0;
  /** Paused so long that its client is taken not to be reading: no longer counted against the origin's connection limit. */
  private stalled = false;
  private failure: Error | null = null;

  constructor(
    private readonly owner: ConnectionOwner,
    address: string,
    port: number,
  ) {
    this.reader = new ResponseReader(this, owner.options.maxHeadBytes);
    // The request head written before the connection is up waits in the socket; the dial keeps the connect deadline.
    const socket = dialOrigin(
      { address, port, tls: owner.tls, connectTimeoutMs: owner.options.connectTimeoutMs },
      {
        onConnected: () => {
          socket.on('error', (error: Error) => {
            this.failure ??= error;
          });
          // The other deadlines are counted in ticks of the socket's idle timer, from here on.
          socket.setTimeout(owner.tickMs);
        },
        onDialFailed: (error) => {
          this.failure = error;
        },
      },
    );
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    socket.on('end', () => this.onSocketEnd());
    socket.on('close', () => this.onSocketClose());
    socket.on('timeout', () => this.onSocketTimeout());
  }

  /** Sends `exchange`'s request on this connection. */
  send(exchange: Exchange): void {
    this.exchange = exchange;
    exchange.connection = this;
    this.reader.start(exchange.request.isHead);
    this.receivedAny = false;
    this.silentMs = 0;
    this.pausedMs = 0;
    this.unstall();
    this.sentAt = performance.now();
    this.socket.write(exchange.request.head, 'latin1');
  }

  /** The client went away: the rest of this response is not wanted, and the connection cannot be reused. */
  abandon(exchange: Exchange): void {
    if (this.exchange !== exchange) return;
    this.exchange = null;
    this.reader.stop();
    this.socket.destroy();
  }

  pauseFor(exchange: Exchange): void {
    if (this.exchange === exchange) this.socket.pause();
  }

  resumeFor(exchange: Exchange): void {
    if (this.exchange === exchange) this.socket.resume();
  }

  get isUsable(): boolean {
    return !this.socket.destroyed;
  }

  /** Closes an idle connection. */
  close(): void {
    this.socket.destroy();
  }

  onHead(head: ResponseHead): void {
    const exchange = this.exchange!;
    this.keepAlive = head.keepAlive;
    exchange.rawHeaders = head.fields;
    exchange.handler.onResponseStart(exchange, head.status, UNPARSED);
  }

  onData(chunk: Buffer): void {
    const exchange = this.exchange!;
    exchange.handler.onResponseData(exchange, chunk);
  }

  /** The response is complete; `trailingBytes`: the origin sent more than the response; `last`: its final bytes, not yet delivered. */
  onEnd(last: Buffer | undefined, trailingBytes: boolean): void {
    const exchange = this.exchange!;
    this.exchange = null;
    this.served++;
    this.silentMs = 0;
    const reusable = this.keepAlive && !trailingBytes && !this.socket.destroyed;
    if (this.socket.isPaused()) this.socket.resume();
    if (last === undefined) exchange.handler.onResponseEnd(exchange, UNPARSED);
    else exchange.handler.onResponseLastData(exchange, last);
    if (reusable) this.owner.release(this);
    else this.socket.destroy();
  }

  onError(error: OriginError): void {
    this.fail(this.exchange!, error);
  }

  private onSocketData(chunk: Buffer): void {
    const exchange = this.exchange;
    if (exchange === null || this.reader.idle) {
      // Bytes nobody asked for: the origin is not speaking HTTP/1.1 as agreed.
      this.socket.destroy();
      return;
    }
    this.receivedAny = true;
    this.silentMs = 0;
    this.pausedMs = 0;
    this.unstall();
    // Neither a head trickled in nor a stream of 1xx answers extends the deadline: it counts from the request.
    if (this.reader.midHead && performance.now() - this.sentAt > this.owner.options.headersTimeoutMs) {
      this.fail(exchange, new OriginError('LACHAN_UPSTREAM_HEADERS_TIMEOUT', 'origin did not finish its response head in time'));
      return;
    }
    this.reader.feed(chunk);
  }

  private fail(exchange: Exchange, error: Error): void {
    this.exchange = null;
    this.reader.stop();
    this.socket.destroy();
    if (!exchange.aborted) exchange.handler.onResponseError(exchange, error);
  }

  private onSocketEnd(): void {
    const exchange = this.exchange;
    // A body delimited by the close ends here (onEnd); anything else is cut short (onSocketClose).
    if (exchange !== null) this.reader.endOfInput();
    this.socket.destroy();
  }

  /** Counted against the origin's connection limit again (reading resumed, a new exchange, or closed). */
  private unstall(): void {
    if (!this.stalled) return;
    this.stalled = false;
    this.owner.unstall();
  }

  private onSocketClose(): void {
    this.unstall();
    const exchange = this.exchange;
    this.exchange = null;
    this.reader.stop();
    this.owner.forget(this);
    if (exchange === null || exchange.aborted) return;
    exchange.connection = null;
    // A kept-alive connection the origin closed just as the request went out: try once more on a fresh one (GET and HEAD are safe to repeat).
    if (!this.receivedAny && this.served > 0 && !exchange.retried) {
      exchange.retried = true;
      this.owner.dispatch(exchange);
      return;
    }
    const failure = this.failure;
    if (failure !== null) exchange.handler.onResponseError(exchange, failure);
    else
      exchange.handler.onResponseError(
        exchange,
        new OriginError(
          'LACHAN_UPSTREAM_CLOSED',
          this.receivedAny ? 'origin closed the connection mid-response' : 'origin closed the connection without answering',
        ),
      );
  }

  private onSocketTimeout(): void {
    const options = this.owner.options;
    const tickMs = this.owner.tickMs;
    const exchange = this.exchange;
    let error: OriginError | null = null;
    if (exchange === null) {
      this.silentMs += tickMs;
      if (this.silentMs >= options.idleMs) {
        this.socket.destroy();
        return;
      }
    } else if (this.reader.awaitingHead) {
      if (performance.now() - this.sentAt >= options.headersTimeoutMs)
        error = new OriginError('LACHAN_UPSTREAM_HEADERS_TIMEOUT', 'origin did not answer in time');
    } else if (this.socket.isPaused()) {
      // Paused: the client's socket is full. A client that stops reading altogether must not hold the origin connection for ever.
      this.pausedMs += tickMs;
      if (this.pausedMs >= 2 * options.bodyIdleMs) error = new OriginError('LACHAN_UPSTREAM_BODY_TIMEOUT', 'the client stopped reading the response');
      else if (!this.stalled && this.pausedMs >= STALLED_AFTER_MS) {
        this.stalled = true;
        this.owner.stall();
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
