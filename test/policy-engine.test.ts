import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicy, loadRules } from '../src/rules/loader.js';
import { parseTypedTarget } from '../src/proxy/target.js';
import { Policy } from '../src/policy/engine.js';
import { DecisionCache, MAX_CACHED_PROFILES } from '../src/policy/decision-cache.js';
import type { Decision } from '../src/policy/types.js';
import { makeRulesDir, removeDir } from './harness/index.js';

const POLICY = `version: 1
default_profile: tieu-hoc
profiles:
  tieu-hoc:
    name: "Tiểu học"
    block_categories: [gambling, adult]
    allow_categories: [edu]
    block_domains: [blocked-by-school.example]
    allow_domains: [olm.vn, good.adult.example]
    block_keywords: [bài kiểm tra bị cấm]
    block_ip_literals: true
  thpt:
    name: "THPT"
    block_categories: [adult]
    block_ip_literals: true
  giao-vien:
    name: "Giáo viên"
    block_categories: []
    block_ip_literals: false
connect_ports: [443, 8443]
clients:
  - cidr: 10.20.0.0/16
    profile: thpt
  - cidr: 10.20.5.0/24
    profile: giao-vien
  - cidr: 2001:db8::/32
    profile: thpt
`;

const FILES = {
  'policy.yaml': POLICY,
  'categories/gambling/domains': '# casinos\nbet.example\nxn--cbc-tgzzn.example\nĐánhBạc.Example\n1.2.3.4\n',
  'categories/gambling/keywords': 'cờ bạc\n*nhacai*\n',
  'categories/adult/domains': 'adult.example\n',
  'categories/adult/urls': 'wiki.example/adult\n',
  'categories/edu/domains': 'school.bet.example\n',
  // a URL rule under a blocked domain: the path decides there, so the cache must not answer per host
  'categories/edu/urls': 'bet.example/hoc-tap\n',
  'categories/unused/domains': 'unused.example\n',
};

let dir: string;
let policy: Policy;

beforeAll(async () => {
  dir = makeRulesDir(FILES);
  policy = await loadPolicy(dir);
});
afterAll(() => removeDir(dir));

function decideUrl(profile: string, url: string) {
  const target = parseTypedTarget(url);
  if (target === null) throw new Error(`bad test URL ${url}`);
  return policy.decide(profile, target.host, target.pathAndQuery);
}

