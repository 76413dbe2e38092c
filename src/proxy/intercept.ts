import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { createInterceptingTlsSocket, type CertificateAuthority } from '../tls/index.js';
import { bareHost } from './target.js';

/** Where an intercepted connection was going, kept on its TLS socket. */
const TARGET = Symbol('lachan.interceptTarget');

/** OpenSSL's codes for the alerts a client sends when it rejects the server's certificate. */
const CERTIFICATE_ALERT =
  /ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|CERTIFICATE_REVOKED|CERTIFICATE_EXPIRED|ACCESS_DENIED)$/;

/** Who is behind an intercepted tunnel: decided once at CONNECT (address or lab login). */
export interface TunnelClient {
  readonly clientAddress: string;
  /** The profile the CONNECT was decided under; requests inside have no Proxy-Authorization. */
  readonly profile: string;
}

interface InterceptedSocket extends TLSSocket {
  [TARGET]?: { authority: string; client: TunnelClient };
}

/**
 * Terminates TLS of an intercepted CONNECT with a certificate from the school CA and
 * hands every request inside it, with the tunnel's authority, to the proxy, which
 * makes it a flow like any other (target `https://authority/path`): one request model,
 * one policy path, one place that forwards (and verifies the origin's certificate).
 */
export class Interceptor {
  private readonly inner: Server;

  constructor(
    handle: (req: IncomingMessage, res: ServerResponse, client: TunnelClient, authority: string) => void,
    limits: { maxHeaderBytes: number; headersTimeoutMs: number; clientIdleMs: number },
    handleUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer, client: TunnelClient, authority: string) => void,
  ) {
    this.inner = createServer(
      { maxHeaderSize: limits.maxHeaderBytes, headersTimeout: limits.headersTimeoutMs, keepAliveTimeout: limits.clientIdleMs, requestTimeout: 0 },
      (req, res) => {
        const target = (req.socket as InterceptedSocket)[TARGET];
        if (target === undefined || !(req.url ?? '').startsWith('/')) {
          res.writeHead(400).end();
          return;
        }
        handle(req, res, target.client, target.authority);
      },
    );
    this.inner.on('clientError', (_error, socket: Duplex) => socket.destroy());
    // Secure WebSockets inside the tunnel are decided and relayed like any request.
    this.inner.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const target = (req.socket as InterceptedSocket)[TARGET];
      if (target === undefined || !(req.url ?? '').startsWith('/')) {
        socket.destroy();
        return;
      }
      handleUpgrade(req, socket, head, target.client, target.authority);
    });
  }

  /**
   * Answers the CONNECT (`announce`; a transparent connection has no CONNECT to
   * answer), then serves the client's TLS session here with a certificate from `ca`
   * (the CA in force when the connection came: a new CA applies to new connections).
   * `onRefused` is told when the client's TLS rejected that certificate.
   */
  async intercept(
    ca: CertificateAuthority,
    client: Duplex,
    host: string,
    port: number,
    head: Buffer,
    tunnelClient: TunnelClient,
    announce = true,
    onRefused?: () => void,
  ): Promise<void> {
    if (announce) client.write('HTTP/1.1 200 Connection Established\r\nVia: 1.1 lachan\r\n\r\n');
    let secure: InterceptedSocket;
    try {
      secure = await createInterceptingTlsSocket(client, bareHost(host), ca, { head, alpn: ['http/1.1'] });
    } catch {
      client.destroy();
      return;
    }
    secure[TARGET] = { authority: port === 443 ? host : `${host}:${port}`, client: tunnelClient };
    let established = false;
    secure.once('secure', () => (established = true));
    // A client that does not trust the school CA aborts the handshake with an alert
    // (unknown CA, bad certificate): nothing more to do than note it.
    secure.on('error', (error: NodeJS.ErrnoException) => {
      if (!established && onRefused !== undefined && CERTIFICATE_ALERT.test(error.code ?? '')) onRefused();
      secure.destroy();
    });
    this.inner.emit('connection', secure);
  }

  close(): void {
    this.inner.close();
    this.inner.closeAllConnections();
  }
}
