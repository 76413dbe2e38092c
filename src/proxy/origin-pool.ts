import type { TlsDial } from './dial-origin.js';
import { OriginConnection, type ConnectionOwner } from './origin-connection.js';
import { OriginError } from './origin-error.js';
import type { Exchange, OriginClientOptions } from './origin-exchange.js';
import { sniName } from './target.js';

/**
 * The connections to one origin (scheme, host and port), at most `connectionsPerOrigin`
 * of them, idle ones reused.
 */
export class OriginPool implements ConnectionOwner {
  private readonly idle: OriginConnection[] = [];
  private readonly waiting: Exchange[] = [];
  private open = 0;
  /**
   * Connections held by clients that stopped reading. They do not count against the
   * limit: otherwise a few dozen never-reading clients of one site would make every
   * other request to it wait until their connections time out.
   */
  private stalled = 0;
  closed = false;
  /** How the connections of an `https:` origin dial TLS; null for `http:`. */
  readonly tls: TlsDial | null;

  constructor(
    readonly options: OriginClientOptions,
    readonly tickMs: number,
    private readonly hostname: string,
    private readonly port: number,
    secure: boolean,
  ) {
    this.tls = secure ? { servername: sniName(hostname), session: undefined } : null;
  }

  dispatch(exchange: Exchange): void {
    if (this.closed) {
      exchange.handler.onResponseError(exchange, new OriginError('LACHAN_UPSTREAM_CLOSED', 'the proxy is shutting down'));
      return;
    }
    // A connection destroyed this very tick stays listed until its 'close' event: pass over it.
    let connection = this.idle.pop();
    while (connection !== undefined && !connection.isUsable) connection = this.idle.pop();
    if (connection !== undefined) connection.send(exchange);
    else if (this.open - this.stalled >= this.options.connectionsPerOrigin) this.waiting.push(exchange);
    else this.connect(exchange);
  }

  private connect(exchange: Exchange): void {
    this.open++;
    this.options.resolve(this.hostname).then(
      (address) => {
        if (exchange.aborted) {
          this.open--;
          this.next();
          return;
        }
        try {
          new OriginConnection(this, address, this.port).send(exchange);
        } catch (error) {
          // net.connect refusing what the resolver gave: no socket, so no 'close' to count it down.
          this.open--;
          exchange.handler.onResponseError(exchange, error as Error);
          this.next();
        }
      },
      (error: Error) => {
        this.open--;
        if (!exchange.aborted) exchange.handler.onResponseError(exchange, error);
        this.next();
      },
    );
  }

  release(connection: OriginConnection): void {
    if (this.closed) {
      connection.close();
      return;
    }
    const exchange = this.takeWaiting();
    if (exchange !== undefined) connection.send(exchange);
    else this.idle.push(connection);
  }

  forget(connection: OriginConnection): void {
    this.open--;
    const at = this.idle.indexOf(connection);
    if (at !== -1) this.idle.splice(at, 1);
    this.next();
  }

  private takeWaiting(): Exchange | undefined {
    let exchange = this.waiting.shift();
    while (exchange?.aborted) exchange = this.waiting.shift();
    return exchange;
  }

  /** A connection's client stopped reading: a request waiting for this origin may open another. */
  stall(): void {
    this.stalled++;
    this.next();
  }

  unstall(): void {
    this.stalled--;
  }

  private next(): void {
    if (this.closed || this.open - this.stalled >= this.options.connectionsPerOrigin) return;
    const exchange = this.takeWaiting();
    if (exchange !== undefined) this.connect(exchange);
  }

  close(): void {
    this.closed = true;
    for (const connection of this.idle.splice(0)) connection.close();
    for (const exchange of this.waiting.splice(0)) {
      if (!exchange.aborted) exchange.handler.onResponseError(exchange, new OriginError('LACHAN_UPSTREAM_CLOSED', 'the proxy is shutting down'));
    }
  }

  get isEmpty(): boolean {
    return this.open === 0 && this.waiting.length === 0;
  }
}
