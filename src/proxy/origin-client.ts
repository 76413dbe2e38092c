import { OriginPool } from './origin-pool.js';
import { Exchange, type OriginClientOptions, type OriginRequest, type OriginResponseHandler } from './origin-exchange.js';

/**
 * The hot path's upstream client: HTTP/1.1 over pooled keep-alive connections, TCP or
 * TLS, for the requests that make up nearly all of a school's traffic (GET and HEAD
 * without a body, to `http:` origins and, inside intercepted tunnels, `https:` ones).
 * Everything else (request bodies, upgrades) still goes through undici.
 *
 * Why not undici here: measured on the bench's box, one core, 1 KB responses, the
 * bare undici forward proxy spends 46 µs of CPU a request and a proxy whose upstream
 * side is a plain socket and a head parser 32 µs (bench/RESULTS.md). undici's general
 * machinery (its Request object and header validation, the dispatcher queue, timers
 * per request, the llhttp WebAssembly parser calling back into JavaScript for every
 * header field and value) is most of the difference. This client does one thing: it
 * writes a request head the proxy has already vetted and reads the response strictly.
 * Intercepted HTTPS went through undici until the same difference showed there: about a
 * fifth of the CPU of an intercepted 1 KB request (bench/RESULTS.md, "Intercepted HTTPS
 * through the origin client").
 *
 * In parts, after undici's shape: http1/response-head.ts and http1/response-reader.ts
 * read responses without I/O; origin-connection.ts is one socket and its deadlines;
 * origin-pool.ts the connections to one origin; this file the pools. The handler is
 * undici 7's (origin-exchange.ts), so one handler serves both clients. A malformed
 * response (splitting, smuggling; see response-head.ts and response-reader.ts) is an
 * error (a 502 page if nothing was sent yet), and its connection is closed, not reused.
 */

export { OriginError, type OriginErrorCode } from './origin-error.js';
export { parseResponseHead, Framing, type ResponseHead } from './http1/response-head.js';
export type { OriginClientOptions, OriginRequest, OriginResponseHandler, UnparsedHeaders } from './origin-exchange.js';

/** Origin pools kept before the empty ones are dropped. */
const MIN_PRUNE_AT = 4096;
/** undici passes retry state here; the origin client has none to pass. */
const NO_CONTEXT = Object.freeze({});

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
    handler.onRequestStart(exchange, NO_CONTEXT);
    if (exchange.aborted) return;
    const key = request.secure ? `https://${request.hostname}:${request.port}` : `${request.hostname}:${request.port}`;
    let pool = this.pools.get(key);
    if (pool === undefined) {
      if (this.pools.size >= this.pruneAt) this.prune();
      pool = new OriginPool(this.options, this.tickMs, request.hostname, request.port, request.secure);
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
