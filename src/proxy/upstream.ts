import { Agent, buildConnector, errors as undiciErrors } from 'undici';
import { OriginClient, OriginError } from './origin-client.js';
import type { ErrorKind } from './pages.js';
import { ResolveError, type Resolver } from './resolver.js';
import type { ProxyLimits } from './limits.js';
import { sniName } from './target.js';

/**
 * The clients the proxy forwards through, built by the caller (src/cli/serve.ts) and
 * handed to the proxy, so that what dials origins can be chosen (and shared, or
 * replaced in a bench) without touching the request path.
 */
export interface Upstream {
  /** Everything but the fast path below: requests with a body and methods other than GET and HEAD. */
  readonly agent: Agent;
  /** Bodiless GET and HEAD, to `http:` origins and (inside intercepted tunnels) `https:` ones: nearly all traffic (see origin-client.ts). */
  readonly origins: OriginClient;
  close(): Promise<void>;
}

/** Idle keep-alive connections to origins are closed after this (origins commonly close theirs after 5 s). */
const UPSTREAM_IDLE_MS = 4_000;
/** Largest response head taken from an origin (large cookie and policy headers exist; 16 KiB is Node's request limit). */
const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;

/** Both clients dial only what `resolver` vetted: resolved and checked in one place, no second lookup. */
export function createUpstream(resolver: Resolver, limits: ProxyLimits): Upstream {
  const connector = buildConnector({ timeout: limits.upstreamConnectTimeoutMs });
  const agent = new Agent({
    connect: (connectOptions, callback) => {
      resolver.resolve(connectOptions.hostname).then(
        // The address dialled replaces the hostname, so the server name is given from the host asked
        // for: none for an address literal (RFC 6066), whose certificate is checked against the address.
        (destination) =>
          connector({ ...connectOptions, hostname: destination.address, servername: connectOptions.servername ?? sniName(connectOptions.hostname) }, callback),
        (error: Error) => callback(error, null),
      );
    },
    connections: limits.upstreamConnectionsPerOrigin,
    headersTimeout: limits.upstreamHeadersTimeoutMs,
    bodyTimeout: limits.upstreamBodyIdleMs,
    keepAliveTimeout: UPSTREAM_IDLE_MS,
  });
  const origins = new OriginClient({
    resolve: (hostname) => resolver.resolve(hostname).then((destination) => destination.address),
    connectTimeoutMs: limits.upstreamConnectTimeoutMs,
    headersTimeoutMs: limits.upstreamHeadersTimeoutMs,
    bodyIdleMs: limits.upstreamBodyIdleMs,
    connectionsPerOrigin: limits.upstreamConnectionsPerOrigin,
    idleMs: UPSTREAM_IDLE_MS,
    maxHeadBytes: MAX_RESPONSE_HEAD_BYTES,
  });
  return {
    agent,
    origins,
    async close() {
      origins.close();
      await agent.close().catch(() => undefined);
    },
  };
}

/** Which error page an upstream failure gets. */
export function classifyUpstreamError(error: unknown): ErrorKind {
  if (error instanceof ResolveError) return error.code === 'LACHAN_FORBIDDEN_DESTINATION' ? 'forbidden-destination' : 'dns';
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (error instanceof OriginError) return error.isTimeout ? 'timeout' : 'connect';
  if (
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.ConnectTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    code === 'ETIMEDOUT'
  )
    return 'timeout';
  if (code === 'LACHAN_FORBIDDEN_DESTINATION') return 'forbidden-destination';
  if (code === 'LACHAN_DNS_FAILED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns';
  if (code === 'ECONNREFUSED') return 'refused';
  if (
    code === 'CERT_HAS_EXPIRED' ||
    code === 'DEPTH_ZERO_SELF_SIGNED_CERT' ||
    code === 'SELF_SIGNED_CERT_IN_CHAIN' ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ||
    code === 'ERR_TLS_CERT_ALTNAME_INVALID'
  )
    return 'upstream-certificate';
  return 'connect';
}
