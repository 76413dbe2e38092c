import { afterAll, describe, expect, it } from 'vitest';
import { BrandSetBuilder, registrableLabel } from '../src/policy/brands.js';
import { loadRules } from '../src/rules/loader.js';
import { CATEGORY_ALLOWS, CATEGORY_BLOCKS } from '../src/policy/types.js';
import type { Policy } from '../src/policy/engine.js';
import { makeRulesDir, removeDir } from './harness/index.js';

const POLICY = `version: 1
default_profile: tieu-hoc
profiles:
  tieu-hoc:
    name: "Tiểu học"
    block_categories: [gambling, adult]
    allow_domains: [3bet.edu.vn]
  giao-vien:
    name: "Giáo viên"
    block_categories: [adult]
`;

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

async function load(files: Record<string, string>): Promise<{ policy: Policy | null; problems: string[] }> {
  const dir = makeRulesDir({ 'policy.yaml': POLICY, 'categories/adult/domains': 'adult.example\n', 'categories/gambling/domains': '', ...files });
  dirs.push(dir);
  const result = await loadRules(dir);
  return { policy: result.policy, problems: result.problems.map((p) => `${p.file.slice(dir.length + 1)}:${p.line}: ${p.message}`) };
}

function decide(policy: Policy, host: string, path = '/'): { action: string; reason: string; rule: string | null; source: string | null } {
  const { action, reason, rule, source } = policy.decide('tieu-hoc', host, path);
  return { action, reason, rule, source };
}

describe('BrandSet', () => {
  const builder = new BrandSetBuilder();
  builder.add('3bet', 1, 2, 7);
  builder.add('789club', 1, 2, 8, 5);
  builder.add('789club', 2, 2, 9);
  const brands = builder.build();
  const blocksCategory1 = Uint8Array.of(0, CATEGORY_BLOCKS, 0);

  it('matches the registrable label under any public suffix, and its subdomains', () => {
    for (const host of ['3bet.bike', '3bet.ski', 'www.3bet.moe', '3bet.com.vn', 'm.3bet.newtld', '3bet.bike.']) {
      expect(brands.lookup(host, blocksCategory1), host).toBe(0);
    }
  });

  it('does not match a label that is not the registrable one', () => {
    for (const host of ['3bet.example.com', 'a.3bet.example.com', 'bike', '3bet', 'x3bet.bike', '3bets.bike', '1.2.3.4', '[::1]']) {
      expect(brands.lookup(host, blocksCategory1), host).toBe(-1);
    }
  });

  it('answers only for active categories, and an allow beats a block at one label', () => {
    expect(brands.lookup('3bet.bike', Uint8Array.of(0, 0, 0))).toBe(-1);
    expect(brands.lookup('789club.al', blocksCategory1)).toBe(1);
    expect(brands.lookup('789club.al', Uint8Array.of(0, CATEGORY_BLOCKS, CATEGORY_ALLOWS))).toBe(2);
    expect(brands.derivedFromOf(1)).toBe(5);
    expect(brands.derivedFromOf(0)).toBe(0);
  });

  it('reads the registrable label through the Public Suffix List', () => {
    expect(registrableLabel('www.3bet.com.vn')).toBe('3bet');
    expect(registrableLabel('shop.blogspot.com')).toBe('shop');
    expect(registrableLabel('10.0.0.1')).toBeNull();
  });
});

