import { mkdirSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRules } from '../src/rules/loader.js';
import { parseTypedTarget } from '../src/proxy/target.js';
import type { Policy } from '../src/policy/engine.js';
import { makeRulesDir, removeDir, SHARED_DATA } from './harness/index.js';

// UT1 category folders dropped in unchanged (linked, not copied), French names kept.
const UT1 = path.join(SHARED_DATA, 'ut1');
const categories = readdirSync(UT1).filter((name) => statSync(path.join(UT1, name)).isDirectory());

let dir: string;
let policy: Policy;
let stats: { domains: number; urls: number; categories: number };

beforeAll(async () => {
  dir = makeRulesDir({
    'policy.yaml': `version: 1
default_profile: students
profiles:
  students:
    block_categories: [gambling, drogue, agressif, dating, vpn, doh, social_networks, adult]
    allow_categories: [liste_blanche]
  harm-only:
    block_categories: [gambling, drogue, agressif]
  staff:
    block_categories: [malware, phishing]
    block_ip_literals: false
`,
  });
  mkdirSync(path.join(dir, 'categories'));
  for (const name of categories) symlinkSync(path.join(UT1, name), path.join(dir, 'categories', name));
  const result = await loadRules(dir, { checkAll: true });
  expect(result.problems.filter((p) => p.severity === 'error')).toEqual([]);
  policy = result.policy!;
  stats = result.stats;
}, 120_000);
afterAll(() => removeDir(dir));

function decide(profile: string, url: string) {
  const target = parseTypedTarget(url)!;
  return policy.decide(profile, target.host, target.pathAndQuery);
}

describe('the real UT1 lists, dropped in unchanged', () => {
  it('loads every domains and urls line of every category without an error', () => {
    // Counts from ../shared/data/README.md: 794,568 domain lines, 42,360 URL lines.
    expect(stats.categories).toBe(26);
    expect(stats.domains).toBe(794_568);
    expect(stats.urls).toBe(42_360);
  });

  it.each([
    ['students', 'https://www.bet365.com/', 'block', 'gambling', 'bet365.com'],
    ['students', 'http://tinder.com/app', 'block', 'dating', 'tinder.com'],
    ['students', 'http://m.facebook.com/', 'block', 'social_networks', 'facebook.com'],
    ['students', 'http://nordvpn.com/', 'block', 'vpn', 'nordvpn.com'],
    ['students', 'https://dns.google/dns-query', 'block', 'doh', 'dns.google'],
    ['students', 'http://1.1.1.1/', 'block', 'doh', '1.1.1.1'],
    ['students', 'http://12.5.179.24/meth_info/x', 'block', 'drogue', '12.5.179.24/meth_info'],
    ['staff', 'https://www.bet365.com/', 'block', 'malware', 'bet365.com'],
    ['staff', 'http://1.1.1.1/', 'allow', null, null],
  ])('%s %s → %s %s', (profile, url, action, category, rule) => {
    expect(decide(profile, url)).toMatchObject({ action, category, rule });
  });

  it('names the real file and line of the deciding rule', () => {
    expect(decide('students', 'http://bet365.com/').source).toMatch(/categories\/gambling\/domains:2923$/);
  });

  it('blocks every entry of a category file it loaded, and leaves most of the top sites alone', () => {
    const gambling = readFileSync(path.join(UT1, 'gambling/domains'), 'utf8').trim().split('\n');
    let blocked = 0;
    for (let i = 0; i < gambling.length; i += 97) if (decide('students', `http://${gambling[i]}/`).action === 'block') blocked++;
    expect(blocked).toBe(Math.ceil(gambling.length / 97));

    const top = readFileSync(path.join(SHARED_DATA, 'topsites/umbrella-top-100k.txt'), 'utf8').trim().split('\n').slice(0, 2000);
    // The most visited sites are not gambling, drug or violence sites.
    const topBlocked = top.filter((host) => decide('harm-only', `http://${host}/`).action === 'block');
    expect(topBlocked.length).toBeLessThan(top.length * 0.01);
    expect(decide('students', 'http://www.google.com/').action).toBe('allow');
  });
});
