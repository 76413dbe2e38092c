import { spawn } from 'node:child_process';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { CertificateAuthority, createCaMaterial } from '../../src/tls/index.js';
import { until } from './sockets.js';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface Origin<S extends Server | NetServer = Server> {
  readonly port: number;
  /** The listening server (add 'upgrade' handlers and the like). */
  readonly server: S;
  /** Requests the origin saw (method, url, headers), in order. */
  readonly seen: { method: string; url: string; headers: IncomingMessage['headers'] }[];
  close(): Promise<void>;
}

/** Answers with a JSON echo of what arrived: the test sees what the proxy forwarded. */
export const echoHandler: Handler = (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.stringify({ host: req.headers.host, method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
    res.writeHead(200, { 'content-type': 'application/json', 'x-origin': 'yes', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
};

function track(server: Server | NetServer): () => Promise<void> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return () =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
}

function listen(server: Server | NetServer, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : 0);
    });
  });
}

function recording(handler: Handler, seen: Origin['seen']): Handler {
  return (req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res);
  };
}

/** A plain HTTP origin on 127.0.0.1 (or `host`). */
export async function startHttpOrigin(handler: Handler = echoHandler, host = '127.0.0.1'): Promise<Origin> {
  const seen: Origin['seen'] = [];
  const server = createHttpServer(recording(handler, seen));
  const close = track(server);
  const port = await listen(server, host);
  return { port, server, seen, close };
}

let authority: Promise<{ ca: CertificateAuthority; certPem: string }> | null = null;

/** A CA made once per test process; origins' certificates chain to it (pass `caPem` to curl --cacert). */
export function originAuthority(): Promise<{ ca: CertificateAuthority; certPem: string }> {
  authority ??= createCaMaterial({ schoolName: 'Test origins' }).then(async (material) => ({
    ca: await CertificateAuthority.fromPem(material.certPem, material.keyPem),
    certPem: material.certPem,
  }));
  return authority;
}

/** An HTTPS origin on 127.0.0.1 (or `host`) with a certificate for `name` (a DNS name or an IP address), issued by originAuthority(). */
export async function startHttpsOrigin(name: string, handler: Handler = echoHandler, host = '127.0.0.1'): Promise<Origin & { caPem: string }> {
  const { ca, certPem } = await originAuthority();
  const leaf = await ca.issue(name);
  const seen: Origin['seen'] = [];
  const server = createHttpsServer({ cert: leaf.certPem, key: leaf.keyPem }, recording(handler, seen));
  const close = track(server);
  const port = await listen(server, host);
  return { port, server, seen, close, caPem: certPem };
}

/** A port where nothing listens (bound, then released). */
export async function refusedPort(): Promise<number> {
  const server = createNetServer();
  const port = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Accepts and resets every connection as soon as it sends anything. */
export async function startResettingOrigin(): Promise<Origin<NetServer>> {
  const server = createNetServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => socket.resetAndDestroy());
  });
  const close = track(server);
  return { port: await listen(server), server, seen: [], close };
}

/** Accepts connections and never answers (the proxy's upstream timeout must end it). */
export async function startHangingOrigin(): Promise<Origin<NetServer>> {
  const server = createNetServer((socket) => {
    socket.on('error', () => undefined);
    socket.resume();
  });
  const close = track(server);
  return { port: await listen(server), server, seen: [], close };
}

/** A port that never answers the TCP handshake (see startBlackholePort). */
export interface Blackhole {
  readonly port: number;
  close(): Promise<void>;
}

/** Listens with the smallest accept queue Node allows, then blocks its event loop, so that nothing is ever accepted. */
const NEVER_ACCEPTING_LISTENER = `
const server = require('node:net').createServer();
server.listen({ port: 0, host: process.argv[1], backlog: 1 }, () => {
  process.stdout.write(server.address().port + '\\n', () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0));
});`;

/**
 * A port on `host` whose TCP handshake never completes, as behind a firewall that drops:
 * a listener that never accepts, its accept queue filled, so that Linux drops every
 * further SYN (the client retransmits until its own deadline). The listener lives in a
 * child process whose event loop is blocked, since Node accepts on any listener it runs.
 */
export async function startBlackholePort(host = '127.0.0.1'): Promise<Blackhole> {
  const child = spawn(process.execPath, ['-e', NEVER_ACCEPTING_LISTENER, host], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve(Number(line)));
    child.once('exit', (code) => reject(new Error(`the never-accepting listener exited (${code})`)));
  });
  // The kernel completes handshakes into the queue (backlog + 1 on Linux) as the SYNs arrive,
  // whatever this process's event loop is doing: more fillers than it holds fill it for sure.
  const fillers = Array.from({ length: 8 }, () => connect({ port, host }).on('error', () => undefined));
  let connected = 0;
  for (const socket of fillers) socket.once('connect', () => connected++);
  const close = async (): Promise<void> => {
    for (const socket of fillers) socket.destroy();
    child.kill('SIGKILL');
    await exited;
  };
  // Checked before it is handed out: some came up (a listener is there), and not all (the queue is full).
  await until('a connection to the never-accepting listener', () => connected > 0, 5_000).catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 300));
  if (connected === 0 || connected === fillers.length) {
    await close();
    throw new Error(`port ${port}: ${connected} of ${fillers.length} connections came up, not a full accept queue`);
  }
  return { port, close };
}
