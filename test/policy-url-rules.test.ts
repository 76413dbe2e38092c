import { describe, expect, it } from 'vitest';
import { UrlSetBuilder, normalisePercent, parseUrlRule } from '../src/policy/urls.js';
import { DomainSetBuilder } from '../src/policy/domains.js';
import { canonicalRuleHost, isIpLiteral } from '../src/policy/hostname.js';
import { CATEGORY_ALLOWS, CATEGORY_BLOCKS, CATEGORY_IGNORED } from '../src/policy/types.js';

const BLOCK = 0;
const ALLOW = 1;
const OTHER = 2;
const actions = Uint8Array.of(CATEGORY_BLOCKS, CATEGORY_ALLOWS, CATEGORY_IGNORED);

function urlSet(rules: [string, number][]) {
  const builder = new UrlSetBuilder();
  rules.forEach(([rule, category], i) => {
    expect(builder.add(rule, category, 1, i + 1)).toBeNull();
  });
  return builder.build();
}

describe('URL rules (UT1/squidGuard urls)', () => {
  const set = urlSet([
    ['example.com/porn', BLOCK],
    ['example.com/porn/ok', ALLOW],
    ['Example.COM/Case/Sensitive', BLOCK],
    ['example.com/caf%c3%a9', BLOCK],
    ['example.com/~user', BLOCK],
    ['example.com/index.php?id=5', BLOCK],
    ['games.example/dir/', BLOCK],
    ['http://www.site.example/x', BLOCK],
    ['1152957.wcomhost.example/&gt;', BLOCK],
    ['frag.example/page#section', BLOCK],
    ['ignored.example/x', OTHER],
  ]);
  const decide = (host: string, path: string): string | null => {
    const match = set.lookup(host, path, actions);
    return match === null ? null : `${set.categoryOf(match.entry) === ALLOW ? 'allow' : 'block'} ${set.ruleText(match.entry)}`;
  };

  it.each([
    ['example.com', '/porn', 'block example.com/porn'],
    ['example.com', '/porn/', 'block example.com/porn'],
    ['example.com', '/porn/x.html', 'block example.com/porn'],
    ['example.com', '/porn?x=1', 'block example.com/porn'],
    ['sub.example.com', '/porn', 'block example.com/porn'],
    // segment boundary: not a prefix of a longer word
    ['example.com', '/pornography', null],
    ['example.com', '/', null],
    // the longer path is more specific, and it allows
    ['example.com', '/porn/ok/page', 'allow example.com/porn/ok'],
    // the path is case-sensitive, the host is not
    ['example.com', '/Case/Sensitive', 'block example.com/Case/Sensitive'],
    ['example.com', '/case/sensitive', null],
    // percent-encoding written two ways compares equal
    ['example.com', '/caf%C3%A9', 'block example.com/caf%C3%A9'],
    ['example.com', '/%7Euser', 'block example.com/~user'],
    // a rule with a query is a prefix of path and query
    ['example.com', '/index.php?id=5', 'block example.com/index.php?id=5'],
    ['example.com', '/index.php?id=5&x=1', 'block example.com/index.php?id=5'],
    ['example.com', '/index.php?id=55', null],
    ['example.com', '/index.php', null],
    // a rule ending in / covers everything below
    ['games.example', '/dir/anything', 'block games.example/dir/'],
    // scheme stripped, www kept as written
    ['www.site.example', '/x', 'block www.site.example/x'],
    ['site.example', '/x', null],
    // HTML-escaped entries and fragments in real lists
    ['1152957.wcomhost.example', '/%3E', 'block 1152957.wcomhost.example/%3E'],
    ['frag.example', '/page', 'block frag.example/page'],
    // a category the profile ignores does not decide
    ['ignored.example', '/x', null],
  ])('%s%s → %s', (host, path, expected) => {
    expect(decide(host, path)).toBe(expected);
  });

  it('refuses a line without a host', () => {
    expect(typeof parseUrlRule('/just/a/path')).toBe('string');
    expect(typeof parseUrlRule('bad host/x')).toBe('string');
  });

  it('normalises percent-encoding', () => {
    expect(normalisePercent('/a%2fb%7e%41')).toBe('/a%2Fb~A');
    expect(normalisePercent('/plain')).toBe('/plain');
  });
});

describe('host canonicalisation of domain rules', () => {
  it.each([
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'],
    ['.afshin.ir', 'afshin.ir'],
    ['  pblcpush.com ', 'pblcpush.com'],
    ['_video-bagarre.com', '_video-bagarre.com'],
    ['www.188Betcn2.com', 'www.188betcn2.com'],
    ['momovíđiệntửsố1.weebly.com', 'xn--momovints1-o8a64b3904adea8q.weebly.com'],
    ['cmd128.xn--6frz82g', 'cmd128.xn--6frz82g'],
    ['1.2.3.4', '1.2.3.4'],
    ['bad host.com', null],
    ['a..b', null],
    ['x/y', null],
    ['', null],
    [`${'a'.repeat(64)}.com`, null],
  ])('%s → %s', (raw, expected) => {
    expect(canonicalRuleHost(raw)).toBe(expected);
  });

  it.each([
    ['1.2.3.4', true],
    ['[::1]', true],
    ['1.2.3.4.example', false],
    ['example.123', false],
    ['example.com', false],
  ])('isIpLiteral(%s) = %s', (host, expected) => {
    expect(isIpLiteral(host)).toBe(expected);
  });
});

describe('domain set', () => {
  const builder = new DomainSetBuilder();
  const rules: [string, number][] = [
    ['example.com', BLOCK],
    ['good.example.com', ALLOW],
    ['bad.good.example.com', BLOCK],
    ['both.test', BLOCK],
    ['both.test', ALLOW],
    ['1.2.3.4', BLOCK],
    ['3.4', BLOCK],
    ['ignored.test', OTHER],
    ['xxx', BLOCK],
  ];
  rules.forEach(([host, category], i) => {
    builder.add(host, category, 7, i + 1);
  });
  const set = builder.build();
  const decide = (host: string): string | null => {
    const match = set.lookup(host, actions);
    if (match === null) return null;
    return `${set.categoryOf(match.entry) === ALLOW ? 'allow' : 'block'} ${host.slice(match.suffixStart)} :${set.lineOf(match.entry)}`;
  };

  it.each([
    ['example.com', 'block example.com :1'],
    ['a.b.example.com', 'block example.com :1'],
    ['notexample.com', null],
    ['example.com.evil.test', null],
    ['good.example.com', 'allow good.example.com :2'],
    ['x.good.example.com', 'allow good.example.com :2'],
    ['bad.good.example.com', 'block bad.good.example.com :3'],
    ['both.test', 'allow both.test :5'],
    ['1.2.3.4', 'block 1.2.3.4 :6'],
    ['9.1.3.4', null], // an IP never matches by suffix, even where a rule "3.4" exists
    ['ignored.test', null],
    ['site.xxx', 'block xxx :9'],
  ])('%s → %s', (host, expected) => {
    expect(decide(host)).toBe(expected);
  });

  it('reports its size and compact footprint', () => {
    expect(set.size).toBe(rules.length);
    expect(set.fileOf(0)).toBe(7);
    expect(set.byteLength).toBeLessThan(rules.length * 16 + 1024);
  });
});
