import type { Server as NetServer } from 'node:net';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, type Origin, policyYaml, type RunningGateway, startGateway, startHttpOrigin, writeRulesFiles } from './harness/index.js';

let origin: Origin;
let echo: Origin<NetServer>;
let proxy: RunningGateway;

const rules = (blocked: string): Record<string, string> => ({
  'policy.yaml': policyYaml({ defaultProfile: 'p', profiles: { p: { name: 'P', blockDomains: [blocked] } }, connectPorts: [443, echoPort] }),
});
let echoPort = 0;

beforeAll(async () => {
  origin = await startHttpOrigin((req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('slow done'), 1500);
    else res.end('ok');
  });
  // A raw TCP echo service, reached through a CONNECT tunnel.
  const { createServer } = await import('node:net');
  const server = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  echoPort = (server.address() as { port: number }).port;
  echo = { port: echoPort, server, seen: [], close: () => new Promise((r) => server.close(() => r())) };
  proxy = await startGateway({ rules: rules('nothing.test'), hosts: '127.0.0.1 origin.test echo.test\n' });
});

afterAll(async () => {
  await proxy?.stop();
  await origin?.close();
  await echo?.close();
});

function reloads(): number {
  return proxy.logs.filter((l) => l.msg === 'rules reloaded').length;
}

describe('reload without dropping connections', () => {
  it('finishes a request in flight and keeps an open tunnel across a SIGHUP reload', async () => {
    const tunnel = connect(proxy.port, '127.0.0.1');
    tunnel.write(`CONNECT echo.test:${echoPort} HTTP/1.1\r\nHost: echo.test:${echoPort}\r\n\r\n`);
    let received = '';
    tunnel.on('data', (c: Buffer) => (received += c.toString()));
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (received.includes('\r\n\r\n')) {
          clearInterval(poll);
          resolve();
        }
      }, 20);
    });
    expect(received).toMatch(/^HTTP\/1\.1 200 /);

    const inFlight = curl(proxy.port, `http://origin.test:${origin.port}/slow`);
    await new Promise((r) => setTimeout(r, 300));
    const before = reloads();
    writeRulesFiles(proxy.rulesDir, rules('origin.test'));
    proxy.child.kill('SIGHUP');
    await proxy.waitForLog(() => reloads() > before);

    const slow = await inFlight;
    expect(slow.status).toBe(200);
    expect(slow.body).toBe('slow done');
    // New requests see the new rules…
    expect((await curl(proxy.port, `http://origin.test:${origin.port}/`)).status).toBe(403);
    // …and the tunnel opened before the reload still carries bytes both ways.
    received = '';
    tunnel.write('vẫn thông');
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (received.includes('vẫn thông')) {
          clearInterval(poll);
          resolve();
        }
      }, 20);
    });
    tunnel.destroy();
  });
});
