import type { IncomingMessage } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority, createCaMaterial } from '../src/tls/index.js';
import {
  type Blackhole,
  curl,
  type Handler,
  interceptionFiles,
  type Origin,
  policyYaml,
  type RunningGateway,
  startBlackholePort,
  startGateway,
  startHangingOrigin,
  startHttpsOrigin,
} from './harness/index.js';

/**
 * The origin side of intercepted HTTPS: requests inside a tunnel go to the origin over
 * kept-alive TLS connections (a handshake per request would cost more than the request),
 * and the origin's certificate is verified on every new connection, as a browser would.
 */

let origin: Origin & { caPem: string };
/** TLS connections the origin accepted, and how many of them resumed an earlier session. */
let originHandshakes = 0;
let resumedHandshakes = 0;
/** The TCP connections under the origin's TLS, by the gateway's port: a TLS socket cannot be reset, its TCP socket can. */
const originTcp = new Map<number, Socket>();
/** What /dut starts to send before its connection is reset. */
const HALF_PAGE = 'nửa bài học '.repeat(1_000);
let untrusted: Server;
/** Origins a client names by address (`https://127.0.0.1:…`, `https://[::1]:…`), with certificates for those addresses. */
let byIpv4: Origin & { caPem: string };
let byIpv6: Origin & { caPem: string };
/** Never answers the TCP handshake. */
let blackhole: Blackhole;
/** Takes the TCP connection and never says a word: a TLS handshake that never completes. */
let silent: Origin<NetServer>;
/** The gateway's connect deadline here (`--connect-timeout`, TCP and TLS handshake); the default is 10 s. */
const CONNECT_TIMEOUT_S = 2;
let proxy: RunningGateway;
let schoolCa: string;
let originCa: string;

/** The server name a TLS connection to an origin carried; Node gives false (or nothing) when the hello had none. */
function serverNameOf(socket: unknown): string | null {
  return (socket as TLSSocket & { servername?: string | false }).servername || null;
}

/** Answers what arrived and the server name its connection carried. */
const tellServerName: Handler = (req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.on('end', () => res.end(JSON.stringify({ sni: serverNameOf(req.socket), method: req.method, url: req.url, body })));
};

/** A secure WebSocket endpoint that answers the upgrade, says which server name its connection carried, and closes. */
function tellServerNameOnUpgrade(req: IncomingMessage, socket: Duplex): void {
  socket.end(
    `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n${JSON.stringify({ sni: serverNameOf(req.socket), url: req.url })}`,
  );
}

beforeAll(async () => {
  origin = await startHttpsOrigin('hoc.test', (req, res) => {
    if (req.url === '/dut') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 4 * Buffer.byteLength(HALF_PAGE) });
      // Reset once the gateway has read what came: a reset overtaking unread bytes reaches it as a plain end, not ECONNRESET.
      res.write(HALF_PAGE, () => setTimeout(() => originTcp.get(req.socket.remotePort ?? 0)?.resetAndDestroy(), 300));
      return;
    }
    const body = req.url === '/lon' ? 'bài học '.repeat(20_000) : `origin ${req.url}`;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) }).end(body);
  });
  origin.server.on('connection', (socket: Socket) => {
    const port = socket.remotePort ?? 0;
    originTcp.set(port, socket);
    socket.once('close', () => originTcp.delete(port));
  });
  origin.server.on('secureConnection', (socket: { isSessionReused(): boolean }) => {
    originHandshakes++;
    if (socket.isSessionReused()) resumedHandshakes++;
  });
  // An origin whose certificate chains to a CA the gateway does not trust.
  const strangerCa = await createCaMaterial({ schoolName: 'Không ai tin' });
  const strangerLeaf = await (await CertificateAuthority.fromPem(strangerCa.certPem, strangerCa.keyPem)).issue('la.test');
  untrusted = createHttpsServer({ cert: strangerLeaf.certPem, key: strangerLeaf.keyPem }, (_req, res) => res.end('must not be seen'));
  await new Promise<void>((resolve) => untrusted.listen(0, '127.0.0.1', resolve));
  const untrustedPort = (untrusted.address() as AddressInfo).port;
  byIpv4 = await startHttpsOrigin('127.0.0.1', tellServerName, '127.0.0.1');
  byIpv6 = await startHttpsOrigin('::1', tellServerName, '::1');
  for (const server of [byIpv4.server, byIpv6.server]) server.on('upgrade', tellServerNameOnUpgrade);
  blackhole = await startBlackholePort();
  silent = await startHangingOrigin();

  const files = interceptionFiles('THCS Kiểm thử', origin.caPem);
  schoolCa = files.schoolCa;
  originCa = files.originCa;
  proxy = await startGateway({
    rules: {
      'policy.yaml': policyYaml({
        defaultProfile: 'thcs',
        profiles: {
          thcs: { name: 'THCS', inspect: true, blockIpLiterals: false },
          // Not inspected: its HTTPS goes through plain tunnels.
          'khong-xem': { name: 'Không xem', blockIpLiterals: false },
        },
        connectPorts: [443, origin.port, untrustedPort, byIpv4.port, byIpv6.port, blackhole.port, silent.port],
        clients: [{ cidr: '127.0.0.2/32', profile: 'khong-xem' }],
        extra: 'intercept: always',
      }),
    },
    // ten-khac.test reaches hoc.test's origin, whose certificate does not name it. The
    // loopback addresses name themselves: the school means them, so the gateway dials them.
    hosts: '127.0.0.1 hoc.test ten-khac.test la.test khong-tra-loi.test im-lang.test 127.0.0.1\n::1 ::1\n',
    ...files.gateway,
    args: [...files.gateway.args, '--connect-timeout', String(CONNECT_TIMEOUT_S)],
  });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await origin?.close();
  await byIpv4?.close();
  await byIpv6?.close();
  await blackhole?.close();
  await silent?.close();
  untrusted?.closeAllConnections();
  await new Promise((resolve) => untrusted?.close(resolve));
});

