import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalAddress, DestinationGuard, sameAddress } from '../src/proxy/addresses.js';
import { Resolver } from '../src/proxy/resolver.js';
import { type RunningDnsServer, startDnsServer } from './harness/index.js';

describe('canonicalAddress', () => {
  it.each([
    ['192.0.2.2', '192.0.2.2', 4, ['192.0.2.2']],
    ['127.1', '127.0.0.1', 4, ['127.0.0.1']],
    ['0x7f.0.0.1', '127.0.0.1', 4, ['127.0.0.1']],
    ['::ffff:192.0.2.2', '192.0.2.2', 4, ['192.0.2.2']],
    ['[::FFFF:C000:0202]', '192.0.2.2', 4, ['192.0.2.2']],
    ['0:0:0:0:0:ffff:c000:0202', '192.0.2.2', 4, ['192.0.2.2']],
    ['::192.0.2.2', '::c000:202', 6, ['192.0.2.2']],
    ['::ffff:0:192.0.2.2', '::ffff:0:c000:202', 6, ['192.0.2.2']],
    ['64:ff9b::192.0.2.2', '64:ff9b::c000:202', 6, ['192.0.2.2']],
    ['64:ff9b:1::c000:202', '64:ff9b:1::c000:202', 6, ['192.0.2.2']],
    ['2002:c000:0202::1', '2002:c000:202::1', 6, ['192.0.2.2']],
    ['2001:0:c000:202::3fff:fdfd', '2001:0:c000:202::3fff:fdfd', 6, ['192.0.2.2', '192.0.2.2']],
    ['2001:DB8:0:0::0001', '2001:db8::1', 6, []],
    ['fe80::1%eth0', 'fe80::1', 6, []],
  ] as const)('%s is %s', (text, canonical, family, ipv4) => {
    expect(canonicalAddress(text)).toEqual({ text: canonical, family, ipv4 });
  });

  it.each(['', 'example.com', '1.2.3.4.5', '::ffff:1.2.3', '::g', '[::1', '1.2.3.4:80', '::ffff:01.2.3.4'])('%j is no address', (text) => {
    expect(canonicalAddress(text)).toBeNull();
  });

  it('compares spellings, not strings', () => {
    expect(sameAddress('[::ffff:127.0.0.1]', '127.0.0.1')).toBe(true);
    expect(sameAddress('::1', '0:0:0:0:0:0:0:1')).toBe(true);
    expect(sameAddress('10.0.0.1', '10.0.0.2')).toBe(false);
    expect(sameAddress('nonsense', 'nonsense')).toBe(false);
  });
});

describe('DestinationGuard', () => {
  const guard = new DestinationGuard(['192.0.2.2', 'fd00::2', 'fe80::fc:ff:fe00:1%eth0']);
  const refuses = (text: string): boolean => guard.refuses(canonicalAddress(text)!);

  it.each([
    '192.0.2.2',
    '::ffff:192.0.2.2',
    '::192.0.2.2',
    '64:ff9b::c000:202',
    '2002:c000:202::',
    '2001:0:4136:e378::3fff:fdfd',
    'fd00::2',
    'fd00:0::0:2',
    '127.0.0.1',
    '::ffff:127.0.0.1',
    '64:ff9b::7f00:1',
    '2002:7f00:1::',
    '::',
    '::1',
    '0.0.0.0',
    '0.1.2.3',
    '169.254.169.254',
    '::ffff:169.254.169.254',
    '64:ff9b::a9fe:a9fe',
    'fe80::1',
    '255.255.255.255',
  ])('refuses %s', (text) => expect(refuses(text)).toBe(true));

  it.each(['192.0.2.3', '::ffff:203.0.113.7', '64:ff9b::cb00:7107', '2002:cb00:7107::', '2001:db8::1', 'fd00::3', '10.1.2.3'])('lets %s through', (text) => {
    expect(refuses(text)).toBe(false);
  });
});

describe('Resolver: the gateway own address from a real DNS server', () => {
  let dns: RunningDnsServer;
  beforeAll(async () => {
    dns = await startDnsServer({
      'mapped.test': { aaaa: ['::ffff:192.0.2.2'] },
      'nat64.test': { aaaa: ['64:ff9b::c000:202'] },
      'elsewhere.test': { aaaa: ['::ffff:203.0.113.7'] },
    });
  });
  afterAll(() => dns.close());

  it('refuses an AAAA answer that is the gateway in mapped or NAT64 form, and dials a mapped answer elsewhere as IPv4', async () => {
    const resolver = new Resolver(null, [dns.address], ['192.0.2.2']);
    await expect(resolver.resolve('mapped.test')).rejects.toMatchObject({ code: 'LACHAN_FORBIDDEN_DESTINATION' });
    await expect(resolver.resolve('nat64.test')).rejects.toMatchObject({ code: 'LACHAN_FORBIDDEN_DESTINATION' });
    await expect(resolver.resolve('[::ffff:c000:202]')).rejects.toMatchObject({ code: 'LACHAN_FORBIDDEN_DESTINATION' });
    await expect(resolver.resolve('elsewhere.test')).resolves.toEqual({ address: '203.0.113.7', family: 4, fromHostsFile: false });
  });
});
