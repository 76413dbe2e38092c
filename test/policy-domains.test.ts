import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DomainSetBuilder, type DomainSet } from '../src/policy/domains.js';
import { canonicalRuleHost } from '../src/policy/hostname.js';
import { CATEGORY_ALLOWS, CATEGORY_BLOCKS, CATEGORY_IGNORED } from '../src/policy/types.js';
import { SHARED_DATA } from './harness/index.js';

const BLOCK = 0;
const ALLOW = 1;
const OTHER = 2;
const BLOCK2 = 3;
const actions = Uint8Array.of(CATEGORY_BLOCKS, CATEGORY_ALLOWS, CATEGORY_IGNORED, CATEGORY_BLOCKS);
const NAMES = ['block', 'allow', 'other', 'block2'];

function build(rules: readonly (readonly [string, number])[]): DomainSet {
  const builder = new DomainSetBuilder();
  rules.forEach(([raw, category], i) => {
    const host = canonicalRuleHost(raw);
    expect(host, raw).not.toBeNull();
    builder.add(host!, category, 7, i + 1);
  });
  return builder.build();
}

/** `<category> <matched rule> :<line>`, or null: what a user sees in `lachan check`. */
function describeMatch(set: DomainSet, host: string, acts: Uint8Array = actions): string | null {
  const match = set.lookup(host, acts);
  if (match === null) return null;
  return `${NAMES[set.categoryOf(match.entry)]} ${host.slice(match.suffixStart)} :${set.lineOf(match.entry)}`;
}

