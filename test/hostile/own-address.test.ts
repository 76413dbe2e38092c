import { createServer, type Server } from 'node:http';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, policyYaml, type RunningDnsServer, type RunningGateway, startDnsServer, startGateway } from '../harness/index.js';

/**
 * The gateway's own address, written any way IPv6 can carry it, is refused like the
 * plain IPv4 form: a service on the gateway (here an HTTP server on every interface)
 * must never be reachable through the proxy, from DNS answers or literals.
 */

/** The gateway's address on its network (not loopback, not link-local): what a hostile name points at. */
const gateway = Object.values(networkInterfaces())
  .flatMap((list) => list ?? [])
  .find((entry) => entry.family === 'IPv4' && !entry.internal && !entry.address.startsWith('169.254.'))?.address;

const hex = (v4: string): string => {
  const [a, b, c, d] = v4.split('.').map(Number) as [number, number, number, number];
  return `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
};

describe.skipIf(gateway === undefined)('the gateway own address in IPv6 forms', () => {
  const own = gateway!;
  let service: Server;
  let servicePort: number;
  let dns: RunningDnsServer;
  let proxy: RunningGateway;

  beforeAll(async () => {
    service = createServer((_req, res) => res.end('gateway-service-secret'));
    await new Promise<void>((resolve) => service.listen(0, '::', resolve));
    servicePort = (service.address() as { port: number }).port;
    dns = await startDnsServer({
      'mapped.test': { aaaa: [`::ffff:${own}`] },
      'padded.test': { aaaa: [`0:0:0:0:0:ffff:${hex(own)}`] },
      'nat64.test': { aaaa: [`64:ff9b::${hex(own)}`] },
      'sixtofour.test': { aaaa: [`2002:${hex(own)}::1`] },
      'plain.test': { a: [own] },
    });
    proxy = await startGateway({
      rules: {
        'policy.yaml': policyYaml({ defaultProfile: 'gv', profiles: { gv: { name: 'Giáo viên', blockIpLiterals: false } }, connectPorts: [443, servicePort] }),
      },
      args: ['--dns-server', dns.address],
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    await dns?.close();
    service?.close();
  });

  it.each(['plain.test', 'mapped.test', 'padded.test', 'nat64.test', 'sixtofour.test'])('refuses %s, a name whose only answer is the gateway', async (name) => {
    const result = await curl(proxy.port, `http://${name}:${servicePort}/`);
    expect(result.status).toBe(403);
    expect(result.body).toContain('Địa chỉ không được phép');
    expect(result.body).not.toContain('gateway-service-secret');
  });

  it.each([
    ['mapped', () => `[::ffff:${own}]`],
    ['zero-padded mapped', () => `[0:0:0:0:0:ffff:${hex(own)}]`],
    ['compatible', () => `[::${own}]`],
    ['NAT64', () => `[64:ff9b::${own}]`],
  ] as const)('refuses the gateway as a %s literal', async (_form, literal) => {
    const result = await curl(proxy.port, `http://${literal()}:${servicePort}/`);
    expect(result.status).toBe(403);
    expect(result.body).not.toContain('gateway-service-secret');
  });

  it('refuses a CONNECT to the gateway in IPv4-mapped form, by name and by literal', async () => {
    for (const target of ['mapped.test', `[::ffff:${own}]`]) {
      const result = await curl(proxy.port, `https://${target}:${servicePort}/`, { args: ['-k'] });
      // curl shows the refused CONNECT's status, not its page.
      expect(result.status, target).toBe(403);
    }
  });
});