describe('intercepted HTTPS to the origin', () => {
  it('serves many requests of one client connection over one TLS connection to the origin', async () => {
    const before = originHandshakes;
    const urls = Array.from({ length: 8 }, (_, i) => `https://hoc.test:${origin.port}/bai-${i}`);
    // One curl, eight URLs of one host: one CONNECT tunnel, reused for each request.
    const result = await curl(proxy.port, urls[urls.length - 1]!, { caPem: schoolCa, args: [...urls.slice(0, -1), '-v'] });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('Re-using existing connection');
    for (let i = 0; i < 8; i++) expect(result.body).toContain(`origin /bai-${i}`);
    // The file's first request: the pool is empty, so exactly one connection is made.
    expect(originHandshakes - before).toBe(1);
  });

  it('reuses the origin connection across clients, and a large page arrives whole', async () => {
    await curl(proxy.port, `https://hoc.test:${origin.port}/am-nong`, { caPem: schoolCa });
    const before = originHandshakes;
    for (let i = 0; i < 3; i++) {
      const result = await curl(proxy.port, `https://hoc.test:${origin.port}/lon`, { caPem: schoolCa });
      expect(result.status).toBe(200);
      expect(result.body).toBe('bài học '.repeat(20_000));
    }
    expect(originHandshakes - before).toBe(0);
  });

  it('answers HEAD with the head only, on the same connections', async () => {
    const before = originHandshakes;
    const result = await curl(proxy.port, `https://hoc.test:${origin.port}/lon`, { caPem: schoolCa, args: ['-I'] });
    expect(result.status).toBe(200);
    expect(result.headers['content-length']).toBe(String(Buffer.byteLength('bài học '.repeat(20_000))));
    expect(result.body).toBe('');
    expect(originHandshakes - before).toBe(0);
  });

  it('refuses an origin whose certificate the gateway does not trust, with the page saying so', async () => {
    const result = await curl(proxy.port, `https://la.test:${(untrusted.address() as AddressInfo).port}/`, { caPem: schoolCa });
    expect(result.status).toBe(502);
    expect(result.body).toContain('Trang web không an toàn');
    expect(result.body).not.toContain('must not be seen');
  });

  it('refuses an origin whose certificate names another host', async () => {
    const result = await curl(proxy.port, `https://ten-khac.test:${origin.port}/bai-hoc`, { caPem: schoolCa });
    expect(result.status).toBe(502);
    expect(result.body).toContain('Trang web không an toàn');
  });

  it('answers 504 at the connect deadline when the origin never completes the TCP or the TLS handshake, whichever client dials', async () => {
    const dials = [
      ['GET, TCP', `https://khong-tra-loi.test:${blackhole.port}/a`, []],
      ['POST, TCP', `https://khong-tra-loi.test:${blackhole.port}/b`, ['--data-binary', 'x']],
      ['GET, TLS', `https://im-lang.test:${silent.port}/c`, []],
      ['POST, TLS', `https://im-lang.test:${silent.port}/d`, ['--data-binary', 'x']],
    ] as const;
    // The clients wait well past the deadline, and give up well before the 10 s default: without the deadline they see no page.
    const results = await Promise.all(dials.map(([, url, args]) => curl(proxy.port, url, { caPem: schoolCa, maxTimeS: CONNECT_TIMEOUT_S + 3, args })));
    for (const [i, result] of results.entries()) {
      expect(result.status, dials[i]![0]).toBe(504);
      expect(result.body, dials[i]![0]).toContain('Trang web trả lời quá chậm');
    }
    const metrics = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
    expect(metrics).toContain(`lachan_upstream_errors_total{kind="timeout"} ${dials.length}`);
    expect((await curl(proxy.port, `https://hoc.test:${origin.port}/van-chay`, { caPem: schoolCa })).body).toBe('origin /van-chay');
  });

  it('resumes the TLS session when it has to connect to the origin again', async () => {
    // The origin drops its idle connections: the gateway's next request needs a new one.
    origin.server.closeIdleConnections();
    // Let the gateway see the close first, so that its next request dials (a request racing the close is retried, dialling too).
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = originHandshakes;
    const beforeResumed = resumedHandshakes;
    const result = await curl(proxy.port, `https://hoc.test:${origin.port}/lai`, { caPem: schoolCa });
    expect(result.body).toBe('origin /lai');
    expect(originHandshakes - before).toBe(1);
    expect(resumedHandshakes - beforeResumed).toBe(1);
  });

  it('still resumes the TLS session after an origin connection was reset mid-response', async () => {
    origin.server.closeIdleConnections();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const cut = await curl(proxy.port, `https://hoc.test:${origin.port}/dut`, { caPem: schoolCa });
    // The page is cut short: the student does not get a whole page that is not whole.
    expect(cut.code).not.toBe(0);
    // The reset came after a completed handshake: the session is still good, and the next connection resumes it.
    const before = originHandshakes;
    const beforeResumed = resumedHandshakes;
    const result = await curl(proxy.port, `https://hoc.test:${origin.port}/sau-khi-dut`, { caPem: schoolCa });
    expect(result.body).toBe('origin /sau-khi-dut');
    expect(originHandshakes - before).toBe(1);
    expect(resumedHandshakes - beforeResumed).toBe(1);
  });
});