describe('decisions by profile (docs/contract.md §3)', () => {
  it.each([
    // [profile, url, action, reason, category, rule]
    ['tieu-hoc', 'http://bet.example/', 'block', 'domain', 'gambling', 'bet.example'],
    ['tieu-hoc', 'http://www.bet.example/page', 'block', 'domain', 'gambling', 'bet.example'],
    ['tieu-hoc', 'http://WWW.BET.EXAMPLE./', 'block', 'domain', 'gambling', 'bet.example'],
    ['tieu-hoc', 'http://notbet.example/', 'allow', 'default', null, null],
    ['thpt', 'http://bet.example/', 'allow', 'default', null, null],
    ['thpt', 'http://adult.example/x', 'block', 'domain', 'adult', 'adult.example'],
    // an allow category beats the parent's block: the more specific match wins
    ['tieu-hoc', 'http://school.bet.example/', 'allow', 'domain', 'edu', 'school.bet.example'],
    ['tieu-hoc', 'http://a.school.bet.example/', 'allow', 'domain', 'edu', 'school.bet.example'],
    // profile's own lists are category rules of that profile
    ['tieu-hoc', 'http://good.adult.example/', 'allow', 'domain', 'custom', 'good.adult.example'],
    ['tieu-hoc', 'http://x.blocked-by-school.example/', 'block', 'domain', 'custom', 'blocked-by-school.example'],
    ['thpt', 'http://blocked-by-school.example/', 'allow', 'default', null, null],
    // a URL rule is more specific than its domain; segment boundary
    ['thpt', 'http://wiki.example/adult/page', 'block', 'url', 'adult', 'wiki.example/adult'],
    ['thpt', 'http://wiki.example/adulthood', 'allow', 'default', null, null],
    // userinfo does not decide: the host does
    ['tieu-hoc', 'http://olm.vn@bet.example/', 'block', 'domain', 'gambling', 'bet.example'],
    ['tieu-hoc', 'http://bet.example@olm.vn/', 'allow', 'domain', 'custom', 'olm.vn'],
    // percent-encoded ASCII in the host is decoded before deciding
    ['tieu-hoc', 'http://%62et.example/', 'block', 'domain', 'gambling', 'bet.example'],
    // IDN: rule written in punycode, request in Unicode
    ['tieu-hoc', 'http://cờbạc.example/', 'block', 'domain', 'gambling', 'xn--cbc-tgzzn.example'],
    // …and written in Unicode (any case), requested in punycode
    ['tieu-hoc', 'http://www.xn--nhbc-4na10a004p.example/', 'block', 'domain', 'gambling', 'xn--nhbc-4na10a004p.example'],
    // IPv4 entry in a domains file matches that address, in any notation
    ['tieu-hoc', 'http://1.2.3.4/', 'block', 'domain', 'gambling', '1.2.3.4'],
    ['tieu-hoc', 'http://0x01020304/', 'block', 'domain', 'gambling', '1.2.3.4'],
    ['giao-vien', 'http://1.2.3.4/', 'allow', 'default', null, null],
    // bare IP addresses follow block_ip_literals
    ['tieu-hoc', 'http://93.184.216.34/', 'block', 'ip-literal', null, '93.184.216.34'],
    ['tieu-hoc', 'http://1572395042/', 'block', 'ip-literal', null, '93.184.216.34'],
    ['tieu-hoc', 'http://[2001:db8::1]/', 'block', 'ip-literal', null, '[2001:db8::1]'],
    ['giao-vien', 'http://93.184.216.34/', 'allow', 'default', null, null],
    // keywords: URL path and query, diacritics rule, wildcard
    ['tieu-hoc', 'http://news.example/tin/co-bac-online', 'block', 'keyword', 'gambling', 'cờ bạc'],
    ['tieu-hoc', 'http://search.example/?q=c%E1%BB%9D+b%E1%BA%A1c', 'block', 'keyword', 'gambling', 'cờ bạc'],
    ['tieu-hoc', 'http://news.example/tin/co-bac-online', 'block', 'keyword', 'gambling', 'cờ bạc'],
    ['tieu-hoc', 'http://vn88nhacai.example/', 'block', 'keyword', 'gambling', '*nhacai*'],
    ['tieu-hoc', 'http://search.example/?q=bai+kiem+tra+bi+cam', 'block', 'keyword', 'custom', 'bài kiểm tra bị cấm'],
    ['thpt', 'http://news.example/tin/co-bac-online', 'allow', 'default', null, null],
    // allow_domains is trusted: keywords do not override it
    ['tieu-hoc', 'http://olm.vn/bai/co-bac', 'allow', 'domain', 'custom', 'olm.vn'],
  ])('%s %s → %s (%s)', (profile, url, action, reason, category, rule) => {
    const decision = decideUrl(profile, url);
    expect(decision).toMatchObject({ action, reason, category, rule, profile });
  });

  it('names the file and line of the deciding rule', () => {
    expect(decideUrl('tieu-hoc', 'http://bet.example/').source).toMatch(/categories\/gambling\/domains:2$/);
    expect(decideUrl('tieu-hoc', 'http://x.blocked-by-school.example/').source).toMatch(/policy\.yaml:8$/);
    expect(decideUrl('tieu-hoc', 'http://vn88nhacai.example/').source).toMatch(/categories\/gambling\/keywords:2$/);
    expect(decideUrl('tieu-hoc', 'http://nothing.example/').source).toBeNull();
  });

  it('refuses CONNECT to ports outside connect_ports, and decides the host otherwise', () => {
    expect(policy.decideConnect('giao-vien', 'ok.example', 22)).toMatchObject({ action: 'block', reason: 'port', category: null });
    expect(policy.decideConnect('giao-vien', 'ok.example', 8443)).toMatchObject({ action: 'allow', reason: 'default' });
    expect(policy.decideConnect('tieu-hoc', 'bet.example', 443)).toMatchObject({ action: 'block', reason: 'domain' });
  });

  it('keeps cached answers apart per profile and URL', () => {
    for (let i = 0; i < 3; i++) {
      expect(decideUrl('tieu-hoc', 'http://bet.example/').action).toBe('block');
      expect(decideUrl('thpt', 'http://bet.example/').action).toBe('allow');
      expect(decideUrl('thpt', 'http://wiki.example/adult').action).toBe('block');
      expect(decideUrl('thpt', 'http://wiki.example/').action).toBe('allow');
    }
    expect(policy.cacheStats().hits).toBeGreaterThan(0);
  });

  it('answers per path where the path can decide, per host only where it cannot', () => {
    // Cached first: the domain decision for the host, then a URL rule under it.
    expect(decideUrl('tieu-hoc', 'http://bet.example/')).toMatchObject({ action: 'block', reason: 'domain' });
    expect(decideUrl('tieu-hoc', 'http://bet.example/hoc-tap/bai-1')).toMatchObject({ action: 'allow', reason: 'url', rule: 'bet.example/hoc-tap' });
    expect(decideUrl('tieu-hoc', 'http://www.bet.example/hoc-tap')).toMatchObject({ action: 'allow', reason: 'url' });
    expect(decideUrl('tieu-hoc', 'http://bet.example/other')).toMatchObject({ action: 'block', reason: 'domain' });
    // Keywords read the path: an allowed page of a host does not allow its other pages.
    expect(decideUrl('tieu-hoc', 'http://news.example/')).toMatchObject({ action: 'allow', reason: 'default' });
    expect(decideUrl('tieu-hoc', 'http://news.example/tin/co-bac-online')).toMatchObject({ action: 'block', reason: 'keyword' });
    expect(decideUrl('tieu-hoc', 'http://news.example/')).toMatchObject({ action: 'allow', reason: 'default' });
    // A blocked address stays blocked for every path, and other profiles keep their own answer.
    expect(decideUrl('tieu-hoc', 'http://93.184.216.34/a')).toMatchObject({ action: 'block', reason: 'ip-literal' });
    expect(decideUrl('tieu-hoc', 'http://93.184.216.34/b')).toMatchObject({ action: 'block', reason: 'ip-literal' });
    expect(decideUrl('giao-vien', 'http://93.184.216.34/b')).toMatchObject({ action: 'allow', reason: 'default' });
  });

  it('gives with a tiny, always-evicting cache exactly the uncached decisions', () => {
    // 8 entries for hundreds of URLs: every set collides and evicts all the time.
    const tiny = new Policy(policy.rules, { cacheSize: 8 });
    const uncached = new Policy(policy.rules, { cacheSize: 0 });
    const hosts = [
      'bet.example',
      'www.bet.example',
      'school.bet.example',
      'wiki.example',
      'news.example',
      'olm.vn',
      '93.184.216.34',
      'adult.example',
      'vn88nhacai.example',
    ];
    const paths = ['/', '/hoc-tap', '/hoc-tap/x', '/adult', '/adult/page', '/adulthood', '/tin/co-bac-online', '/?q=bai+kiem+tra+bi+cam', '/a', '/b'];
    const urls: [string, string, string][] = [];
    for (const profile of ['tieu-hoc', 'thpt', 'giao-vien']) for (const host of hosts) for (const path of paths) urls.push([profile, host, path]);
    for (let n = 0; n < 200; n++) urls.push(['tieu-hoc', `h${n}.example`, `/p${n % 7}`]);
    // Three passes in different orders, so entries are found, evicted and found again.
    for (const order of [1, 7, 13]) {
      for (let i = 0; i < urls.length; i++) {
        const [profile, host, path] = urls[(i * order) % urls.length]!;
        expect(tiny.decide(profile, host, path)).toEqual(uncached.decide(profile, host, path));
      }
    }
    const stats = tiny.cacheStats();
    expect(stats.hits).toBeGreaterThan(0);
    expect(stats.size).toBeLessThanOrEqual(8);
  });

  it('does not load categories no profile uses', async () => {
    const result = await loadRules(dir);
    expect(result.stats.categories).toBe(3);
    expect(decideUrl('tieu-hoc', 'http://unused.example/').action).toBe('allow');
  });
});

