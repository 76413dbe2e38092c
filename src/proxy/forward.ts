import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Policy } from '../policy/engine.js';
import type { Flow } from './flow.js';
import { clientResponseRawHeaders } from './headers.js';
import type { OriginResponseHandler } from './origin-exchange.js';
import type { ContentInspection, ContentInspector, ContentVerdict, InspectedHeaders } from '../content/inspector.js';

/** What the proxy does around one forwarded request; one object serves every request. */
export interface ForwardEvents {
  /** Response headers arrived after `startedMs` (performance.now()), for the latency histogram. */
  onResponseStart(startedMs: number): void;
  /** The origin failed before or while answering; `res.headersSent` says whether a page can still be sent. */
  onUpstreamError(error: Error, res: ServerResponse, host: string): void;
  onFinished(res: ServerResponse, host: string, profile: string): void;
  /**
   * Content inspection blocked the response of `flow`, read with `policy`'s rules
   * (docs/contract.md §8): record it, then the block page if nothing was sent yet,
   * else cut the response.
   */
  onContentBlocked(verdict: ContentVerdict, res: ServerResponse, flow: Flow, policy: Policy): void;
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
  /** Set when this response's body is read (text of an inspected profile): chunks then go through it. */
  private inspector: ContentInspector | null = null;

  /**
   * `inspection`: the response is read with it (text of a profile with content_limit),
   * and a verdict is answered with `policy`'s pages, the rules the request was decided
   * with. Both are shared by every response of the profile: an inspected request costs
   * no object of its own until its head shows a body to read.
   */
  constructor(
    private readonly res: ServerResponse,
    private readonly events: ForwardEvents,
    private readonly flow: Flow,
    private readonly startedMs: number,
    private readonly inspection: ContentInspection | null = null,
    private readonly policy: Policy | null = null,
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
      this.inspector?.release();
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
    this.inspector?.release();
    this.events.onUpstreamError(error, this.res, this.flow.target.host);
  }

  /** Every response head, on its way to the client. */
  private respondHead(status: number, fields: readonly (Buffer | string)[]): void {
    this.headStatus = status;
    this.head = clientResponseRawHeaders(fields);
    if (this.inspection !== null && status !== 204 && status !== 304 && this.flow.method !== 'HEAD')
      this.inspector = beginInspector(this.inspection, this.head);
  }

  /** Every body chunk, on its way to the client; `last`: the response ends with it (`chunk` may then be absent). */
  private respondBody(chunk: Buffer | undefined, last: boolean): void {
    if (this.done) return;
    if (this.inspector !== null) return this.inspectBody(chunk, last);
    if (last) return this.finish(chunk);
    this.send(chunk!);
  }

  private send(chunk: Buffer): void {
    this.writeHeadOnce();
    if (this.res.write(chunk)) return;
    this.controller?.pause();
    if (!this.listensForDrain) {
      this.listensForDrain = true;
      this.res.on('drain', onDrain);
    }
  }

  private finish(chunk: Buffer | undefined): void {
    this.writeHeadOnce();
    this.done = true;
    this.inspector?.release();
    this.res.end(chunk);
    this.events.onFinished(this.res, this.flow.target.host, this.flow.client.profile);
  }

  private writeHeadOnce(): void {
    if (this.head !== null) {
      this.res.writeHead(this.headStatus, this.head);
      this.head = null;
    }
  }

  /**
   * The body is read chunk by chunk as it arrives (a compressed one is inflated in the
   * same call), and what the inspector passes goes out in the same call: a small page
   * arriving in one piece costs one scan and one write, with nothing queued. The head
   * goes out with the first bytes the inspector passes, so a verdict on the held-back
   * prefix can still answer with the block page. The inspector passes the origin's
   * bytes unchanged, so the origin's Content-Length stays true.
   */
  private inspectBody(chunk: Buffer | undefined, last: boolean): void {
    const inspector = this.inspector!;
    if (!last) {
      if (chunk === undefined || chunk.length === 0) return;
      const step = inspector.write(chunk);
      if (step.verdict !== undefined) return this.contentBlocked(step.verdict);
      for (const bytes of step.pass) this.send(bytes);
      return;
    }
    const final = inspector.end(chunk);
    if (final.verdict !== undefined) return this.contentBlocked(final.verdict);
    // The last piece goes with the end of the response: a page read in one piece is one end(body).
    const pass = final.pass;
    for (let i = 0; i < pass.length - 1; i++) this.send(pass[i]!);
    this.finish(pass.length === 0 ? undefined : pass[pass.length - 1]);
  }

  private contentBlocked(verdict: ContentVerdict): void {
    this.done = true;
    this.head = null;
    this.inspector!.release();
    this.controller?.abort(new Error('blocked by content'));
    this.events.onContentBlocked(verdict, this.res, this.flow, this.policy!);
  }
}

const NO_FIELDS: InspectedHeaders = {};

/**
 * The inspector for a response head (clean name, value pairs), or null when its body is
 * not read: Content-Type, Content-Encoding and Content-Disposition (the first of each)
 * found in one pass, a field's name lower-cased only when it may be one of them.
 */
function beginInspector(inspection: ContentInspection, fields: readonly string[]): ContentInspector | null {
  let type: string | undefined;
  let encoding: string | undefined;
  let disposition: string | undefined;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const length = name.length;
    if ((length !== 12 && length !== 16 && length !== 19) || (name.charCodeAt(0) | 0x20) !== 0x63) continue;
    const lower = name.toLowerCase();
    if (lower === 'content-type') type ??= fields[i + 1];
    else if (lower === 'content-encoding') encoding ??= fields[i + 1];
    else if (lower === 'content-disposition') disposition ??= fields[i + 1];
  }
  return inspection.begin(type, encoding, disposition === undefined ? NO_FIELDS : { 'content-disposition': disposition });
}
