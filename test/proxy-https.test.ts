import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { curl, interceptionFiles, type RunningGateway, startGateway, startHttpsOrigin } from './harness/index.js';

let secure: { server: Server; port: number; caPem: string };
let safe: { server: Server; port: number; caPem: string };
let bank: { server: Server; port: number; caPem: string };
let inspecting: RunningGateway;
/** The school CA's certificate, and the test origins' CA (what a client trusts to see an origin itself). */
let schoolCa: string;
let originCaFile: string;

const policy = (port: number, inspect: boolean): string => `version: 1
default_profile: hoc-sinh
profiles:
  hoc-sinh:
    name: "Học sinh"
    block_categories: [gambling]
    block_keywords: [cờ bạc]
    inspect: ${inspect}
    safe_search: { google: true }
connect_ports: [443, ${port}]
# Every test device here has the school CA: intercept without waiting for the trust probe.
intercept: always
`;

beforeAll(async () => {
  // Origins with certificates from a CA the proxy trusts (NODE_EXTRA_CA_CERTS).
  secure = await startHttpsOrigin('secure.test');
  safe = await startHttpsOrigin('www.google.com', (req, res) => res.end(`safe endpoint ${req.url}`));
  bank = await startHttpsOrigin('bank.test', (_req, res) => res.end('ngân hàng'));
  // A secure WebSocket endpoint on the inspected origin: 101, then echo.
  secure.server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${req.headers.upgrade}\r\n\r\n`);
    socket.pipe(socket);
  });
  const files = interceptionFiles('THCS Thử nghiệm', secure.caPem);
  schoolCa = files.schoolCa;
  originCaFile = files.originCa;
  inspecting = await startGateway({
    rules: {
      'policy.yaml': policy(secure.port, true).replace(`[443, ${secure.port}]`, `[443, ${secure.port}, ${bank.port}]`),
      'categories/gambling/domains': 'bet.test\n',
      no_inspect: 'bank.test\n',
    },
    hosts: '127.0.0.1 secure.test bet.test bank.test\n',
    ...files.gateway,
  });
});

afterAll(async () => {
  await inspecting?.stop();
  for (const s of [secure, safe, bank]) s?.server.close();
});

describe('HTTPS with the school CA', () => {
  it('shows the block page over TLS, with a certificate for exactly that host chaining to the school CA', async () => {
    const result = await curl(inspecting.port, `https://bet.test:${secure.port}/ca-do`, ['--cacert', schoolCa]);
    expect(result.code).toBe(0); // curl verified the chain and the name
    expect(result.status).toBe(403);
    expect(result.headers['x-lachan-block']).toBe('gambling');
    expect(result.body).toContain('Trang này đã bị chặn');
  });

  it('loads an allowed inspected site, and a keyword in its query blocks', async () => {
    const allowed = await curl(inspecting.port, `https://secure.test:${secure.port}/bai-hoc?lop=5`, ['--cacert', schoolCa]);
    expect(allowed.code).toBe(0);
    expect(allowed.status).toBe(200);
    expect(JSON.parse(allowed.body).url).toBe('/bai-hoc?lop=5');
    const blocked = await curl(inspecting.port, `https://secure.test:${secure.port}/search?q=co+bac`, ['--cacert', schoolCa]);
    expect(blocked.status).toBe(403);
    expect(blocked.headers['x-lachan-block']).toBe('custom');
  });

  it('tunnels a no_inspect host untouched: the client sees the origin certificate', async () => {
    const own = await curl(inspecting.port, `https://bank.test:${bank.port}/`, ['--cacert', originCaFile]);
    expect(own.code).toBe(0);
    expect(own.body).toBe('ngân hàng');
    // The school CA did not sign what the client saw.
    expect((await curl(inspecting.port, `https://bank.test:${bank.port}/`, ['--cacert', schoolCa])).code).not.toBe(0);
  });
});

describe('secure WebSockets inside an inspected connection', () => {
  /** CONNECT, TLS trusting the school CA, then an upgrade request; resolves with what came back. */
  function wss(path: string, send: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const raw = netConnect(inspecting.port, '127.0.0.1', () =>
        raw.write(`CONNECT secure.test:${secure.port} HTTP/1.1\r\nHost: secure.test:${secure.port}\r\n\r\n`),
      );
      raw.once('data', (reply) => {
        if (!reply.toString().startsWith('HTTP/1.1 200')) return reject(new Error(reply.toString()));
        const tls = tlsConnect({ socket: raw, servername: 'secure.test', ca: [readFileSync(schoolCa, 'utf8')] }, () => {
          tls.write(`GET ${path} HTTP/1.1\r\nHost: secure.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
        });
        let received = '';
        tls.on('data', (chunk) => {
          received += chunk.toString();
          if (received.includes('\r\n\r\n') && received.startsWith('HTTP/1.1 101') && !received.includes(send)) tls.write(send);
          if (received.includes(send) || (received.includes('\r\n\r\n') && !received.startsWith('HTTP/1.1 101'))) {
            tls.destroy();
            resolve(received);
          }
        });
        tls.on('error', reject);
      });
    });
  }

  it('relays an allowed one both ways and blocks one whose URL carries a keyword', async () => {
    const echoed = await wss('/chat', 'xin chào');
    expect(echoed).toMatch(/^HTTP\/1\.1 101 /);
    expect(echoed).toContain('xin chào');
    const blocked = await wss('/chat?room=co-bac', 'x');
    expect(blocked).toMatch(/^HTTP\/1\.1 403 /);
  });
});

describe('safe search without interception', () => {
  it("dials the engine's safe endpoint for a CONNECT to Google; the client TLS stays intact", async () => {
    const proxy = await startGateway({
      rules: { 'policy.yaml': policy(safe.port, false), 'categories/gambling/domains': 'bet.test\n' },
      // www.google.com itself points nowhere useful; only the safe endpoint answers.
      hosts: `127.0.0.1 forcesafesearch.google.com\n127.0.0.2 www.google.com\n`,
    });
    try {
      const result = await curl(proxy.port, `https://www.google.com:${safe.port}/search?q=x`, ['--cacert', originCaFile]);
      expect(result.code).toBe(0);
      expect(result.body).toBe('safe endpoint /search?q=x');
    } finally {
      await proxy.stop();
    }
  });
});
