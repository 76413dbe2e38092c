/**
 * One keep-alive HTTP/1.1 connection of a simulated gateway (bench/province.ts), one
 * request at a time. A request is written as bytes the caller prepared; the answer is read
 * by the proxy's own sans-IO response reader (src/proxy/http1/response-reader.ts), of which
 * only the status and the body are kept: a province's 1,000 gateways are not on the
 * collectors' machine, so what stands for them here should cost this machine as little as
 * possible (undici's request per POST was a tenth of the replay's CPU). The
 * collector sees ordinary HTTP/1.1 requests on long-lived connections, as from undici.
 */
import { connect, type Socket } from 'node:net';
import { ResponseReader } from '../../src/proxy/http1/response-reader.js';

export interface Answer {
  readonly status: number;
  readonly body: Buffer;
}

/** The collector's answers are small JSON acknowledgements; a head larger than this is an error. */
const MAX_HEAD_BYTES = 16 * 1024;

export class GatewayConnection {
  readonly #host: string;
  readonly #port: number;
  #socket: Socket | null = null;
  /** The proxy's own HTTP/1 response reader (src/proxy/http1/response-reader.ts), fed what the socket reads. */
  readonly #reader: ResponseReader;
  #status = 0;
  #body: Buffer[] = [];
  #pending: { resolve: (answer: Answer) => void; reject: (error: Error) => void } | null = null;

  constructor(url: string) {
    const parsed = new URL(url);
    this.#host = parsed.hostname;
    this.#port = Number(parsed.port);
    this.#reader = new ResponseReader(
      {
        onHead: (head) => {
          this.#status = head.status;
        },
        onData: (chunk) => {
          this.#body.push(chunk);
        },
        onEnd: (last) => {
          if (last !== undefined) this.#body.push(last);
          const body = this.#body.length === 1 ? this.#body[0]! : Buffer.concat(this.#body);
          this.#body = [];
          this.#settle(null, { status: this.#status, body });
        },
        onError: (error) => {
          this.destroy();
          this.#settle(error, null);
        },
      },
      MAX_HEAD_BYTES,
    );
  }

  /** The `host` header value for requests on this connection. */
  get authority(): string {
    return `${this.#host}:${this.#port}`;
  }

  /**
   * Sends `head` (request line and headers, ending in an empty line) and `body`; the
   * answer. A connection the collector closed meanwhile is opened again and the request
   * sent once more (ingest is idempotent).
   */
  async request(head: Buffer, body?: Buffer): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#once(head, body);
      } catch (error) {
        if (attempt >= 2) throw error;
      }
    }
  }

  #once(head: Buffer, body: Buffer | undefined): Promise<Answer> {
    const socket = this.#socket ?? this.#open();
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#body = [];
      this.#reader.start(false);
      socket.cork();
      socket.write(head);
      if (body !== undefined) socket.write(body);
      socket.uncork();
    });
  }

  #settle(error: Error | null, answer: Answer | null): void {
    const pending = this.#pending;
    this.#pending = null;
    if (error !== null) pending?.reject(error);
    else pending?.resolve(answer!);
  }

  #open(): Socket {
    const socket = connect({ host: this.#host, port: this.#port, noDelay: true });
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      if (!this.#reader.idle) this.#reader.feed(chunk);
    });
    const lost = (error?: Error) => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      // A body framed by the close ends here; anything else was cut short.
      if (!this.#reader.idle && this.#reader.endOfInput()) return;
      this.#reader.stop();
      this.#settle(error ?? new Error('connection closed before the answer'), null);
    };
    socket.on('error', lost);
    socket.on('close', () => lost());
    return socket;
  }

  destroy(): void {
    this.#socket?.destroy();
    this.#socket = null;
  }
}
