import type { Target } from './target.js';

/**
 * One request or tunnel on its way through the proxy, whichever way it came in. Modes
 * (server.ts, transparent.ts, intercept.ts) only build flows; what happens to a flow
 * is decided in one place (pipeline.ts).
 */
export type FlowMode =
  /** Absolute-form HTTP on the proxy port. */
  | 'forward'
  /** Origin-form HTTP redirected to a transparent port: `Host` names the target. */
  | 'transparent-http'
  /** A request inside an intercepted TLS tunnel. */
  | 'intercepted'
  /** CONNECT on the proxy port. */
  | 'connect'
  /** TLS redirected to a transparent port: the ClientHello's server name names the target. */
  | 'transparent-https'
  /** A WebSocket (or other) upgrade, on the proxy port or inside an intercepted tunnel. */
  | 'upgrade';

/** Who sent it: settled before the decision (address or lab login). */
export interface FlowClient {
  readonly address: string;
  readonly profile: string;
}

export interface Flow {
  readonly mode: FlowMode;
  readonly target: Target;
  readonly client: FlowClient;
  /** The request method; `CONNECT` for tunnels (CONNECT and transparent HTTPS). */
  readonly method: string;
  /** When the proxy took it, in milliseconds since the epoch: time-dependent rules decide on this, events record it. */
  readonly time: number;
}

/** A tunnel is decided on host and port only; a request on its URL. */
export function isTunnel(flow: Flow): boolean {
  return flow.mode === 'connect' || flow.mode === 'transparent-https';
}