describe('brand rules from a category folder', () => {
  it('derives brands from the listed domains and names their source', async () => {
    const { policy, problems } = await load({
      'categories/gambling/domains':
        '3bet.bike\nwww.3bet.ski\nhitclub.top\nhitclub.vip\nsoloclub.top\nplain.com\nlucky88.top\nsun.vn\nsun.io\n3bet.edu.vn\nmail.ok\n',
      'categories/gambling/brands': '# hand-written\nhitclub\n*club*\n!plain\n',
    });
    expect(problems).toEqual([]);
    expect(decide(policy!, '3bet.newtld')).toEqual({
      action: 'block',
      reason: 'domain',
      rule: '3bet.*',
      source: expect.stringMatching(/^derived from 3 listed domains \(.*categories\/gambling\/domains\)$/),
    });
    expect(decide(policy!, 'lucky88.moe')).toMatchObject({
      action: 'block',
      rule: 'lucky88.*',
      source: expect.stringMatching(/^derived from 1 listed domain \(/),
    });
    expect(decide(policy!, 'soloclub.pink')).toMatchObject({ action: 'block', rule: 'soloclub.*' });
    expect(decide(policy!, 'hitclub.ke')).toMatchObject({
      action: 'block',
      rule: 'hitclub.*',
      source: expect.stringMatching(/categories\/gambling\/brands:2$/),
    });
    // A listed domain stays the more specific rule, and the school's allow beats the brand.
    expect(decide(policy!, 'www.3bet.bike')).toMatchObject({ rule: '3bet.bike', source: expect.stringMatching(/domains:1$/) });
    expect(decide(policy!, '3bet.edu.vn')).toMatchObject({ action: 'allow', rule: '3bet.edu.vn' });
    // Listed under one suffix without a mark, too short, or excluded: not brands.
    for (const host of ['plain.net', 'solo.club', 'sun.com', 'mail.vn', '3bet.example.com'])
      expect(decide(policy!, host), host).toMatchObject({ action: 'allow', reason: 'default' });
    // Only profiles that block the category.
    expect(policy!.decide('giao-vien', '3bet.newtld', '/').action).toBe('allow');
  });

  it('derives nothing for a category without a brands file', async () => {
    const { policy } = await load({ 'categories/gambling/domains': '3bet.bike\n3bet.ski\n' });
    expect(decide(policy!, '3bet.moe')).toMatchObject({ action: 'allow', reason: 'default' });
  });

  it('matches host signals inside host labels only, with or without diacritics', async () => {
    const { policy, problems } = await load({ 'categories/gambling/host-signals': 'nhà cái\nlô đề*\n' });
    expect(problems).toEqual([]);
    expect(decide(policy!, 'top-nhacai88.xyz')).toMatchObject({
      action: 'block',
      reason: 'keyword',
      rule: '*nhacai*',
      source: expect.stringMatching(/gambling\/host-signals:1$/),
    });
    expect(decide(policy!, 'lode88.win')).toMatchObject({ action: 'block', rule: 'lode*' });
    expect(decide(policy!, 'flodesk.com')).toMatchObject({ action: 'allow' });
    expect(decide(policy!, 'news.example', '/bai-viet/nhacai-bi-bat')).toMatchObject({ action: 'allow' });
    // The same through the full fold (percent-encoding, punycode), and never in page text.
    expect(decide(policy!, 'news.example', '/bai-viet/nhacai%20bi-bat')).toMatchObject({ action: 'allow' });
    expect(decide(policy!, 'nhacai88.xn--p1ai', '/%C3%A1')).toMatchObject({ action: 'block', rule: '*nhacai*' });
    expect(policy!.decideText('tieu-hoc', 'Trang nhacai88 bị bắt')).toBeNull();
  });

  it('refuses broken lines with FILE:LINE', async () => {
    const { policy, problems } = await load({
      'categories/gambling/brands': 'ok88\n3bet.bike\n*b*\nab\n*bet\n',
      'categories/gambling/host-signals': 'nhacai\nbet\nnha/cai\n',
    });
    expect(policy).toBeNull();
    expect(problems).toEqual([
      expect.stringMatching(/^categories\/gambling\/host-signals:2: host signal "bet"/),
      expect.stringMatching(/^categories\/gambling\/host-signals:3: host signal "nha\/cai"/),
      expect.stringMatching(/^categories\/gambling\/brands:2: bad brand "3bet\.bike"/),
      expect.stringMatching(/^categories\/gambling\/brands:3: brand run "\*b\*"/),
      expect.stringMatching(/^categories\/gambling\/brands:4: brand "ab" is too short/),
      expect.stringMatching(/^categories\/gambling\/brands:5: brand run "\*bet"/),
    ]);
  });
});
