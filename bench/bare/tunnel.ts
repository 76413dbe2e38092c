/**
 * A bare CONNECT tunnel of a few lines: the floor any Node proxy pays for HTTPS it
 * does not decrypt. `node dist/bench/bare/tunnel.js` prints `{"port":N}` when ready.
 */
import { createServer } from 'node:http';
import { connect } from 'node:net';

const server = createServer((_req, res) => res.writeHead(405).end());
server.on('connect', (req, client, head) => {
  const [host, port] = (req.url ?? '').split(':');
  // Every bench host lives on loopback.
  void host;
  const upstream = connect(Number(port), '127.0.0.1', () => {
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    upstream.write(head);
    client.pipe(upstream).pipe(client);
  });
  upstream.on('error', () => client.destroy());
  client.on('error', () => upstream.destroy());
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`));
