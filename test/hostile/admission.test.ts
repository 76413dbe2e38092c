import { Agent, request } from 'node:http';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, holdSockets, policyYaml, type RunningGateway, startGateway, startHttpOrigin, until } from '../harness/index.js';

/**
 * One client cannot lock the others out: real sockets from distinct loopback
 * addresses against a real proxy with small limits (the default-sized attack, 8,300
 * connections, is in admission.hostile.ts). Idle connections are what gets reclaimed;
 * the client is named by its pseudonymous device id, never its address.
 */

const MAX_CONNECTIONS = 150;
const MAX_CLIENT_CONNECTIONS = 50;

let origin: Server;
let originPort: number;
let proxy: RunningGateway;

beforeAll(async () => {
  ({ server: origin, port: originPort } = await startHttpOrigin());
  proxy = await startGateway({
    rules: { 'policy.yaml': policyYaml({ defaultProfile: 'hs', profiles: { hs: { name: 'Học sinh' } } }) },
    hosts: '127.0.0.1 origin.test\n',
    args: [
      '--max-connections',
      String(MAX_CONNECTIONS),
      '--max-client-connections',
      String(MAX_CLIENT_CONNECTIONS),
      '--transparent-http',
      '0',
      '--transparent-https',
      '0',
    ],
  });
});

afterAll(async () => {
  await proxy?.stop();
  origin?.close();
});

const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
const limitCount = (text: string, reason: string, outcome: string): number => {
  let total = 0;
  for (const match of text.matchAll(
    new RegExp(`lachan_connection_limit_total\\{reason="${reason}",outcome="${outcome}",client="([0-9a-f]{16})"\\} (\\d+)`, 'g'),
  ))
    total += Number(match[2]);
  return total;
};

describe('per-client connection limits', () => {
  it('one address opening four times its limit keeps only its limit, and another device still gets served', async () => {
    const before = limitCount(await metrics(), 'per-client', 'reclaimed');
    const attacker = await holdSockets(proxy.port, '127.0.0.2', 4 * MAX_CLIENT_CONNECTIONS);
    try {
      await until('the attacker holds its limit', () => attacker.open() === MAX_CLIENT_CONNECTIONS);
      const victim = await curl(proxy.port, `http://origin.test:${originPort}/`, { from: '127.0.0.3' });
      expect(victim.status).toBe(200);
      const text = await metrics();
      expect(limitCount(text, 'per-client', 'reclaimed') - before).toBe(3 * MAX_CLIENT_CONNECTIONS);
      expect(text).toContain(`lachan_client_connections_max ${MAX_CLIENT_CONNECTIONS}`);
      const line = await proxy.waitForLog((l) => l.msg === 'client connection limit reached' && l.reason === 'per-client');
      expect(line.client).toMatch(/^[0-9a-f]{16}$/);
      expect(line.limit).toBe(MAX_CLIENT_CONNECTIONS);
      // The gateway keeps no client addresses: not in the log, not in /metrics.
      expect(JSON.stringify(proxy.logs)).not.toContain('127.0.0.2');
      expect(text).not.toContain('127.0.0.2');
    } finally {
      await attacker.release();
    }
  });

  it('a lab behind one NAT address: as many parallel requests as the limit allows all succeed', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: MAX_CLIENT_CONNECTIONS - 5 });
    try {
      const statuses = await Promise.all(
        Array.from(
          { length: 3 * (MAX_CLIENT_CONNECTIONS - 5) },
          (_, i) =>
            new Promise<number>((resolve, reject) => {
              const req = request(
                {
                  host: '127.0.0.1',
                  port: proxy.port,
                  localAddress: '127.0.0.4',
                  agent,
                  path: `http://origin.test:${originPort}/pc/${i}`,
                  headers: { host: 'origin.test' },
                },
                (res) => {
                  res.resume();
                  res.on('end', () => resolve(res.statusCode ?? 0));
                },
              );
              req.on('error', reject);
              req.end();
            }),
        ),
      );
      expect(statuses.every((s) => s === 200)).toBe(true);
    } finally {
      agent.destroy();
    }
  });
});

