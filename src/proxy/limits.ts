export interface ProxyLimits {
  /** Largest request head accepted (431 beyond). */
  readonly maxHeaderBytes: number;
  /** Time a client has to send its request head: slow clients cannot pin sockets. */
  readonly headersTimeoutMs: number;
  /** Idle client keep-alive connections are closed after this. */
  readonly clientIdleMs: number;
  /** Tunnels and upgraded connections with no traffic either way are closed after this. */
  readonly tunnelIdleMs: number;
  readonly upstreamConnectTimeoutMs: number;
  /** Time the origin has to answer with headers (504 beyond). */
  readonly upstreamHeadersTimeoutMs: number;
  readonly upstreamBodyIdleMs: number;
  readonly upstreamConnectionsPerOrigin: number;
  /** Client connections one worker holds. */
  readonly maxConnections: number;
  /** Client connections one client address holds (see admission.ts). */
  readonly maxClientConnections: number;
}

export const DEFAULT_LIMITS: ProxyLimits = {
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 15_000,
  clientIdleMs: 30_000,
  tunnelIdleMs: 10 * 60_000,
  upstreamConnectTimeoutMs: 10_000,
  upstreamHeadersTimeoutMs: 30_000,
  upstreamBodyIdleMs: 60_000,
  upstreamConnectionsPerOrigin: 64,
  maxConnections: 8192,
  // A lab of 40 computers behind one NAT address, browsers keeping ~10 connections each, fits.
  maxClientConnections: 512,
};

export function withDefaultLimits(limits: Partial<ProxyLimits> | undefined): ProxyLimits {
  return { ...DEFAULT_LIMITS, ...limits };
}