describe('domain set semantics (docs/contract.md §3)', () => {
  const set = build([
    ['example.com', BLOCK], // 1
    ['good.example.com', ALLOW], // 2
    ['bad.good.example.com', BLOCK], // 3
    ['both.test', BLOCK], // 4
    ['both.test', ALLOW], // 5
    ['1.2.3.4', BLOCK], // 6
    ['3.4', BLOCK], // 7
    ['ignored.test', OTHER], // 8
    ['xxx', BLOCK], // 9
    ['Upper.CASE.test.', BLOCK], // 10
    ['momovíđiệntửsố1.weebly.com', BLOCK], // 11
    ['xn--mnchen-3ya.de', BLOCK], // 12
    ['.afshin.ir', BLOCK], // 13
    ['_video-bagarre.com', BLOCK], // 14
    ['abbyfaer_rkoa.tripod.com', BLOCK], // 15
    ['allowed-parent.test', ALLOW], // 16
    ['child.allowed-parent.test', BLOCK], // 17
    ['multi.test', OTHER], // 18
    ['multi.test', BLOCK2], // 19
    ['shadowed.test', OTHER], // 20
    ['x.shadowed.test', OTHER], // 21
    ['parent-active.test', BLOCK], // 22
    ['sub.parent-active.test', OTHER], // 23
    ['[::1]', BLOCK], // 24
  ]);

  it.each([
    // a rule covers the host and every subdomain, at label boundaries only
    ['example.com', 'block example.com :1'],
    ['a.b.example.com', 'block example.com :1'],
    ['notexample.com', null],
    ['example.com.evil.test', null],
    ['example.co', null],
    ['com', null],
    // one trailing dot on the request host is the same name (the slice keeps it)
    ['example.com.', 'block example.com. :1'],
    ['www.example.com.', 'block example.com. :1'],
    // more specific wins over its parent, either way round
    ['good.example.com', 'allow good.example.com :2'],
    ['x.good.example.com', 'allow good.example.com :2'],
    ['bad.good.example.com', 'block bad.good.example.com :3'],
    ['z.bad.good.example.com', 'block bad.good.example.com :3'],
    ['allowed-parent.test', 'allow allowed-parent.test :16'],
    ['child.allowed-parent.test', 'block child.allowed-parent.test :17'],
    // allow beats block at the same level
    ['both.test', 'allow both.test :5'],
    ['sub.both.test', 'allow both.test :5'],
    // IPv4 entry vs IPv4 request; an IP never matches by suffix
    ['1.2.3.4', 'block 1.2.3.4 :6'],
    ['9.1.3.4', null],
    ['9.9.9.9', null],
    ['[::1]', 'block [::1] :24'],
    // a single-label rule (a TLD) covers names under it
    ['site.xxx', 'block xxx :9'],
    // case and trailing dot of the rule do not matter; requests come lower-case
    ['upper.case.test', 'block upper.case.test :10'],
    ['a.upper.case.test', 'block upper.case.test :10'],
    // a Unicode rule matches the punycode a browser sends, and punycode rules too
    [new URL('http://momovíđiệntửsố1.weebly.com/').hostname, 'block xn--momovints1-o8a64b3904adea8q.weebly.com :11'],
    [new URL('http://www.münchen.de/').hostname, 'block xn--mnchen-3ya.de :12'],
    ['weebly.com', null],
    // a leading dot in the list is the same rule
    ['afshin.ir', 'block afshin.ir :13'],
    ['x.afshin.ir', 'block afshin.ir :13'],
    // underscores in labels
    ['_video-bagarre.com', 'block _video-bagarre.com :14'],
    ['abbyfaer_rkoa.tripod.com', 'block abbyfaer_rkoa.tripod.com :15'],
    ['tripod.com', null],
    // a category the profile ignores does not decide, and does not hide a less specific rule
    ['ignored.test', null],
    ['x.shadowed.test', null],
    ['sub.parent-active.test', 'block parent-active.test :22'],
    // several categories on one domain: the active one decides
    ['multi.test', 'block2 multi.test :19'],
  ])('%s → %s', (host, expected) => {
    expect(describeMatch(set, host)).toBe(expected);
  });

  it('follows the actions given at lookup time, per profile', () => {
    const allIgnored = new Uint8Array(4);
    expect(set.lookup('example.com', allIgnored)).toBeNull();
    const otherBlocks = Uint8Array.of(CATEGORY_IGNORED, CATEGORY_IGNORED, CATEGORY_BLOCKS, CATEGORY_IGNORED);
    expect(describeMatch(set, 'x.shadowed.test', otherBlocks)).toBe('other x.shadowed.test :21');
    expect(describeMatch(set, 'multi.test', otherBlocks)).toBe('other multi.test :18');
    // the child's rule is now active and more specific than the parent's
    expect(describeMatch(set, 'sub.parent-active.test', Uint8Array.of(CATEGORY_BLOCKS, 0, CATEGORY_ALLOWS, 0))).toBe('other sub.parent-active.test :23');
    // allow beats block at the same level whichever category is listed first
    expect(describeMatch(set, 'multi.test', Uint8Array.of(0, 0, CATEGORY_ALLOWS, CATEGORY_BLOCKS))).toBe('other multi.test :18');
  });

  it('keeps provenance per entry and reports its size', () => {
    const match = set.lookup('example.com', actions)!;
    expect(set.fileOf(match.entry)).toBe(7);
    expect(set.categoryOf(match.entry)).toBe(BLOCK);
    expect(set.size).toBe(24);
    expect(set.byteLength).toBeLessThan(24 * 16 + 1024);
  });

  it('keeps category and file ids up to 65535 and lines beyond 65535', () => {
    const builder = new DomainSetBuilder();
    builder.add('big.test', 65535, 65534, 4_000_000);
    const big = builder.build();
    const acts = new Uint8Array(65536);
    acts[65535] = CATEGORY_BLOCKS;
    const match = big.lookup('www.big.test', acts)!;
    expect([big.categoryOf(match.entry), big.fileOf(match.entry), big.lineOf(match.entry)]).toEqual([65535, 65534, 4_000_000]);
  });

  it("keeps every rule's provenance past 510 (category, file) pairs and past line 8,388,607, and still orders rules as written", () => {
    // Most rules keep where they were written in one word beside their fingerprint; these do not fit there.
    const builder = new DomainSetBuilder();
    const acts = new Uint8Array(700).fill(CATEGORY_BLOCKS);
    acts[699] = CATEGORY_ALLOWS;
    for (let file = 1; file <= 600; file++) builder.add(`f${file}.test`, file, file, file * 3);
    builder.add('far.test', 5, 5, 9_000_000);
    builder.add('far.test', 600, 600, 20_000_000);
    builder.add('far.test', 600, 600, 8_388_608);
    builder.add('both.test', 699, 650, 12);
    builder.add('both.test', 698, 1, 9_500_000);
    const set = builder.build();
    for (const file of [1, 300, 511, 512, 600]) {
      const match = set.lookup(`www.f${file}.test`, acts)!;
      expect([set.categoryOf(match.entry), set.fileOf(match.entry), set.lineOf(match.entry)]).toEqual([file, file, file * 3]);
    }
    // Two blocks for one name: the file read first decides; an allow beats a block wherever written.
    const far = set.lookup('far.test', acts)!;
    expect([set.fileOf(far.entry), set.lineOf(far.entry)]).toEqual([5, 9_000_000]);
    const both = set.lookup('both.test', acts)!;
    expect([set.categoryOf(both.entry), set.fileOf(both.entry), set.lineOf(both.entry)]).toEqual([699, 650, 12]);
  });

  it('holds a million rules in under 14 bytes a rule', () => {
    const builder = new DomainSetBuilder();
    for (let i = 0; i < 1_000_000; i++) builder.add(`d${i}.example`, i % 40, i % 90, i);
    const set = builder.build();
    expect(set.byteLength / set.size).toBeLessThan(14);
    const match = set.lookup('x.d777777.example', new Uint8Array(40).fill(CATEGORY_BLOCKS))!;
    expect([set.categoryOf(match.entry), set.fileOf(match.entry), set.lineOf(match.entry)]).toEqual([777777 % 40, 777777 % 90, 777777]);
  });

  it('is empty and answers null when built from nothing', () => {
    const empty = new DomainSetBuilder().build();
    expect(empty.size).toBe(0);
    expect(empty.lookup('example.com', actions)).toBeNull();
  });

  it('loads the canonical span of a line without creating a string, and refuses what is not canonical', () => {
    const builder = new DomainSetBuilder();
    const text = 'example.com\nUpper.com\nbad host\nok_1.test\n';
    expect(builder.addCanonicalSpan(text, 0, 11, BLOCK, 1, 1)).toBe(true);
    expect(builder.addCanonicalSpan(text, 12, 21, BLOCK, 1, 2)).toBe(false);
    expect(builder.addCanonicalSpan(text, 22, 30, BLOCK, 1, 3)).toBe(false);
    expect(builder.addCanonicalSpan(text, 31, 40, BLOCK, 1, 4)).toBe(true);
    const spanSet = builder.build();
    expect(spanSet.size).toBe(2);
    expect(describeMatch(spanSet, 'www.example.com')).toBe('block example.com :1');
    expect(describeMatch(spanSet, 'ok_1.test')).toBe('block ok_1.test :4');
    expect(spanSet.lookup('upper.com', actions)).toBeNull();
  });

  it('sends an address written in another IPv4 notation to the slow path, and keeps a dotted quad', () => {
    const builder = new DomainSetBuilder();
    const text = '1.2.3.4 2130706433 0x7f.1 010.0.0.1 example.123 0x7f.example 8.8.8.08';
    const spans = text.split(' ').map((word) => [text.indexOf(word), text.indexOf(word) + word.length] as const);
    expect(spans.map(([from, to], i) => builder.addCanonicalSpan(text, from, to, BLOCK, 1, i + 1))).toEqual([true, false, false, false, false, true, false]);
    const spanSet = builder.build();
    expect(describeMatch(spanSet, '1.2.3.4')).toBe('block 1.2.3.4 :1');
    expect(describeMatch(spanSet, 'x.0x7f.example')).toBe('block 0x7f.example :6');
    expect(spanSet.lookup('127.0.0.1', actions)).toBeNull();
  });

  it('finds every one of 200,000 generated names, and no near miss', () => {
    const builder = new DomainSetBuilder();
    for (let i = 0; i < 200_000; i++) builder.add(`n${i}.gen${i % 97}.example`, i & 1, 0, i + 1);
    const big = builder.build();
    const both = Uint8Array.of(CATEGORY_BLOCKS, CATEGORY_BLOCKS);
    let found = 0;
    let wrongLine = 0;
    let nearMisses = 0;
    for (let i = 0; i < 200_000; i++) {
      const match = big.lookup(`www.n${i}.gen${i % 97}.example`, both);
      if (match !== null) {
        found++;
        if (big.lineOf(match.entry) !== i + 1) wrongLine++;
      }
      if (big.lookup(`n${i}.gen${(i + 1) % 97}.example`, both) !== null) nearMisses++;
    }
    expect([found, wrongLine, nearMisses]).toEqual([200_000, 0, 0]);
  });
});

