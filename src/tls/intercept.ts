import type { Duplex } from 'node:stream';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { CertificateAuthority } from './authority.js';

export interface InterceptOptions {
  /** ALPN protocols offered to the client, best first. Default: HTTP/1.1 only. */
  readonly alpn?: readonly string[];
  /**
   * Bytes already read past the CONNECT request (the `head` of http.Server's 'connect'
   * event); they are the start of the client's TLS stream and must not be lost.
   */
  readonly head?: Buffer;
  /**
   * Decides whether a certificate may be issued for the SNI name the client sent when it
   * differs from the CONNECT host. Default: yes. A refusal aborts the handshake.
   */
  readonly acceptServername?: (servername: string) => boolean;
}

const DEFAULT_ALPN = ['http/1.1'];

/**
 * Terminates the client's TLS on an intercepted CONNECT: after the proxy answered
 * `200 Connection Established` on `raw`, this returns the server side of a TLS session
 * presenting a certificate issued by the school CA. The certificate is for the SNI
 * name the client sends or, when it sends none (IP literals), for the CONNECT host.
 *
 * The proxy reads and writes plain HTTP on the returned socket; listen for
 * 'secure' before reading requestedServername(socket) / `alpnProtocol`, and for 'error'
 * (a client that does not trust the CA aborts the handshake with an alert).
 *
 * Rejects with a TlsError (LACHAN_TLS_BAD_HOST) when `connectHost` is nothing a
 * certificate can name, or (LACHAN_CA_EXPIRED) when the CA has expired; the proxy then
 * closes the connection or falls back to refusing the CONNECT.
 */
export async function createInterceptingTlsSocket(
  raw: Duplex,
  connectHost: string,
  ca: CertificateAuthority,
  options: InterceptOptions = {},
): Promise<TLSSocket> {
  // Hold the client's first flight in the socket's buffer while the certificate is
  // issued; TLSSocket consumes buffered bytes when it takes over the stream.
  raw.pause();
  if (options.head !== undefined && options.head.length > 0) raw.unshift(options.head);
  const defaultContext = await ca.secureContextFor(connectHost);
  const accept = options.acceptServername;
  return new TLSSocket(raw, {
    isServer: true,
    secureContext: defaultContext,
    ALPNProtocols: [...(options.alpn ?? DEFAULT_ALPN)],
    SNICallback(servername: string, callback: (error: Error | null, context?: SecureContext) => void) {
      if (accept !== undefined && !accept(servername)) {
        callback(new Error(`servername ${servername} refused for CONNECT ${connectHost}`));
        return;
      }
      const cached = ca.cachedSecureContext(servername);
      if (cached !== undefined) {
        callback(null, cached);
        return;
      }
      ca.secureContextFor(servername).then(
        (context) => callback(null, context),
        // A name no certificate can carry: present the CONNECT host's certificate and
        // let the client judge it.
        () => callback(null, defaultContext),
      );
    },
  });
}

/**
 * The SNI name the client asked for on a server-side TLSSocket, or null when it sent
 * none. Node sets `servername` at runtime but @types/node does not declare it.
 */
export function requestedServername(socket: TLSSocket): string | null {
  const name = (socket as unknown as { servername?: string | false | null }).servername;
  return typeof name === 'string' && name.length > 0 ? name : null;
}
