import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { lachan, makeRulesDir, removeDir, SHARED_DATA } from './harness/index.js';

const POLICY = `version: 1
default_profile: thcs
profiles:
  thcs:
    name: "THCS"
    block_categories: [gambling]
`;

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

describe('lachan check with brand rules', () => {
  it('blocks a brand under a suffix no list has, naming the listed domains it was derived from', () => {
    const dir = makeRulesDir({
      'policy.yaml': POLICY,
      'categories/gambling/domains': '# old list\n3bet.bike\n3bet.ski\nwww.3bet.moe\n',
      'categories/gambling/brands': '# derive from the lists\n',
    });
    dirs.push(dir);
    const result = lachan([
      'check',
      '--profile',
      'thcs',
      '--rules',
      dir,
      '--json',
      'http://3bet.newtld/',
      'https://www.google.com/',
      'http://3bet.example.com/',
    ]);
    expect(result.code).toBe(0);
    const [brand, topSite, other] = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(brand).toEqual({
      action: 'block',
      profile: 'thcs',
      category: 'gambling',
      reason: 'domain',
      rule: '3bet.*',
      source: `derived from 3 listed domains (${path.join(dir, 'categories/gambling/domains')})`,
    });
    expect(topSite).toMatchObject({ action: 'allow', reason: 'default' });
    expect(other).toMatchObject({ action: 'allow', reason: 'default' });
  });

  it('derives a brand from listed sites only, not from one listed host under a site', () => {
    const dir = makeRulesDir({
      'policy.yaml': POLICY,
      // A bookmaker listed as a site, and an ad pixel and a CDN shard listed as single hosts.
      'categories/gambling/domains': 'www.lucky88.top\npixel-us.win9ads.com\nimg02.cdn7.example-shard9.net\n',
      'categories/gambling/brands': '',
    });
    dirs.push(dir);
    const hosts = ['http://lucky88.moe/', 'http://win9ads.net/', 'http://track.win9ads.com/', 'http://example-shard9.org/', 'http://pixel-us.win9ads.com/'];
    const result = lachan(['check', '--profile', 'thcs', '--rules', dir, '--json', ...hosts]);
    expect(result.code).toBe(0);
    const [brand, otherSuffix, sibling, shardSite, listed] = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(brand).toMatchObject({
      action: 'block',
      rule: 'lucky88.*',
      source: `derived from 1 listed domain (${path.join(dir, 'categories/gambling/domains')})`,
    });
    // The pixel's siblings and the same name under other suffixes stay open; the listed host itself is blocked.
    for (const decision of [otherSuffix, sibling, shardSite]) expect(decision).toMatchObject({ action: 'allow', reason: 'default' });
    expect(listed).toMatchObject({ action: 'block', reason: 'domain', rule: 'pixel-us.win9ads.com' });
  });

  it('with the shipped rules, blocks a shipped brand under a new suffix and none of the top 2,000 sites by brand or host signal', () => {
    const brand = lachan(['check', '--profile', 'thcs', '--rules', 'rules', '--json', 'http://789club.zz/']);
    const line = readFileSync('rules/categories/gambling/brands', 'utf8').split('\n').indexOf('789club') + 1;
    expect(JSON.parse(brand.stdout)).toEqual({
      action: 'block',
      profile: 'thcs',
      category: 'gambling',
      reason: 'domain',
      rule: '789club.*',
      source: `rules/categories/gambling/brands:${line}`,
    });
    const top = readFileSync(path.join(SHARED_DATA, 'topsites/umbrella-top-100k.txt'), 'utf8').split('\n').filter(Boolean).slice(0, 2000);
    const result = lachan(['check', '--profile', 'mam-non', '--rules', 'rules', '--json', '-'], top.map((h) => `http://${h}/`).join('\n'));
    expect(result.code).toBe(0);
    const byBrandOrSignal = result.stdout
      .trim()
      .split('\n')
      .map((l, i) => ({ host: top[i], ...JSON.parse(l) }))
      .filter((d) => d.action === 'block' && (/\.\*$/.test(d.rule ?? '') || /derived|brands:|host-signals:/.test(d.source ?? '')));
    expect(byBrandOrSignal).toEqual([]);
  });

  it('rules lint counts the brands and refuses a broken brands or host-signals line with FILE:LINE', () => {
    const good = makeRulesDir({ 'policy.yaml': POLICY, 'categories/gambling/domains': '3bet.bike\n3bet.ski\n', 'categories/gambling/brands': 'hitclub\n' });
    const bad = makeRulesDir({
      'policy.yaml': POLICY,
      'categories/gambling/domains': '',
      'categories/gambling/brands': '# brands\n3bet.bike\n',
      'categories/gambling/host-signals': 'nhà cái\nbet\n',
    });
    dirs.push(good, bad);
    const ok = lachan(['rules', 'lint', '--rules', good]);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toMatch(/, 2 thương hiệu \(viết tay và suy ra\)$/m);
    const refused = lachan(['rules', 'lint', '--rules', bad]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/categories\/gambling\/brands:2: .*bad brand "3bet\.bike"/);
    expect(refused.stdout).toMatch(/categories\/gambling\/host-signals:2: .*host signal "bet"/);
  });
});
