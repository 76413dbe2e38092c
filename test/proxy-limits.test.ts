import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, type Origin, policyYaml, rawStatus, refusedPort, type RunningGateway, startGateway, startHttpOrigin } from './harness/index.js';

let origin: Origin;
let proxy: RunningGateway;

beforeAll(async () => {
  origin = await startHttpOrigin((_req, res) => res.end('ok'));
  proxy = await startGateway({
    rules: {
      'policy.yaml': policyYaml({ defaultProfile: 'p', profiles: { p: { name: 'P', blockCategories: ['games'] } } }),
      'categories/games/domains': 'game.test\n',
    },
    hosts: '127.0.0.1 origin.test game.test\n',
    args: ['--header-timeout', '1000'],
  });
});

afterAll(async () => {
  await proxy?.stop();
  await origin?.close();
});

describe('client limits', () => {
  it('closes a connection whose headers never finish (slowloris), and keeps serving others', async () => {
    const answer = await new Promise<{ text: string; closed: boolean }>((resolve) => {
      const socket = connect(proxy.port, '127.0.0.1', () => socket.write(`GET http://origin.test:${origin.port}/ HTTP/1.1\r\nHost: origin.test\r\nX-Slow: a`));
      let text = '';
      // Generous: the assertion is that the proxy hangs up, not how fast.
      const giveUp = setTimeout(() => {
        socket.destroy();
        resolve({ text, closed: false });
      }, 20_000);
      socket.on('data', (c: Buffer) => (text += c.toString()));
      socket.on('close', () => {
        clearTimeout(giveUp);
        resolve({ text, closed: true });
      });
      socket.on('error', () => undefined);
    });
    expect(answer.closed).toBe(true);
    if (answer.text !== '') expect([400, 408]).toContain(rawStatus(answer.text));
    expect((await curl(proxy.port, `http://origin.test:${origin.port}/`)).body).toBe('ok');
  });
});

describe('admin listener', () => {
  it('reports blocks by category and profile, upstream errors, the decision cache and latency', async () => {
    const dead = await refusedPort();
    await curl(proxy.port, `http://game.test:${origin.port}/`);
    await curl(proxy.port, `http://game.test:${origin.port}/other`);
    await curl(proxy.port, `http://origin.test:${dead}/`);
    for (let i = 0; i < 3; i++) await curl(proxy.port, `http://origin.test:${origin.port}/same`);
    const metrics = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
    expect(metrics).toContain('lachan_blocks_total{category="games",profile="p"} 2');
    expect(metrics).toContain('lachan_upstream_errors_total{kind="refused"} 1');
    const ratio = Number(/lachan_decision_cache_hit_ratio ([\d.]+)/.exec(metrics)?.[1]);
    expect(ratio).toBeGreaterThan(0);
    expect(metrics).toMatch(/lachan_request_duration_seconds_count [1-9]/);
    expect(await (await fetch(`http://127.0.0.1:${proxy.adminPort}/healthz`)).text()).toBe('ok\n');
    // The proxy port does not expose them.
    expect((await fetch(`http://127.0.0.1:${proxy.port}/metrics`)).status).toBe(400);
  });
});
