/**
 * A bare forward proxy on http-proxy with a keep-alive agent, for comparison.
 * `node dist/bench/bare/http-proxy.js [PORT]` prints `{"port":N}` once listening.
 */
import { Agent, createServer } from 'node:http';
import httpProxy from 'http-proxy';

const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const proxy = httpProxy.createProxyServer({ agent, xfwd: false, changeOrigin: true });
proxy.on('error', (_error, _req, res) => {
  // Under overload the client may be gone already; a bare proxy must not die of it.
  try {
    if ('writeHead' in res && !res.headersSent) res.writeHead(502).end();
    else res.destroy();
  } catch {
    res.destroy();
  }
});
const server = createServer((req, res) => {
  let url: URL;
  try {
    url = new URL(req.url ?? '');
  } catch {
    res.writeHead(400).end();
    return;
  }
  req.url = url.pathname + url.search;
  proxy.web(req, res, { target: url.origin });
});
server.on('clientError', (_error, socket) => socket.destroy());
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  console.log(JSON.stringify({ port: (server.address() as { port: number }).port }));
});
