import type { ServerResponse } from 'node:http';
import { clientResponseRawHeaders } from './headers.js';

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

/**
 * Streams one origin response into the client's ServerResponse, from the origin
 * client (origin-client.ts) or undici's `dispatch` (classic handler shape, which both
 * take): chunks are written as
 * they arrive, with no body stream or pipeline in between, and back-pressure both
 * ways — a full client socket pauses the origin (onData returns false) until 'drain';
 * a client that goes away aborts the upstream request. The request's context lives
 * in the handler's fields, so forwarding allocates no closures per request.
 */
export class ForwardHandler {
  private abortUpstream: ((error?: Error) => void) | null = null;
  private resumeUpstream: (() => void) | null = null;
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
    // for only once the client's socket has been full (see onData).
    res.on('close', onClientClose);
  }

  /** The client's socket has room again. */
  resume(): void {
    // Once done, the upstream connection may already be serving another request.
    if (!this.done) this.resumeUpstream?.();
  }

  /** The client went away: the upstream request is not wanted any more. */
  clientGone(): void {
    if (!this.done) {
      this.done = true;
      this.abortUpstream?.(new Error('client went away'));
    }
  }

  onConnect(abort: (error?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.done) abort(new Error('client went away'));
  }

  onHeaders(statusCode: number, rawHeaders: readonly (Buffer | string)[], resume: () => void): boolean {
    // 1xx informational answers (100 Continue, 103 Early Hints) are not relayed.
    if (statusCode < 200) return true;
    this.resumeUpstream = resume;
    this.events.onResponseStart(this.startedMs);
    this.headStatus = statusCode;
    this.head = clientResponseRawHeaders(rawHeaders);
    return true;
  }

  private writeHead(): void {
    if (this.head === null) return;
    this.res.writeHead(this.headStatus, this.head);
    this.head = null;
  }

  onData(chunk: Buffer): boolean {
    this.writeHead();
    if (this.res.write(chunk)) return true;
    if (!this.listensForDrain) {
      this.listensForDrain = true;
      this.res.on('drain', onDrain);
    }
    return false;
  }

  onComplete(): void {
    this.finish(undefined);
  }

  /** The last bytes and the end at once (origin client): one write to the client. */
  onLastData(chunk: Buffer): void {
    this.finish(chunk);
  }

  private finish(last: Buffer | undefined): void {
    if (this.done) return;
    this.done = true;
    this.writeHead();
    this.res.end(last);
    this.events.onFinished(this.res, this.host, this.profile);
  }

  onError(error: Error): void {
    if (this.done) return;
    this.done = true;
    this.events.onUpstreamError(error, this.res, this.host);
  }
}
