import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { canonicalAddress } from './addresses.js';

export interface AdmissionLimits {
  /** Connections one worker holds at most, from all clients together. */
  readonly maxConnections: number;
  /**
   * Connections one client address holds at most. Generous: a computer lab behind one
   * NAT address is many browsers, each keeping several connections open.
   */
  readonly maxClientConnections: number;
}

/** A limit a new connection met: `per-client`, its own client's; `capacity`, the worker's. */
export interface LimitHit {
  /** Who the limit is about: the client at its limit, or (capacity) the client holding the most. */
  readonly client: string;
  readonly reason: 'per-client' | 'capacity';
  /** `reclaimed`: an idle connection of `client` was closed to make room; `refused`: the new connection was closed. */
  readonly outcome: 'reclaimed' | 'refused';
  /** Connections `client` holds. */
  readonly connections: number;
}

export interface AdmissionEvents {
  onLimit(hit: LimitHit): void;
}

/** One client address and the connections it holds; `idle` in the order they became idle. */
interface ClientConnections {
  readonly address: string;
  readonly all: Set<Socket>;
  readonly idle: Set<Socket>;
}

const TRACKED = Symbol('lachan.admission');
const IN_FLIGHT = Symbol('lachan.inFlight');
type TrackedSocket = Socket & { [TRACKED]?: ClientConnections; [IN_FLIGHT]?: number };
/** The connection a response goes out on (Node clears `res.socket` before 'finish' listeners run). */
const CONNECTION = Symbol('lachan.connection');
type TrackedResponse = ServerResponse & { [CONNECTION]?: Socket };

/**
 * Who may hold a connection to the proxy, so that no one client can lock the others
 * out. Each client address has its own limit; when the worker is full, an idle
 * keep-alive connection (no request in flight, or none sent yet) of the client holding
 * the most is closed to let a newcomer in; a client at its own limit makes room only
 * from its own idle connections. Connections carrying a request or a tunnel are never
 * closed here: only refused newcomers and idle connections are.
 */
export class ConnectionAdmission {
  private readonly clients = new Map<string, ClientConnections>();
  private total = 0;

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly events: AdmissionEvents,
  ) {}

  /** A new connection: admitted (and tracked until it closes) or destroyed. */
  admit(socket: Socket): boolean {
    const address = clientKey(socket.remoteAddress);
    let client = this.clients.get(address);
    if (client !== undefined && client.all.size >= this.limits.maxClientConnections) {
      const held = client.all.size;
      const reclaimed = this.closeIdle(client);
      this.events.onLimit({ client: address, reason: 'per-client', outcome: reclaimed ? 'reclaimed' : 'refused', connections: held });
      if (!reclaimed) return refuse(socket);
    }
    if (this.total >= this.limits.maxConnections) {
      const heaviest = this.heaviest(true) ?? this.heaviest(false);
      const held = heaviest?.all.size ?? 0;
      const reclaimed = heaviest !== null && this.closeIdle(heaviest);
      this.events.onLimit({ client: heaviest?.address ?? address, reason: 'capacity', outcome: reclaimed ? 'reclaimed' : 'refused', connections: held });
      if (!reclaimed) return refuse(socket);
    }
    if (client === undefined) {
      client = { address, all: new Set(), idle: new Set() };
      this.clients.set(address, client);
    }
    client.all.add(socket);
    client.idle.add(socket);
    this.total++;
    (socket as TrackedSocket)[TRACKED] = client;
    socket.once('close', () => this.forget(socket, client));
    return true;
  }

  /** A request arrived on `socket`: busy until `res` has been sent. */
  requestStarted(socket: Socket, res: ServerResponse): void {
    busy(socket);
    (res as TrackedResponse)[CONNECTION] = socket;
    res.on('finish', onResponseFinished);
  }

  /** A tunnel or upgrade took over `socket`: busy until it closes. */
  tunnelStarted(socket: Socket): void {
    busy(socket);
  }

  /** Connections held by the client holding the most, for metrics. */
  largestClient(): number {
    let largest = 0;
    for (const client of this.clients.values()) if (client.all.size > largest) largest = client.all.size;
    return largest;
  }

  private forget(socket: Socket, client: ClientConnections): void {
    if (!client.all.delete(socket)) return;
    client.idle.delete(socket);
    this.total--;
    if (client.all.size === 0) this.clients.delete(client.address);
  }

  /** Closes the client's longest-idle connection; false when it has none. */
  private closeIdle(client: ClientConnections): boolean {
    const oldest = client.idle.values().next();
    if (oldest.done === true) return false;
    const socket = oldest.value;
    // Counted free now: 'close' comes later and finds the socket already forgotten.
    this.forget(socket, client);
    socket.destroy();
    return true;
  }

  /** The client holding the most connections (`withIdle`: among those with an idle one). */
  private heaviest(withIdle: boolean): ClientConnections | null {
    let heaviest: ClientConnections | null = null;
    for (const client of this.clients.values()) {
      if ((!withIdle || client.idle.size > 0) && (heaviest === null || client.all.size > heaviest.all.size)) heaviest = client;
    }
    return heaviest;
  }
}

function busy(socket: Socket): void {
  const tracked = socket as TrackedSocket;
  const client = tracked[TRACKED];
  if (client === undefined) return;
  tracked[IN_FLIGHT] = (tracked[IN_FLIGHT] ?? 0) + 1;
  client.idle.delete(socket);
}

/** Shared by every response (`this`): with no request left in flight (pipelining), the connection waits for the next one. */
function onResponseFinished(this: TrackedResponse): void {
  const socket = this[CONNECTION] as TrackedSocket | undefined;
  const client = socket?.[TRACKED];
  if (socket === undefined || client === undefined) return;
  const inFlight = (socket[IN_FLIGHT] ?? 1) - 1;
  socket[IN_FLIGHT] = inFlight;
  if (inFlight === 0 && !socket.destroyed && client.all.has(socket)) client.idle.add(socket);
}

function refuse(socket: Socket): false {
  socket.destroy();
  return false;
}

/** One key per device: `::ffff:10.0.0.1` and `10.0.0.1` are the same client. */
function clientKey(remoteAddress: string | undefined): string {
  if (remoteAddress === undefined) return '';
  return canonicalAddress(remoteAddress)?.text ?? remoteAddress;
}
