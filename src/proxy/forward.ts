import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { clientResponseRawHeaders } from './headers.js';
import type { OriginResponseHandler } from './origin-exchange.js';

/** What the proxy does around one forwarded request; one object serves every request. */
export interface ForwardEvents {
  /** Response headers arrived after `startedMs` (performance.now()), for the latency histogram. */
  onResponseStart(startedMs: number): void;
  /** The origin failed before or while answering; `res.headersSent` says whether a page can still be sent. */
  onUpstreamError(error: Error, res: ServerResponse, host: string): void;
  onFinished(res: ServerResponse, host: string, profile: string): void;
}

const HANDLER = Symbol('lachan.forwardHandler');
type HandledResponse = ServerResponse & { [HANDLER]?: ForwardHandler };

// Shared listeners (`this` is the response): no closures per request.
function onDrain(this: HandledResponse): void {
  this[HANDLER]?.resume();
}

function onClientClose(this: HandledResponse): void {
  this[HANDLER]?.clientGone();
}

/** The fields as name, value pairs, whichever form the controller holds them in. */
function rawFields(controller: Dispatcher.DispatchController, headers: IncomingHttpHeaders): readonly (Buffer | string)[] {
  const raw = controller.rawHeaders;
  if (Array.isArray(raw)) return raw;
  const flat: string[] = [];
  for (const [name, value] of Object.entries(raw ?? headers)) {
    if (Array.isArray(value)) for (const item of value) flat.push(name, item);
    else if (value !== undefined) flat.push(name, String(value));
  }
  return flat;
}

/**
 * Streams one origin response into the client's ServerResponse, from the origin client
 * (origin-client.ts) or undici's `dispatch`: both call undici 7's handler API. Chunks
 * are written as they arrive, with no body stream or pipeline in between, and
 * back-pressure both ways — a full client socket pauses the origin (the controller's
 * pause()) until 'drain'; a client that goes away aborts the upstream request. The
 * request's context lives in the handler's fields, so forwarding allocates no closures
 * per request.
 *
 * The response reaches the client through two methods only, respondHead and
 * respondBody: the place for anything that must see (or change) every response.
 */
export class ForwardHandler implements OriginResponseHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private done = false;
  private listensForDrain = false;
  /**
   * The response head, held until the first body byte or the end: Node sends a head
   * only with the first write anyway, and until then a framing error found in the
   * origin's body can still be answered with the 502 page instead of a cut connection.
   */
  private headStatus = 0;
  private head: string[] | null = null;

  constructor(
    private readonly res: ServerResponse,
    private readonly events: ForwardEvents,
    private readonly host: string,
    private readonly profile: string,
    private readonly startedMs: number,
  ) {
    (res as HandledResponse)[HANDLER] = this;
    // 'close' comes once: `on` spares the wrapper `once` allocates. 'drain' is listened
    // for only once the client's socket has been full (see respondBody).
    res.on('close', onClientClose);
  }

  /** The client's socket has room again. */
  resume(): void {
    // Once done, the controller has nothing left to resume.
    if (!this.done) this.controller?.resume();
  }

  /** The client went away: the upstream request is not wanted any more. */
  clientGone(): void {
    if (!this.done) {
      this.done = true;
      this.controller?.abort(new Error('client went away'));
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController, _context: unknown): void {
    this.controller = controller;
    if (this.done) controller.abort(new Error('client went away'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // 1xx informational answers (100 Continue, 103 Early Hints) are not relayed.
    if (statusCode < 200) return;
    this.events.onResponseStart(this.startedMs);
    this.respondHead(statusCode, rawFields(controller, headers));
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.respondBody(chunk, false);
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, _trailers: IncomingHttpHeaders): void {
    this.respondBody(undefined, true);
  }

  /** The last bytes and the end at once (origin client): one write to the client. */
  onResponseLastData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.respondBody(chunk, true);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.done) return;
    this.done = true;
    this.events.onUpstreamError(error, this.res, this.host);
  }

  /** Every response head, on its way to the client. */
  private respondHead(status: number, fields: readonly (Buffer | string)[]): void {
    this.headStatus = status;
    this.head = clientResponseRawHeaders(fields);
  }

  /** Every body chunk, on its way to the client; `last`: the response ends with it (`chunk` may then be absent). */
  private respondBody(chunk: Buffer | undefined, last: boolean): void {
    if (this.done) return;
    if (this.head !== null) {
      this.res.writeHead(this.headStatus, this.head);
      this.head = null;
    }
    if (last) {
      this.done = true;
      this.res.end(chunk);
      this.events.onFinished(this.res, this.host, this.profile);
      return;
    }
    if (this.res.write(chunk!)) return;
    this.controller?.pause();
    if (!this.listensForDrain) {
      this.listensForDrain = true;
      this.res.on('drain', onDrain);
    }
  }
}
