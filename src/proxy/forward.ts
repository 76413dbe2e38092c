import type { ServerResponse } from 'node:http';
import { clientResponseRawHeaders } from './headers.js';

export interface ForwardEvents {
  /** Response headers arrived (for the latency histogram). */
  onResponseStart(): void;
  /** The origin failed before or while answering; `headersSent` says whether a page can still be sent. */
  onUpstreamError(error: Error, headersSent: boolean): void;
  onFinished(status: number): void;
}

/**
 * Streams one origin response into the client's ServerResponse through undici's
 * `dispatch` (classic handler shape, which its Client takes): chunks are written as
 * they arrive, with no body stream or pipeline in between, and back-pressure both
 * ways — a full client socket pauses the origin (onData returns false) until 'drain';
 * a client that goes away aborts the upstream request.
 */
export class ForwardHandler {
  private abortUpstream: ((error?: Error) => void) | null = null;
  private resumeUpstream: (() => void) | null = null;
  private done = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly events: ForwardEvents,
  ) {
    res.on('drain', () => this.resumeUpstream?.());
    res.once('close', () => {
      if (!this.done) {
        this.done = true;
        this.abortUpstream?.(new Error('client went away'));
      }
    });
  }

  onConnect(abort: (error?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.done) abort(new Error('client went away'));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // 1xx informational answers (100 Continue, 103 Early Hints) are not relayed.
    if (statusCode < 200) return true;
    this.resumeUpstream = resume;
    this.events.onResponseStart();
    this.res.writeHead(statusCode, clientResponseRawHeaders(rawHeaders));
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.res.write(chunk);
  }

  onComplete(): void {
    if (this.done) return;
    this.done = true;
    this.res.end();
    this.events.onFinished(this.res.statusCode);
  }

  onError(error: Error): void {
    if (this.done) return;
    this.done = true;
    this.events.onUpstreamError(error, this.res.headersSent);
  }
}
