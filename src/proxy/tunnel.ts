import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { dialOrigin } from './dial-origin.js';
import type { Resolver } from './resolver.js';
import { sniName } from './target.js';

/**
 * Dials a destination and splices a client to it: CONNECT tunnels, transparent HTTPS
 * and upgrades all end here. The name is resolved (and vetted) by the proxy's own
 * resolver, never taken from the client.
 */
export interface TunnelDeps {
  readonly resolver: Resolver;
  readonly connectTimeoutMs: number;
  /** A spliced connection with no traffic either way is closed after this. */
  readonly idleMs: number;
  /** Upstream sockets open now, so that shutdown can close them. */
  readonly sockets: Set<Socket | Duplex>;
}

export interface TunnelDestination {
  /** A URL hostname (IPv6 in brackets). */
  readonly host: string;
  readonly port: number;
  /**
   * Set for TLS to the origin, verified against the system store (a secure WebSocket): the
   * name to verify, sent as SNI (an address literal is sent none, and verified against the address).
   */
  readonly servername?: string;
}

export interface TunnelCallbacks {
  /** The destination answered: write what goes first (the 200, the upgrade request); `head` follows, then the splice. */
  onOpen(upstream: Socket): void;
  /** Resolving or dialing failed before the tunnel was up: answer the client or close it. */
  onFailure(error: unknown): void;
}

export async function openTunnel(deps: TunnelDeps, client: Duplex, destination: TunnelDestination, head: Buffer, callbacks: TunnelCallbacks): Promise<void> {
  let address: string;
  try {
    address = (await deps.resolver.resolve(destination.host)).address;
  } catch (error) {
    return callbacks.onFailure(error);
  }
  // Until the tunnel is up, a failure is answered; after, both sides just close.
  let established = false;
  const tls = destination.servername === undefined ? null : { servername: sniName(destination.servername), session: undefined };
  const upstream = dialOrigin(
    { address, port: destination.port, tls, connectTimeoutMs: deps.connectTimeoutMs },
    {
      onConnected: () => {
        established = true;
        upstream.setTimeout(deps.idleMs, () => upstream.destroy());
        callbacks.onOpen(upstream);
        if (head.length > 0) upstream.write(head);
        splice(client, upstream);
      },
      onDialFailed: (error) => callbacks.onFailure(error),
    },
  );
  deps.sockets.add(upstream);
  client.once('close', () => {
    if (!established) upstream.destroy();
  });
  upstream.once('close', () => {
    deps.sockets.delete(upstream);
    if (established) client.destroy();
  });
}

/** Bytes both ways, with back-pressure (pipe pauses the faster side), torn down together. */
function splice(client: Duplex, upstream: Socket): void {
  client.pipe(upstream);
  upstream.pipe(client);
  client.once('close', () => upstream.destroy());
}