describe('client mapping', () => {
  it.each([
    ['10.20.1.1', 'thpt'],
    ['10.20.5.9', 'giao-vien'], // the /24 inside the /16 wins
    ['::ffff:10.20.5.9', 'giao-vien'],
    ['2001:db8::42', 'thpt'],
    ['192.0.2.1', 'tieu-hoc'],
    ['not-an-address', 'tieu-hoc'],
  ])('%s → %s', (address, profile) => {
    expect(policy.profileForAddress(address)).toBe(profile);
  });
});

describe('decision cache', () => {
  const decision = (n: number): Decision => ({
    action: n % 2 === 0 ? 'block' : 'allow',
    profile: `p${n}`,
    category: null,
    reason: 'default',
    rule: `r${n}`,
    source: null,
  });

  it('never answers for another key, whatever collides, and stays within its capacity', () => {
    const cache = new DecisionCache(8);
    expect(cache.capacity).toBe(8);
    const keys: [number, string, string][] = [];
    for (let n = 0; n < 300; n++) keys.push([n % 3, `host${n % 40}.example`, `/path/${n % 11}`]);
    // Same host and path under different profiles, same host under different paths, and
    // host-level entries next to path-level ones of the same host.
    keys.push([0, 'same.example', '/'], [1, 'same.example', '/'], [0, 'same.example', '/x']);
    const wanted = new Map<string, Decision>();
    keys.forEach(([profile, host, path], n) => {
      const key = `${profile} ${host} ${path}`;
      if (wanted.has(key)) return;
      if (cache.get(profile, host, path) === undefined) cache.remember(profile, host, path, decision(n), false);
      wanted.set(key, decision(n));
    });
    let hits = 0;
    for (const [profile, host, path] of keys) {
      const own = wanted.get(`${profile} ${host} ${path}`)!;
      const got = cache.get(profile, host, path);
      if (got === undefined) cache.remember(profile, host, path, own, false);
      else hits++;
      if (got !== undefined) expect(got).toEqual(own);
      // Just stored: found again, and it is this key's decision, not a set neighbour's.
      expect(cache.get(profile, host, path)).toEqual(own);
    }
    // Repeated keys (the same profile, host and path) met again while still cached.
    for (let round = 0; round < 3; round++) {
      for (const [profile, host, path] of keys.slice(0, 4)) {
        const got = cache.get(profile, host, path);
        if (got !== undefined) {
          hits++;
          expect(got).toEqual(wanted.get(`${profile} ${host} ${path}`));
        } else cache.remember(profile, host, path, wanted.get(`${profile} ${host} ${path}`)!, false);
      }
    }
    expect(hits).toBeGreaterThan(0);
    expect(cache.stats().size).toBeLessThanOrEqual(8);
  });

  it('keeps host entries for their profile and apart from path entries', () => {
    const cache = new DecisionCache(64);
    expect(cache.get(0, 'bet.example', '/a')).toBeUndefined();
    cache.remember(0, 'bet.example', '/a', decision(0), true);
    expect(cache.get(0, 'bet.example', '/other')).toEqual(decision(0));
    expect(cache.get(1, 'bet.example', '/a')).toBeUndefined();
    cache.remember(1, 'bet.example', '/a', decision(1), false);
    expect(cache.get(1, 'bet.example', '/a')).toEqual(decision(1));
    expect(cache.get(1, 'bet.example', '/b')).toBeUndefined();
    expect(cache.get(0, 'bet.example', '/b')).toEqual(decision(0));
  });

  it('answers host entries and path entries of many hosts side by side, under eviction', () => {
    // 16 sets: hosts with host entries and hosts with path entries share sets and the
    // bitmap that says which hosts to look up as hosts first.
    const cache = new DecisionCache(64);
    const wholeHost = (host: number): boolean => host % 3 === 0;
    const wanted = new Map<string, Decision>();
    let seed = 7;
    let hits = 0;
    for (let n = 0; n < 5000; n++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const host = (seed >>> 8) % 60;
      const profile = (seed >>> 4) % 3;
      const path = `/p${(seed >>> 16) % 10}`;
      // A fresh string each time, as each request brings its own.
      const hostName = `h${host}.example`.slice(0);
      const key = wholeHost(host) ? `${profile} ${host}` : `${profile} ${host} ${path}`;
      if (!wanted.has(key)) wanted.set(key, decision(n));
      const got = cache.get(profile, hostName, path);
      if (got === undefined) cache.remember(profile, hostName, path, wanted.get(key)!, wholeHost(host));
      else {
        hits++;
        expect(got).toEqual(wanted.get(key));
      }
    }
    expect(hits).toBeGreaterThan(500);
    expect(cache.stats().size).toBeLessThanOrEqual(64);
  });

  it('keeps every profile index apart, and refuses one it cannot hold', () => {
    const cache = new DecisionCache(1024);
    for (let profile = 0; profile < MAX_CACHED_PROFILES; profile++) {
      expect(cache.get(profile, 'same.example', '/')).toBeUndefined();
      cache.remember(profile, 'same.example', '/', decision(profile), profile % 2 === 0);
    }
    for (let profile = 0; profile < MAX_CACHED_PROFILES; profile++) expect(cache.get(profile, 'same.example', '/')).toEqual(decision(profile));
    expect(() => cache.get(MAX_CACHED_PROFILES, 'same.example', '/')).toThrow(RangeError);
    expect(() => cache.get(-1, 'same.example', '/')).toThrow(RangeError);
  });

  it('never confuses two hosts whose fingerprints collide', () => {
    // 6,000 hosts in 16,384 sets with 5 more fingerprint bits in the key: a few pairs
    // share set and bits (birthday bound), and only the full comparison of the host
    // keeps their answers apart.
    const cache = new DecisionCache(1 << 16);
    const hosts = Array.from({ length: 6000 }, (_, n) => `cdn${n}.example.vn`);
    hosts.forEach((host, n) => {
      cache.get(0, host, '/');
      cache.remember(0, host, '/', decision(n), n % 2 === 0);
    });
    hosts.forEach((host, n) => {
      const got = cache.get(0, host.slice(0), '/');
      if (got !== undefined) expect(got).toEqual(decision(n));
    });
  });

  it('replaces a key remembered twice, and forgets everything on clear', () => {
    const cache = new DecisionCache(64);
    cache.remember(2, 'olm.vn', '/a', decision(1), false);
    cache.remember(2, 'olm.vn', '/a', decision(2), false);
    expect(cache.stats().size).toBe(1);
    expect(cache.get(2, 'olm.vn', '/a')).toEqual(decision(2));
    cache.remember(2, 'bet.example', '/x', decision(3), true);
    expect(cache.get(2, 'bet.example', '/y')).toEqual(decision(3));
    cache.clear();
    expect(cache.stats().size).toBe(0);
    expect(cache.get(2, 'olm.vn', '/a')).toBeUndefined();
    expect(cache.get(2, 'bet.example', '/y')).toBeUndefined();
    cache.remember(2, 'olm.vn', '/a', decision(4), false);
    expect(cache.get(2, 'olm.vn', '/a')).toEqual(decision(4));
  });

  it('keeps its entries when distinct decisions run past what a key can number', () => {
    // Every blocked address has its own decision (its rule): 70,000 of them through a
    // 64-entry cache. The decisions no entry uses are dropped, the entries stay.
    const cache = new DecisionCache(64);
    const distinct = (n: number): Decision => ({
      action: 'block',
      profile: 'p',
      category: null,
      reason: 'ip-literal',
      rule: `10.${n >> 16}.${(n >> 8) & 255}.${n & 255}`,
      source: null,
    });
    const host = (n: number): string => distinct(n).rule!;
    const lastEight = (n: number): void => {
      for (let back = n; back > n - 8; back--) expect(cache.get(0, host(back), '/x')).toEqual(distinct(back));
    };
    for (let n = 0; n < 65_536; n++) cache.remember(0, host(n), '/', distinct(n), true);
    lastEight(65_535);
    // The 65,537th decision: the cache goes on with what it held.
    cache.remember(0, host(65_536), '/', distinct(65_536), true);
    expect(cache.get(0, host(65_536), '/')).toEqual(distinct(65_536));
    let held = 0;
    for (let n = 65_528; n < 65_536; n++) if (cache.get(0, host(n), '/x') !== undefined) held++;
    expect(held).toBeGreaterThanOrEqual(7);
    for (let n = 65_537; n < 70_000; n++) cache.remember(0, host(n), '/', distinct(n), true);
    lastEight(69_999);
    expect(cache.stats().size).toBeLessThanOrEqual(64);
  });

  it('starts afresh when most of the decisions it numbers are still in use', () => {
    const cache = new DecisionCache(1 << 17);
    const distinct = (n: number): Decision => ({ ...decision(n), rule: `rule ${n}` });
    for (let n = 0; n < 65_536; n++) cache.remember(0, `h${n}.example`, '/', distinct(n), false);
    expect(cache.stats().size).toBeGreaterThan(60_000);
    cache.remember(0, 'one-more.example', '/', distinct(65_536), false);
    expect(cache.stats().size).toBe(1);
    expect(cache.get(0, 'one-more.example', '/')).toEqual(distinct(65_536));
    expect(cache.get(0, 'h0.example', '/')).toBeUndefined();
  });

  it.each([
    // A quarter full, as the bench's stream leaves it: nothing lost to a full set.
    [1024, 1024],
    // Half full: full sets spill next door, so almost nothing is evicted (96 % without).
    [2048, 2030],
  ])('holds %i entries in a 4,096-entry cache, at least %i of them', (count, atLeast) => {
    const cache = new DecisionCache(4096);
    for (let n = 0; n < count; n++) {
      cache.get(0, `site${n}.example`, '/');
      cache.remember(0, `site${n}.example`, '/', decision(n), false);
    }
    let found = 0;
    for (let n = 0; n < count; n++) {
      const got = cache.get(0, `site${n}.example`, '/');
      if (got !== undefined) {
        found++;
        expect(got).toEqual(decision(n));
      }
    }
    expect(found).toBeGreaterThanOrEqual(atLeast);
    expect(cache.stats().size).toBe(found);
  });
});
