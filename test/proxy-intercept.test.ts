import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, interceptionFiles, type Origin, policyYaml, type RunningGateway, startGateway, startHttpsOrigin } from './harness/index.js';

let origin: Origin & { caPem: string };
let proxy: RunningGateway;
let schoolCa: string;
let originCa: string;

beforeAll(async () => {
  origin = await startHttpsOrigin('hoc.test', (req, res) => res.end(`origin ${req.url}`));
  const files = interceptionFiles('THCS Kiểm thử', origin.caPem);
  schoolCa = files.schoolCa;
  originCa = files.originCa;
  proxy = await startGateway({
    rules: {
      'policy.yaml': policyYaml({
        defaultProfile: 'thcs',
        profiles: { thcs: { name: 'THCS', blockCategories: ['gambling'], inspect: true }, 'giao-vien': { name: 'Giáo viên', inspect: false } },
        connectPorts: [443, origin.port],
        clients: [{ cidr: '127.0.0.3/32', profile: 'giao-vien' }],
        // Every test device here has the school CA: intercept without waiting for the trust probe.
        extra: 'intercept: always',
      }),
      'categories/gambling/domains': 'bet.test\n',
      'categories/gambling/urls': 'hoc.test/ca-do\n',
    },
    hosts: '127.0.0.1 hoc.test bet.test\n',
    ...files.gateway,
  });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await origin?.close();
});

describe('HTTPS with the school CA', () => {
  it('shows the block page over TLS for a blocked site, with a certificate from the school CA', async () => {
    const result = await curl(proxy.port, `https://bet.test:${origin.port}/dat-cuoc?id=7`, { caPem: schoolCa });
    expect(result.code).toBe(0);
    expect(result.status).toBe(403);
    expect(result.headers['x-lachan-block']).toBe('gambling');
    expect(result.body).toContain('<html lang="vi">');
    expect(result.body).toContain('bet.test');
  });

  it('decides inspected HTTPS URL by URL and forwards the rest to the origin, verified', async () => {
    const blocked = await curl(proxy.port, `https://hoc.test:${origin.port}/ca-do/bong-da`, { caPem: schoolCa });
    expect(blocked.status).toBe(403);
    const allowed = await curl(proxy.port, `https://hoc.test:${origin.port}/bai-hoc`, { caPem: schoolCa });
    expect(allowed.status).toBe(200);
    expect(allowed.body).toBe('origin /bai-hoc');
    expect(allowed.headers.via).toBe('1.1 lachan');
  });

  it('tunnels a profile without inspection untouched: the client sees the origin certificate', async () => {
    const tunnelled = await curl(proxy.port, `https://hoc.test:${origin.port}/ca-do/x`, { from: '127.0.0.3', caPem: originCa });
    expect(tunnelled.code).toBe(0);
    expect(tunnelled.body).toBe('origin /ca-do/x');
    // And the school CA does not verify it: no interception happened.
    const wrongCa = await curl(proxy.port, `https://hoc.test:${origin.port}/`, { from: '127.0.0.3', caPem: schoolCa });
    expect(wrongCa.code).not.toBe(0);
  });
});
