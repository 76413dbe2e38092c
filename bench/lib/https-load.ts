import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export interface HttpsLoadOptions {
  readonly proxyPort: number;
  readonly host: string;
  readonly port: number;
  readonly path: string;
  /** CAs the client trusts: the origin's and, for inspected runs, the school's. */
  readonly ca: readonly string[];
  readonly connections: number;
  readonly seconds: number;
}

/**
 * Requests per second of HTTPS through a CONNECT proxy: `connections` keep-alive TLS
 * sessions, each opened through its own tunnel, sending one GET after another.
 * Responses must carry Content-Length (the bench origin's do).
 */
export async function httpsThroughProxy(options: HttpsLoadOptions): Promise<{ requestsPerSecond: number; errors: number }> {
  const deadline = Date.now() + options.seconds * 1000;
  let completed = 0;
  let errors = 0;
  // The port belongs in Host: squid (bumping) sends the request where Host says.
  const request = Buffer.from(`GET ${options.path} HTTP/1.1\r\nHost: ${options.host}:${options.port}\r\n\r\n`);
  const worker = async (): Promise<void> => {
    while (Date.now() < deadline) {
      let socket: TLSSocket;
      try {
        socket = await openTunnel(options);
      } catch {
        errors++;
        continue;
      }
      try {
        while (Date.now() < deadline) {
          socket.write(request);
          await readResponse(socket);
          completed++;
        }
      } catch {
        errors++;
      } finally {
        socket.destroy();
      }
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: options.connections }, worker));
  return { requestsPerSecond: completed / ((Date.now() - started) / 1000), errors };
}

function openTunnel(options: HttpsLoadOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const raw = netConnect(options.proxyPort, '127.0.0.1', () =>
      raw.write(`CONNECT ${options.host}:${options.port} HTTP/1.1\r\nHost: ${options.host}:${options.port}\r\n\r\n`),
    );
    raw.once('error', reject);
    let head = '';
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      raw.off('data', onData);
      if (!head.startsWith('HTTP/1.1 200')) {
        raw.destroy();
        reject(new Error(head.split('\r\n', 1)[0]));
        return;
      }
      const secure = tlsConnect({ socket: raw, servername: options.host, ca: [...options.ca], ALPNProtocols: ['http/1.1'] }, () => resolve(secure));
      secure.once('error', reject);
    };
    raw.on('data', onData);
  });
}

/** Reads one response with a Content-Length body. */
function readResponse(socket: TLSSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffer: Buffer = Buffer.alloc(0);
    let need = -1;
    const onData = (chunk: Buffer): void => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      if (need < 0) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) return;
        const match = /content-length:\s*(\d+)/i.exec(buffer.subarray(0, end).toString('latin1'));
        if (match === null) return done(new Error('response without Content-Length'));
        need = end + 4 + Number(match[1]);
      }
      if (buffer.length >= need) done(null);
    };
    const onClose = (): void => done(new Error('closed'));
    const done = (error: Error | null): void => {
      socket.off('data', onData);
      socket.off('close', onClose);
      if (error) reject(error);
      else resolve();
    };
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}
