import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicy, loadRules } from '../src/rules/loader.js';
import { parseTarget } from '../src/cli/check.js';
import type { Policy } from '../src/policy/engine.js';
import { makeRulesDir, removeDir } from './support/rules-dir.js';

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
  const target = parseTarget(url);
  if (target === null) throw new Error(`bad test URL ${url}`);
  return policy.decide(profile, target.host, target.pathAndQuery);
}

describe('decisions by profile (SPEC §3)', () => {
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