describe('transparent ports', () => {
  it('count against the same per-client limit as the proxy port', async () => {
    const listening = proxy.logs.find((l) => l.msg === 'listening')!;
    const onProxyPort = await holdSockets(proxy.port, '127.0.0.6', MAX_CLIENT_CONNECTIONS / 2);
    const onHttp = await holdSockets(listening.transparentHttpPort as number, '127.0.0.6', MAX_CLIENT_CONNECTIONS / 2);
    const onHttps = await holdSockets(listening.transparentHttpsPort as number, '127.0.0.6', MAX_CLIENT_CONNECTIONS / 2);
    try {
      await until('the client holds its limit across the three ports', () => onProxyPort.open() + onHttp.open() + onHttps.open() === MAX_CLIENT_CONNECTIONS);
    } finally {
      await Promise.all([onProxyPort, onHttp, onHttps].map((held) => held.release()));
    }
  });
});

describe('busy connections are never reclaimed', () => {
  it('a client whose every connection carries a request gets its next connection refused, and every request still completes', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let arrived = 0;
    const slow = await startHttpOrigin((_req, res) => {
      arrived++;
      void released.then(() => res.end('late'));
    });
    const agent = new Agent({ keepAlive: true, maxSockets: MAX_CLIENT_CONNECTIONS });
    const get = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: proxy.port, localAddress: '127.0.0.5', agent, path: `http://origin.test:${slow.port}/`, headers: { host: 'origin.test' } },
          (res) => {
            let body = '';
            res.on('data', (chunk: Buffer) => (body += chunk.toString()));
            res.on('end', () => resolve(body));
          },
        );
        req.on('error', reject);
        req.end();
      });
    try {
      const before = limitCount(await metrics(), 'per-client', 'refused');
      const inFlight = Array.from({ length: MAX_CLIENT_CONNECTIONS }, get);
      await until('every request reached the origin', () => arrived === MAX_CLIENT_CONNECTIONS);
      const extra = await holdSockets(proxy.port, '127.0.0.5', 1);
      await until('the extra connection was refused', () => extra.closed() === 1);
      expect(limitCount(await metrics(), 'per-client', 'refused') - before).toBe(1);
      release();
      expect(await Promise.all(inFlight)).toEqual(Array.from({ length: MAX_CLIENT_CONNECTIONS }, () => 'late'));
    } finally {
      release();
      agent.destroy();
      slow.server.close();
    }
  });
});

describe('capacity pressure', () => {
  it('when the worker is full, an idle connection of the client holding the most is closed so a newcomer gets in', async () => {
    const before = limitCount(await metrics(), 'capacity', 'reclaimed');
    const heavy = await holdSockets(proxy.port, '127.0.0.10', MAX_CLIENT_CONNECTIONS);
    // Four lighter clients fill the rest: 50 + 4 × 25 = 150.
    const others = await Promise.all(
      ['127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14'].map((from) => holdSockets(proxy.port, from, (MAX_CONNECTIONS - MAX_CLIENT_CONNECTIONS) / 4)),
    );
    try {
      await until('the worker is full', async () => (await metrics()).includes(`lachan_open_connections ${MAX_CONNECTIONS}\n`));
      const newcomer = await curl(proxy.port, `http://origin.test:${originPort}/`, { from: '127.0.0.20' });
      expect(newcomer.status).toBe(200);
      await until("one of the heaviest client's idle connections was closed", () => heavy.closed() === 1);
      expect(others.map((held) => held.closed())).toEqual([0, 0, 0, 0]);
      expect(limitCount(await metrics(), 'capacity', 'reclaimed') - before).toBe(1);
    } finally {
      await Promise.all([heavy, ...others].map((held) => held.release()));
    }
  });
});
