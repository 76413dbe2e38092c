import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isForbiddenAddress, parseHostsFile, Resolver, ResolveError } from '../src/proxy/resolver.js';

function hostsFile(text: string): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'lachan-hosts-')), 'hosts');
  writeFileSync(file, text);
  return file;
}

describe('destination vetting', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['169.254.169.254', true],
    ['fe80::1', true],
    ['0.0.0.0', true],
    ['::', true],
    ['not an address', true],
    ['10.1.2.3', false],
    ['203.0.113.7', false],
    ['2001:db8::1', false],
    ['::ffff:203.0.113.7', false],
  ])('%s forbidden: %s', (address, forbidden) => {
    expect(isForbiddenAddress(address)).toBe(forbidden);
  });

  it('parses /etc/hosts format: comments, aliases, case, trailing dots; first mapping wins', () => {
    const map = parseHostsFile(
      '# school servers\n10.0.0.5  Thu-Vien.truong.vn.  tv # library\n10.0.0.6 tv\nbogus line\n\n::1 v6.test\n::ffff:10.0.0.7 mapped.test\n0:0:0:0:0:0:0:1 padded.test\n',
    );
    expect(map.get('thu-vien.truong.vn')?.address).toBe('10.0.0.5');
    expect(map.get('tv')?.address).toBe('10.0.0.5');
    expect(map.get('v6.test')).toMatchObject({ address: '::1', family: 6 });
    // Kept in canonical form: the address dialled is the one the file means.
    expect(map.get('mapped.test')).toMatchObject({ address: '10.0.0.7', family: 4 });
    expect(map.get('padded.test')?.address).toBe('::1');
    expect(map.has('bogus')).toBe(false);
  });
});

describe('Resolver', () => {
  const resolver = new Resolver(hostsFile('127.0.0.1 origin.test\n169.254.1.1 meta.test\n'));

  it('dials names the hosts file maps, even to loopback: the school meant it', async () => {
    await expect(resolver.resolve('origin.test')).resolves.toMatchObject({ address: '127.0.0.1', fromHostsFile: true });
    await expect(resolver.resolve('ORIGIN.test.'.toLowerCase())).resolves.toMatchObject({ address: '127.0.0.1' });
    await expect(resolver.resolve('meta.test')).resolves.toMatchObject({ address: '169.254.1.1' });
  });

  it('refuses loopback and link-local literals and names that resolve there', async () => {
    for (const host of ['127.0.0.1', '[::1]', '169.254.169.254', '[fe80::1]', 'localhost']) {
      const error = await resolver.resolve(host).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error, host).toBeInstanceOf(ResolveError);
      expect((error as ResolveError).code, host).toBe('LACHAN_FORBIDDEN_DESTINATION');
    }
  });

  it('shares one lookup between concurrent requests for a name, and vets each', async () => {
    const results = await Promise.allSettled([resolver.resolve('localhost'), resolver.resolve('localhost'), resolver.resolve('localhost')]);
    expect(results.every((r) => r.status === 'rejected' && (r.reason as ResolveError).code === 'LACHAN_FORBIDDEN_DESTINATION')).toBe(true);
  });

  it('reports names that do not resolve as DNS failures', async () => {
    const error = await resolver.resolve('no-such-name.invalid').then(
      () => null,
      (e: unknown) => e,
    );
    expect((error as ResolveError).code).toBe('LACHAN_DNS_FAILED');
  });
});
