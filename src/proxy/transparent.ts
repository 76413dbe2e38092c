import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { ProxyServer } from './server.js';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello } from './sni.js';
import { serverNameTarget } from './target.js';

const HELLO_TIMEOUT_MS = 10_000;

/**
 * Transparent mode, for devices nobody can configure: the gateway redirects a student
 * VLAN's ports 80 and 443 here (deploy/nftables-transparent.nft). The host comes from
 * `Host` (HTTP) or the TLS ClientHello's SNI (HTTPS), and the proxy dials the address
 * it resolves itself for that name, so a forged Host or SNI reaches only the site it
 * names, and is decided as that site. Connections here count against the same
 * per-client and per-process limits as the proxy port's.
 */
export function startTransparentHttp(proxy: ProxyServer, port: number, host: string): Promise<{ server: HttpServer; port: number }> {
  const server = createHttpServer({ maxHeaderSize: 16 * 1024, headersTimeout: 15_000, requestTimeout: 0 }, (req, res) =>
    proxy.handleTransparentRequest(req, res),
  );
  server.on('clientError', (_error, socket) => socket.destroy());
  server.on('connection', (socket: Socket) => proxy.admitConnection(socket));
  return listen(server, port, host);
}

export function startTransparentHttps(proxy: ProxyServer, port: number, host: string): Promise<{ server: NetServer; port: number }> {
  const server = createNetServer((socket: Socket) => {
    if (!proxy.admitConnection(socket)) return;
    socket.on('error', () => socket.destroy());
    socket.setTimeout(HELLO_TIMEOUT_MS, () => socket.destroy());
    let buffered: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const hello = parseClientHello(buffered);
      if (hello.kind === 'incomplete' && buffered.length < MAX_CLIENT_HELLO_BYTES + 5) return;
      socket.off('data', onData);
      socket.pause();
      socket.setTimeout(0);
      const target = hello.kind === 'sni' ? serverNameTarget(hello.serverName, 443) : null;
      if (target === null) {
        // No name to decide on (or not TLS at all): nothing can be checked, so nothing passes.
        socket.destroy();
        return;
      }
      proxy.handleTransparentTunnel(socket, target, buffered);
    };
    socket.on('data', onData);
  });
  return listen(server, port, host);
}

function listen<T extends HttpServer | NetServer>(server: T, port: number, host: string): Promise<{ server: T; port: number }> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address !== null ? address.port : port });
    });
  });
}
