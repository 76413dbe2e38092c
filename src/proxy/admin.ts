import { createServer, type Server } from 'node:http';

export interface AdminHandlers {
  /** Prometheus text exposition. */
  metrics(): Promise<string>;
  healthy(): boolean;
  /**
   * What works only in part while the proxy still filters (e.g. `event-store-unwritable`):
   * listed by /healthz, which still answers 200 since children stay protected.
   */
  degraded?(): Promise<readonly string[]>;
}

/**
 * The operator's listener: `/healthz` and `/metrics`, bound to loopback only so it
 * is never reachable from the student network.
 */
export function startAdminServer(port: number, handlers: AdminHandlers): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?', 1)[0];
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    if (path === '/healthz') {
      if (!handlers.healthy()) {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('unhealthy\n');
        return;
      }
      (handlers.degraded?.() ?? Promise.resolve([])).then(
        (problems) => res.writeHead(200, { 'content-type': 'text/plain' }).end(`ok\n${problems.map((p) => `degraded: ${p}\n`).join('')}`),
        () => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n'),
      );
      return;
    }
    if (path === '/metrics') {
      handlers.metrics().then(
        (text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(text),
        () => res.writeHead(500).end(),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address !== null ? address.port : port });
    });
  });
}
