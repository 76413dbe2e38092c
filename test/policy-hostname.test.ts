import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalRuleHost, isIpLiteral } from '../src/policy/hostname.js';
import { SHARED_DATA } from './harness/index.js';

/** What the proxy hands the engine: WHATWG URL's hostname. */
const requestHost = (url: string): string => new URL(url).hostname;

describe('canonicalRuleHost: domain-rule entries to the form requests carry', () => {
  it.each([
    ['example.com', 'example.com'],
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'],
    ['.afshin.ir', 'afshin.ir'],
    ['  pblcpush.com ', 'pblcpush.com'],
    ['\tmixed.Case.example\t', 'mixed.case.example'],
    ['_video-bagarre.com', '_video-bagarre.com'],
    ['abbyfaer_rkoa.tripod.com', 'abbyfaer_rkoa.tripod.com'],
    ['www.188Betcn2.com', 'www.188betcn2.com'],
    ['momovíđiệntửsố1.weebly.com', 'xn--momovints1-o8a64b3904adea8q.weebly.com'],
    ['MÜNCHEN.de', 'xn--mnchen-3ya.de'],
    ['cmd128.xn--6frz82g', 'cmd128.xn--6frz82g'],
    ['1.2.3.4', '1.2.3.4'],
    // numeric forms the URL parser reads as IPv4 become the dotted quad
    ['2130706433', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['010.0.0.1', '8.0.0.1'],
    ['01.2.3.4', '1.2.3.4'],
    // IPv6, bracketed or not, in URL.hostname's compressed form
    ['[::1]', '[::1]'],
    ['::1', '[::1]'],
    ['2001:DB8:0:0::1', '[2001:db8::1]'],
    ['[2001:db8::1', null],
    ['abc:80', null],
    // not hosts
    ['bad host.com', null],
    ['a..b', null],
    ['x/y', null],
    ['user@example.com', null],
    ['example.com:80', null],
    ['*.example.com', null],
    ['', null],
    ['.', null],
    ['   ', null],
    [`${'a'.repeat(64)}.com`, null],
    [`${'a'.repeat(63)}.com`, `${'a'.repeat(63)}.com`],
    ['999.1.1.1', null],
    ['example.123', null],
  ])('%j → %j', (raw, expected) => {
    expect(canonicalRuleHost(raw)).toBe(expected);
  });

  it.each([
    ['http://Example.COM./x', 'example.com.'],
    ['http://momovíđiệntửsố1.weebly.com/', 'xn--momovints1-o8a64b3904adea8q.weebly.com'],
    ['http://0x7f.1/', '127.0.0.1'],
    ['http://2130706433/', '127.0.0.1'],
    ['http://0177.0.0.1/', '127.0.0.1'],
  ])('a rule written like the host of %s compares equal to the request host', (url, hostname) => {
    const host = requestHost(url);
    expect(host).toBe(hostname);
    expect(canonicalRuleHost(new URL(url).host)).toBe(host.endsWith('.') ? host.slice(0, -1) : host);
  });

  it('brings the raw Unicode names of hostsVN threat to the punycode a browser sends', () => {
    const lines = readFileSync(path.join(SHARED_DATA, 'hostsvn/extensions/threat/domain.txt'), 'utf8').split('\n');
    const unicode = lines.filter((line) => /[^\x00-\x7f]/.test(line));
    expect(unicode).toHaveLength(4);
    for (const name of unicode) {
      const canonical = canonicalRuleHost(name);
      expect(canonical).toMatch(/^[a-z0-9.-]*xn--/);
      expect(canonical).toBe(requestHost(`http://${name}/`));
    }
  });

  it('leaves every UT1 gambling and games entry as written (already canonical)', () => {
    for (const category of ['gambling', 'games']) {
      const lines = readFileSync(path.join(SHARED_DATA, `ut1/${category}/domains`), 'utf8')
        .trim()
        .split('\n');
      const changed = lines.filter((line) => canonicalRuleHost(line) !== line);
      expect(changed).toEqual([]);
    }
  });
});

describe('isIpLiteral, on hosts as URL.hostname writes them', () => {
  it.each([
    ['1.2.3.4', true],
    ['255.255.255.255', true],
    ['[::1]', true],
    ['[2001:db8::1]', true],
    [requestHost('http://0x7f.1/'), true],
    ['1.2.3.4.example', false],
    ['example.123', false],
    ['1.2.3', false],
    ['example.com', false],
    ['xn--6frz82g', false],
    ['', false],
  ])('%j → %j', (host, expected) => {
    expect(isIpLiteral(host)).toBe(expected);
  });
});