// ---------------------------------------------------------------------------------
// The real UT1 lists.

const UT1 = path.join(SHARED_DATA, 'ut1');
/** Per-category `domains` entry counts from ../shared/data/README.md. */
const UT1_DOMAIN_COUNTS: Readonly<Record<string, number>> = {
  agressif: 360,
  drogue: 603,
  gambling: 32_247,
  games: 33_741,
  dating: 6_504,
  hacking: 274,
  phishing: 218_382,
  malware: 218_441,
  vpn: 6_039,
  redirector: 132_323,
  strict_redirector: 132_323,
  social_networks: 715,
  sect: 144,
  warez: 1_546,
  doh: 3_015,
  mixed_adult: 149,
  lingerie: 193,
  sexual_education: 15,
  shortener: 4_558,
  'residential-proxies': 138,
  'dynamic-dns': 2_077,
  'remote-control': 170,
  chat: 268,
  child: 75,
  liste_blanche: 268,
};

describe('the real UT1 domains files', () => {
  const categories = readdirSync(UT1)
    .filter((name) => statSync(path.join(UT1, name)).isDirectory())
    .sort();
  const files: string[] = [];
  const counts: Record<string, number> = {};
  const builder = new DomainSetBuilder();
  let refused = 0;
  categories.forEach((category, categoryId) => {
    const file = path.join(UT1, category, 'domains');
    if (!existsSync(file)) return;
    const fileId = files.push(`ut1/${category}/domains`) - 1;
    const lines = readFileSync(file, 'utf8').split('\n');
    let count = 0;
    lines.forEach((line, index) => {
      if (line.trim() === '' || line.startsWith('#')) return;
      const host = canonicalRuleHost(line);
      if (host === null) refused++;
      else builder.add(host, categoryId, fileId, index + 1);
      count++;
    });
    counts[category] = count;
  });
  const set = builder.build();
  const id = (name: string): number => categories.indexOf(name);
  const profile = (active: Record<string, number>): Uint8Array => {
    const acts = new Uint8Array(categories.length);
    for (const [name, action] of Object.entries(active)) acts[id(name)] = action;
    return acts;
  };
  const students = profile({
    gambling: CATEGORY_BLOCKS,
    games: CATEGORY_BLOCKS,
    social_networks: CATEGORY_BLOCKS,
    doh: CATEGORY_BLOCKS,
    drogue: CATEGORY_BLOCKS,
    agressif: CATEGORY_BLOCKS,
    'dynamic-dns': CATEGORY_BLOCKS,
    liste_blanche: CATEGORY_ALLOWS,
  });
  const decide = (host: string, acts = students): string | null => {
    const match = set.lookup(host, acts);
    if (match === null) return null;
    return `${categories[set.categoryOf(match.entry)]} ${host.slice(match.suffixStart)} ${files[set.fileOf(match.entry)]}:${set.lineOf(match.entry)}`;
  };

  it('loads every line of every category, with the counts of the data README', () => {
    expect(counts).toEqual(UT1_DOMAIN_COUNTS);
    expect(refused).toBe(0);
    expect(set.size).toBe(794_568);
    // compact: about 17 bytes an entry with provenance
    expect(set.byteLength / set.size).toBeLessThan(20);
  });

  it.each([
    ['bet365.com', 'gambling bet365.com ut1/gambling/domains:2923'],
    ['www.bet365.com', 'gambling bet365.com ut1/gambling/domains:2923'],
    ['m.facebook.com', 'social_networks facebook.com ut1/social_networks/domains:167'],
    ['www.tiktok.com', 'social_networks tiktok.com ut1/social_networks/domains:620'],
    ['1.1.1.1', 'doh 1.1.1.1 ut1/doh/domains:7'],
    ['216.104.145.194', 'drogue 216.104.145.194 ut1/drogue/domains:100'],
    ['_video-bagarre.com', 'agressif _video-bagarre.com ut1/agressif/domains:96'],
    ['abbyfaer_rkoa.tripod.com', 'games abbyfaer_rkoa.tripod.com ut1/games/domains:696'],
    ['x.afshin.ir', 'dynamic-dns afshin.ir ut1/dynamic-dns/domains:1'],
    ['xn--bstcasino-v2a.eu', 'gambling xn--bstcasino-v2a.eu ut1/gambling/domains:32048'],
    ['elysee.fr', 'liste_blanche elysee.fr ut1/liste_blanche/domains:100'],
    // top sites that are in none of the active categories
    ['www.google.com', null],
    ['vnexpress.net', null],
    ['olm.vn', null],
    ['216.104.145.195', null],
    ['1.1.1.2', null],
  ])('students: %s → %s', (host, expected) => {
    expect(decide(host)).toBe(expected);
  });

  it('a profile that blocks only malware sees bet365.com as malware, and google.com not at all', () => {
    const staff = profile({ malware: CATEGORY_BLOCKS });
    expect(decide('www.bet365.com', staff)).toBe('malware bet365.com ut1/malware/domains:24534');
    expect(decide('www.google.com', staff)).toBeNull();
  });

  it('blocks every entry of every active category, checked on a sample of each file', () => {
    for (const category of ['gambling', 'games', 'doh', 'drogue', 'agressif']) {
      const lines = readFileSync(path.join(UT1, category, 'domains'), 'utf8')
        .trim()
        .split('\n');
      const missed = lines.filter((_, i) => i % 37 === 0).filter((host) => set.lookup(canonicalRuleHost(host)!, students) === null);
      expect(missed, category).toEqual([]);
    }
  });

  it('matches the top sites as the data README counts them (social_networks, dating)', () => {
    const top = readFileSync(path.join(SHARED_DATA, 'topsites/umbrella-top-100k.txt'), 'utf8').trim().split('\n');
    const count = (category: string): number => {
      const acts = profile({ [category]: CATEGORY_BLOCKS });
      return top.filter((host) => set.lookup(new URL(`http://${host}/`).hostname, acts) !== null).length;
    };
    expect(count('social_networks')).toBe(2_427);
    expect(count('dating')).toBe(84);
    expect(count('gambling')).toBe(68);
  });
});

describe('the Hagezi light list in two forms', () => {
  it('covers every host of domains/light.txt through a parent in adblock/light.txt', () => {
    const builder = new DomainSetBuilder();
    const adblock = readFileSync(path.join(SHARED_DATA, 'hagezi/adblock/light.txt'), 'utf8').split('\n');
    let rules = 0;
    adblock.forEach((line, i) => {
      const m = /^\|\|([^^]+)\^$/.exec(line.trim());
      if (m === null) return;
      builder.add(canonicalRuleHost(m[1]!)!, 0, 0, i + 1);
      rules++;
    });
    expect(rules).toBe(40_961);
    const set = builder.build();
    const hosts = readFileSync(path.join(SHARED_DATA, 'hagezi/domains/light.txt'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    expect(hosts).toHaveLength(86_359);
    const acts = Uint8Array.of(CATEGORY_BLOCKS);
    const uncovered = hosts.filter((host) => set.lookup(canonicalRuleHost(host)!, acts) === null);
    expect(uncovered).toEqual([]);
  });
});
