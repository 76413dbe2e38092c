/**
 * One keep-alive HTTP/1.1 connection of a simulated gateway (bench/province.ts), one
 * request at a time. A request is written as bytes the caller prepared and of the answer
 * only the status line, the length and the body are read: a province's 1,000 gateways are
 * not on the collectors' machine, so what stands for them here should cost this machine
 * as little as possible (undici's request per POST was a tenth of the replay's CPU). The
 * collector sees ordinary HTTP/1.1 requests on long-lived connections, as from undici.
 */
import { connect, type Socket } from 'node:net';

export interface Answer {
  readonly status: number;
  readonly body: Buffer;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');

export class GatewayConnection {
  readonly #host: string;
  readonly #port: number;
  #socket: Socket | null = null;
  #received: Buffer[] = [];
  #receivedBytes = 0;
  #pending: { resolve: (answer: Answer) => void; reject: (error: Error) => void } | null = null;

  constructor(url: string) {
    const parsed = new URL(url);
    this.#host = parsed.hostname;
    this.#port = Number(parsed.port);
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
      socket.cork();
      socket.write(head);
      if (body !== undefined) socket.write(body);
      socket.uncork();
    });
  }

  #open(): Socket {
    const socket = connect({ host: this.#host, port: this.#port, noDelay: true });
    this.#socket = socket;
    this.#received = [];
    this.#receivedBytes = 0;
    socket.on('data', (chunk: Buffer) => {
      this.#received.push(chunk);
      this.#receivedBytes += chunk.length;
      this.#answerIfComplete();
    });
    const lost = (error?: Error) => {
      if (this.#socket === socket) this.#socket = null;
      const pending = this.#pending;
      this.#pending = null;
      pending?.reject(error ?? new Error('connection closed before the answer'));
    };
    socket.on('error', lost);
    socket.on('close', () => lost());
    return socket;
  }

  #answerIfComplete(): void {
    const data = this.#received.length === 1 ? this.#received[0]! : Buffer.concat(this.#received, this.#receivedBytes);
    this.#received = [data];
    const headEnd = data.indexOf(HEAD_END);
    if (headEnd < 0) return;
    const head = data.toString('latin1', 0, headEnd);
    const bodyStart = headEnd + HEAD_END.length;
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    let end: number;
    let body: Buffer;
    if (length !== null) {
      end = bodyStart + Number(length[1]);
      if (data.length < end) return;
      body = data.subarray(bodyStart, end);
    } else {
      // Chunked (not what the collector sends today): the chunks as they are, enough to read a status.
      const last = data.indexOf(LAST_CHUNK, bodyStart);
      if (last < 0) return;
      end = last + LAST_CHUNK.length;
      body = data.subarray(bodyStart, last);
    }
    const rest = data.subarray(end);
    this.#received = rest.length > 0 ? [rest] : [];
    this.#receivedBytes = rest.length;
    const pending = this.#pending;
    this.#pending = null;
    pending?.resolve({ status: Number(head.slice(9, 12)), body });
  }

  destroy(): void {
    this.#socket?.destroy();
    this.#socket = null;
  }
}
