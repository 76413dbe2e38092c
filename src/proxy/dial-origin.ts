import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { OriginError } from './origin-error.js';

/**
 * The one way the proxy opens a connection to an origin, TCP or TLS: the origin client's
 * connections (origin-connection.ts) and the tunnels of secure WebSockets and CONNECT
 * (tunnel.ts) both dial here, so that SNI, ALPN, the connect deadline and TLS session
 * reuse are decided in one place.
 */

/**
 * How an `https:` origin is dialled: the name its certificate must carry (sent as SNI,
 * see sniName in target.ts; undefined for an address literal, checked against the
 * address) and the TLS session of an earlier connection to it, so that a new connection
 * resumes instead of a full handshake (what undici's connector does too). The dial keeps
 * `session` up to date: a holder that outlives one connection resumes on the next.
 */
export interface TlsDial {
  readonly servername: string | undefined;
  session: Buffer | undefined;
}

export interface OriginDial {
  /** The address to dial, as the proxy's resolver vetted it (never a name from the client). */
  readonly address: string;
  readonly port: number;
  /** Null: plain TCP. */
  readonly tls: TlsDial | null;
  /** The connection, over TLS the handshake and certificate check too, must be up within this. */
  readonly connectTimeoutMs: number;
}

/**
 * Why a dial failed: Node's own errors keep their codes (ECONNREFUSED, ECONNRESET,
 * CERT_HAS_EXPIRED, ERR_TLS_CERT_ALTNAME_INVALID…), which classifyUpstreamError in
 * upstream.ts turns into pages; the deadline is LACHAN_UPSTREAM_CONNECT_TIMEOUT.
 */
export type DialError = OriginError | NodeJS.ErrnoException;

export interface DialEvents {
  /** The connection is up (over TLS: the handshake is done and the certificate accepted). */
  onConnected(): void;
  /**
   * The connection never came up; the socket is destroyed and 'close' follows. Errors
   * after onConnected are the caller's: they reach the socket's own 'error' listeners.
   */
  onDialFailed(error: DialError): void;
}

/** Only HTTP/1.1 is spoken to origins: an origin that would pick h2 by ALPN must not. */
const HTTP1_ONLY = ['http/1.1'];

/**
 * Opens a connection to an origin. Certificates are verified as Node does by default (the
 * system store and NODE_EXTRA_CA_CERTS, the name by checkServerIdentity). Throws only when
 * net.connect refuses the options outright (no socket, so no 'close').
 */
export function dialOrigin(dial: OriginDial, events: DialEvents): Socket {
  const { address, port, tls } = dial;
  const socket =
    tls === null
      ? netConnect({ host: address, port, noDelay: true })
      : tlsConnect({ host: address, port, servername: tls.servername, session: tls.session, ALPNProtocols: HTTP1_ONLY });
  // tls.connect takes no noDelay option: set on the handle now, it applies once the TCP socket exists.
  if (tls !== null) socket.setNoDelay(true);
  let connected = false;
  // A hard deadline, not the socket's idle timer: an origin trickling its handshake must not stretch it.
  const deadline = setTimeout(
    () => socket.destroy(new OriginError('LACHAN_UPSTREAM_CONNECT_TIMEOUT', 'connecting to the origin timed out')),
    dial.connectTimeoutMs,
  );
  socket.once(tls === null ? 'connect' : 'secureConnect', () => {
    connected = true;
    clearTimeout(deadline);
    events.onConnected();
  });
  socket.once('close', () => clearTimeout(deadline));
  if (tls !== null) {
    socket.on('session', (session: Buffer) => {
      tls.session = session;
    });
  }
  // Kept for the socket's life, so that an error no caller listens for does not throw.
  socket.on('error', (error: DialError) => {
    if (connected) return;
    // A session whose handshake failed (a certificate refused, a reset or stalled handshake) is not offered again;
    // after a completed handshake it is still good: a reset mid-response must not cost the next connection a full one.
    if (tls !== null) tls.session = undefined;
    events.onDialFailed(error);
  });
  return socket;
}
