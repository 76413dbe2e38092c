import type { Dispatcher } from 'undici';

/** One request to send: its head, written by the caller (request line, fields, blank line). */
export interface OriginRequest {
  /** The URL hostname, as `URL.hostname` gives it. */
  readonly hostname: string;
  readonly port: number;
  /** An `https:` origin: the connection is TLS, the origin's certificate verified for `hostname`. */
  readonly secure: boolean;
  readonly head: string;
  /** A HEAD request: the response has no body whatever its fields say. */
  readonly isHead: boolean;
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

/** Where undici passes headers parsed into an object, the origin client passes none: read controller.rawHeaders. */
export type UnparsedHeaders = Readonly<Record<string, never>>;

/**
 * What the origin client calls: undici 7's handler API (Dispatcher.DispatchHandler), so
 * one handler serves both clients, plus onResponseLastData. The response's fields are in
 * the controller's rawHeaders (name, value, …), not in an object (see UnparsedHeaders).
 */
export interface OriginResponseHandler {
  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void;
  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: UnparsedHeaders, statusMessage?: string): void;
  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void;
  onResponseEnd(controller: Dispatcher.DispatchController, trailers: UnparsedHeaders): void;
  /** The response's last bytes and its end: one call where undici makes two, so the client gets them in one write. */
  onResponseLastData(controller: Dispatcher.DispatchController, chunk: Buffer): void;
  onResponseError(controller: Dispatcher.DispatchController, error: Error): void;
}

/** What an exchange asks of the connection serving it. */
export interface ExchangeCarrier {
  abandon(exchange: Exchange): void;
  pauseFor(exchange: Exchange): void;
  resumeFor(exchange: Exchange): void;
}

/**
 * One request, from dispatch to its last callback, and the controller its handler is
 * given; it may move to a fresh connection once (see OriginConnection.onSocketClose).
 */
export class Exchange implements Dispatcher.DispatchController {
  retried = false;
  /** The connection serving it now, or null while it waits for one. */
  connection: ExchangeCarrier | null = null;
  rawHeaders: string[] | null = null;
  private isAborted = false;
  private isPaused = false;
  private abortReason: Error | null = null;

  constructor(
    readonly request: OriginRequest,
    readonly handler: OriginResponseHandler,
  ) {}

  get aborted(): boolean {
    return this.isAborted;
  }

  get paused(): boolean {
    return this.isPaused;
  }

  get reason(): Error | null {
    return this.abortReason;
  }

  /** Aborts this exchange wherever it is (queued, connecting, mid-response), and nothing else; no callback follows. */
  abort(reason?: Error): void {
    if (this.isAborted) return;
    this.isAborted = true;
    this.abortReason = reason ?? null;
    this.connection?.abandon(this);
  }

  /** The client's socket is full: stop reading from the origin until resume(). */
  pause(): void {
    if (this.isPaused) return;
    this.isPaused = true;
    this.connection?.pauseFor(this);
  }

  resume(): void {
    if (!this.isPaused) return;
    this.isPaused = false;
    this.connection?.resumeFor(this);
  }
}
