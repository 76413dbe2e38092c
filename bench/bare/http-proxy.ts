/**
 * A bare forward proxy on http-proxy: one shared keep-alive `http.Agent` (created once,
 * `maxSockets` above the bench's connection count so no request waits for a socket),
 * the absolute-form target split into origin and path, nothing else.
 *
 * The earlier version (per-request `new URL`, `changeOrigin`, maxSockets 64) answered
 * nothing at 1 KB inside one bench run but could not be made to fail again (it answers
 * against both the old node:http origin and the raw one); `Proxy-Connection` is now
 * dropped and the socket limit is above the bench's 50 connections.
 * `node dist/bench/bare/http-proxy.js [PORT]` prints `{"port":N}` once listening.
 */
import { Agent, createServer } from 'node:http';
import httpProxy from 'http-proxy';

const agent = new Agent({ keepAlive: true, maxSockets: 128, keepAliveMsecs: 30_000 });
const proxy = httpProxy.createProxyServer({ agent, xfwd: false });
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
  const url = req.url ?? '';
  // Absolute form `http://host:port/path`: split at the first '/' after the scheme.
  const slash = url.indexOf('/', 7);
  if (!url.startsWith('http://')) {
    res.writeHead(400).end();
    return;
  }
  req.url = slash === -1 ? '/' : url.slice(slash);
  delete req.headers['proxy-connection'];
  proxy.web(req, res, { target: slash === -1 ? url : url.slice(0, slash) });
});
server.keepAliveTimeout = 30_000;
// Exit cleanly on SIGTERM so `node --cpu-prof` can write its profile.
process.once('SIGTERM', () => process.exit(0));
server.on('clientError', (_error, socket) => socket.destroy());
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  console.log(JSON.stringify({ port: (server.address() as { port: number }).port }));
});
