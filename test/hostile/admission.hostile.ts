import { execFileSync } from 'node:child_process';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../src/proxy/server.js';
import { curl, holdSockets, policyYaml, type RunningGateway, startGateway, startHttpOrigin, until } from '../harness/index.js';

/**
 * The reported attack at full size, against the default limits: one host opening
 * ~8,300 idle connections (more than a worker's 8,192) must not lock other devices
 * out; nor must many hosts together filling the worker with idle connections.
 * Needs a file-descriptor limit above ~17,000 (`ulimit -n`).
 */

const ATTACK = 8_300;

let origin: Server;
let originPort: number;
let proxy: RunningGateway;

beforeAll(async () => {
  const limit = Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());
  if (limit < 2 * ATTACK + 1_000) throw new Error(`ulimit -n is ${limit}: the attack needs about ${2 * ATTACK + 1_000} descriptors`);
  ({ server: origin, port: originPort } = await startHttpOrigin());
  proxy = await startGateway({
    rules: { 'policy.yaml': policyYaml({ defaultProfile: 'hs', profiles: { hs: { name: 'Học sinh' } } }) },
    hosts: '127.0.0.1 origin.test\n',
    // Opening 8,500 sockets takes longer than the default header deadline, which would close the first before the last are open.
    args: ['--header-timeout', '300000'],
  });
});

afterAll(async () => {
  await proxy?.stop();
  origin?.close();
});

const served = async (from: string): Promise<boolean> => (await curl(proxy.port, `http://origin.test:${originPort}/`, { from })).status === 200;

describe('connection exhaustion at the default limits', () => {
  it(`one host opening ${ATTACK} idle connections keeps ${DEFAULT_LIMITS.maxClientConnections}, and 20 other devices are served meanwhile`, async () => {
    const attacker = await holdSockets(proxy.port, '127.0.0.2', ATTACK);
    try {
      await until('the attacker holds its limit', () => attacker.open() === DEFAULT_LIMITS.maxClientConnections, 60_000);
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => served(`127.0.1.${i + 1}`)));
      expect(results.every(Boolean)).toBe(true);
    } finally {
      await attacker.release();
    }
  });

  it("17 hosts filling the worker with idle connections: a newcomer is let in by reclaiming the heaviest host's idle one", async () => {
    const hosts = await Promise.all(Array.from({ length: 17 }, (_, i) => holdSockets(proxy.port, `127.0.2.${i + 1}`, 500)));
    try {
      const held = (): number => hosts.reduce((sum, h) => sum + h.open(), 0);
      // Past the worker's capacity: idle connections were reclaimed (Node's header deadline closes more of them as time goes on).
      await until('the worker holds no more than its capacity', () => held() <= DEFAULT_LIMITS.maxConnections, 60_000);
      const metrics = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
      expect(metrics).toMatch(/lachan_connection_limit_total\{reason="capacity",outcome="reclaimed",client="[0-9a-f]{16}"\} \d+/);
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => served(`127.0.3.${i + 1}`)));
      expect(results.every(Boolean)).toBe(true);
    } finally {
      await Promise.all(hosts.map((h) => h.release()));
    }
  });
});
