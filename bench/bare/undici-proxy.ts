/**
 * A bare forward proxy with undici as upstream client: the floor lachan is measured
 * against (no decisions, no pages, no limits). `node dist/bench/bare/undici-proxy.js [PORT]`
 * prints `{"port":N}` once listening.
 */
import { createServer } from 'node:http';
import { pipeline } from 'node:stream';
import { Agent } from 'undici';

const agent = new Agent({ connections: 64, keepAliveTimeout: 4_000 });
const server = createServer((req, res) => {
  const url = new URL(req.url ?? '');
  const headers: Record<string, string | string[] | undefined> = { ...req.headers, host: url.host };
  delete headers['proxy-connection'];
  delete headers.connection;
  agent
    .request({ origin: url.origin, path: url.pathname + url.search, method: req.method as 'GET', headers, body: req.method === 'GET' || req.method === 'HEAD' ? null : req })
    .then(
      (upstream) => {
        res.writeHead(upstream.statusCode, upstream.headers as Record<string, string>);
        pipeline(upstream.body, res, () => undefined);
      },
      () => res.writeHead(502).end(),
    );
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  console.log(JSON.stringify({ port: (server.address() as { port: number }).port }));
});