/**
 * RFC 6066 allows only host names in server_name: an origin asked for by address gets a
 * client hello without SNI on every way the gateway dials it, and its certificate is
 * checked against the address (the origins' certificates name only their address).
 */
describe('HTTPS origins asked for by IPv4 or IPv6 address', () => {
  const addresses = (): [string, number][] => [
    ['127.0.0.1', byIpv4.port],
    ['[::1]', byIpv6.port],
  ];

  it('an intercepted GET reaches the origin with no server name, and the client gets the page', async () => {
    for (const [host, port] of addresses()) {
      const result = await curl(proxy.port, `https://${host}:${port}/bai-hoc`, { caPem: schoolCa, args: ['-g'] });
      expect(result.status, host).toBe(200);
      expect(JSON.parse(result.body), host).toEqual({ sni: null, method: 'GET', url: '/bai-hoc', body: '' });
    }
  });

  it('an intercepted POST, forwarded by the other client (requests with a body), sends no server name either', async () => {
    for (const [host, port] of addresses()) {
      const result = await curl(proxy.port, `https://${host}:${port}/nop-bai`, { caPem: schoolCa, args: ['-g', '--data-binary', 'bài làm'] });
      expect(result.status, host).toBe(200);
      expect(JSON.parse(result.body), host).toEqual({ sni: null, method: 'POST', url: '/nop-bai', body: 'bài làm' });
    }
  });

  it('a secure WebSocket inside an intercepted tunnel is relayed over TLS with no server name', async () => {
    for (const [host, port] of addresses()) {
      const result = await curl(proxy.port, `https://${host}:${port}/chat`, {
        caPem: schoolCa,
        args: ['-g', '--http1.1', '-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket'],
      });
      expect(result.status, host).toBe(101);
      expect(JSON.parse(result.body), host).toEqual({ sni: null, url: '/chat' });
    }
  });

  it('a plain CONNECT tunnel (a profile not inspected) reaches the origin by address; the client sees its own certificate', async () => {
    for (const [host, port] of addresses()) {
      // The origins' CA, not the school's: the TLS is the client's own, end to end.
      const result = await curl(proxy.port, `https://${host}:${port}/truc-tiep`, { from: '127.0.0.2', caPem: originCa, args: ['-g'] });
      expect(result.code, host).toBe(0);
      expect(result.headers.via, host).toBeUndefined();
      expect(JSON.parse(result.body), host).toEqual({ sni: null, method: 'GET', url: '/truc-tiep', body: '' });
    }
  });
});
