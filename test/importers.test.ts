import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { domainToASCII } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeImport, ImportError, importListSource, parseListLine, type ImportResult } from '../src/rules/importers.js';

// Real public lists; see ../shared/data/README.md for where the expected counts come from.
const DATA = path.resolve(__dirname, '../../shared/data');
const data = (p: string): string => path.join(DATA, p);

function skippedCount(result: ImportResult, reason: string): number {
  return result.stats.skipped.get(reason as never)?.count ?? 0;
}

function totalSkipped(result: ImportResult): number {
  let total = 0;
  for (const entry of result.stats.skipped.values()) total += entry.count;
  return total;
}

/** Whether `host` or one of its parent domains is in `set` (our `domains` semantics). */
function coveredBy(set: ReadonlySet<string>, host: string): boolean {
  for (let name = host; ; ) {
    if (set.has(name)) return true;
    const dot = name.indexOf('.');
    if (dot === -1) return false;
    name = name.slice(dot + 1);
  }
}

describe('hagezi lists', () => {
  it('adblock light: every ||host^ rule becomes a domain, the header is comments', async () => {
    const result = await importListSource('adblock', data('hagezi/adblock/light.txt'));
    expect(result.domains).toHaveLength(40_961); // "Number of entries: 40961"
    expect(result.urls).toHaveLength(0);
    expect(totalSkipped(result)).toBe(0);
    expect(result.stats.duplicates).toBe(0);
    expect(result.stats.comments).toBe(13); // [Adblock Plus] + 12 `!` lines
    expect(result.domains).toContain('www.00fun.com');
  });

  it('domains and hosts light hold the same 86,359 hosts, each covered by the adblock form', async () => {
    const [plain, hosts, adblock] = await Promise.all([
      importListSource('domains', data('hagezi/domains/light.txt')),
      importListSource('hosts', data('hagezi/hosts/light.txt')),
      importListSource('adblock', data('hagezi/adblock/light.txt')),
    ]);
    expect(plain.domains).toHaveLength(86_359);
    expect(totalSkipped(plain)).toBe(0);
    expect(hosts.domains).toEqual(plain.domains);
    expect(totalSkipped(hosts)).toBe(0);
    // adblock ||x^ covers subdomains, so the adblock list drops redundant children.
    const adblockSet = new Set(adblock.domains);
    const uncovered = plain.domains.filter((host) => !coveredBy(adblockSet, host));
    expect(uncovered).toEqual([]);
  });

  it('wildcard *.host lines become the host, matching the adblock form of the same list', async () => {
    const [wildcard, adblock] = await Promise.all([
      importListSource('domains', data('hagezi/wildcard/gambling.mini.txt')),
      importListSource('adblock', data('hagezi/adblock/gambling.mini.txt')),
    ]);
    expect(wildcard.domains).toHaveLength(100_981);
    expect(totalSkipped(wildcard)).toBe(0);
    expect(wildcard.domains.some((h) => h.includes('*'))).toBe(false);
    expect(wildcard.domains).toContain('images.0998455.com');
    expect(new Set(wildcard.domains)).toEqual(new Set(adblock.domains));
  });
});

describe('stevenblack (trimmed plain domains)', () => {
  it('unified: all 83,808 hosts, trailing spaces trimmed, comments and blanks counted', async () => {
    const result = await importListSource('domains', data('stevenblack/unified-hosts.domains.txt'));
    expect(result.domains).toHaveLength(83_808); // "Number of unique domains"
    expect(totalSkipped(result)).toBe(0);
    expect(result.stats.comments).toBe(4_603 + 2_516); // comment lines + blank lines
    expect(result.domains.some((h) => h !== h.trim())).toBe(false);
  });

  it('porn-only: the one host with a trailing space comes through clean', async () => {
    const result = await importListSource('domains', data('stevenblack/porn-only.domains.txt'));
    expect(result.domains).toHaveLength(76_723);
    expect(result.domains).toContain('xxxhindi.to');
  });
});

describe('hostsVN', () => {
  it('hosts: 18,298 hosts; #[group] lines (with *) are comments; trailing space trimmed', async () => {
    const result = await importListSource('hosts', data('hostsvn/hosts'));
    expect(result.domains).toHaveLength(18_298); // "Blocked: 18.298 domains"
    expect(totalSkipped(result)).toBe(0);
    expect(result.domains).toContain('pblcpush.com');
    expect(result.domains).toContain('iadsdk.apple.com');
    expect(result.domains.some((h) => h.includes('*') || h.includes('['))).toBe(false);
  });

  it('gambling hosts: www.188Betcn2.com is lower-cased and deduped against its lower-case twin', async () => {
    const result = await importListSource('hosts', data('hostsvn/extensions/gambling/hosts'));
    expect(result.domains).toContain('www.188betcn2.com');
    expect(result.domains).not.toContain('www.188Betcn2.com');
    expect(result.domains.some((h) => h !== h.toLowerCase())).toBe(false);
    expect(result.domains).toHaveLength(65_758); // 65,759 lines, one case-only duplicate
    expect(result.stats.duplicates).toBe(1);
  });

  it('gambling domain.txt keeps its one IPv4 entry', async () => {
    const result = await importListSource('domains', data('hostsvn/extensions/gambling/domain.txt'));
    expect(result.domains).toContain('180.215.200.9');
    expect(totalSkipped(result)).toBe(0);
  });

  it('adservers filter: 840 domains, the 7 rules with * inside a name skipped as wildcard', async () => {
    const result = await importListSource('adblock', data('hostsvn/filters/adservers.txt'));
    expect(result.domains).toHaveLength(840);
    expect(skippedCount(result, 'wildcard')).toBe(7);
    expect(totalSkipped(result)).toBe(7);
    const examples = result.stats.skipped.get('wildcard')!.examples;
    expect(examples[0]).toMatchObject({ text: '||admicro*.vcmedia.vn^' });
    expect(examples[0]!.line).toBeGreaterThan(8);
    expect(result.domains).toContain('ads-platform.zalo.me');
    // `||matomo.*.vn^` must not turn into a rule for all of .vn
    expect(result.domains.filter((h) => h.includes('*') || !h.includes('.'))).toEqual([]);
    expect(result.domains.filter((h) => h.startsWith('matomo.'))).toEqual(['matomo.bantheme.xyz', 'matomo.quan.hoabinh.vn']);
  });

  it('gambling filter: duplicates collapse; rules missing their dot are skipped, not TLD-wide', async () => {
    const result = await importListSource('adblock', data('hostsvn/extensions/gambling/filter.txt'));
    // 64,692 rules = 64,663 hosts + 14 duplicates (one case-only: ||188Betcn2.com^)
    // + 15 single-label rules such as ||012wcom^ (upstream typos for 012w.com).
    expect(result.domains).toHaveLength(64_663);
    expect(result.stats.duplicates).toBe(14);
    expect(skippedCount(result, 'top-level-domain')).toBe(15);
    expect(totalSkipped(result)).toBe(15);
    expect(result.stats.skipped.get('top-level-domain')!.examples[0]).toMatchObject({ line: 414, text: '||012wcom^' });
    expect(result.domains).toContain('188betcn2.com');
  });

  it('threat domains: raw Unicode host names become punycode', async () => {
    const result = await importListSource('domains', data('hostsvn/extensions/threat/domain.txt'));
    expect(result.domains).toContain(domainToASCII('shopgcaothụ.vn'));
    expect(result.domains).toContain(domainToASCII('momovíđiệntửsố1.weebly.com'));
    expect(result.domains).toContain('free-4paid.com');
    expect(result.domains.some((h) => /[^\x00-\x7f]/.test(h))).toBe(false);
  });
});

describe('UT1 category folders', () => {
  it('gambling: 32,247 domains (IPv4 and punycode included) and its 5 URLs', async () => {
    const result = await importListSource('ut1', data('ut1/gambling'));
    expect(result.domains).toHaveLength(32_247);
    expect(result.domains.filter((h) => /^\d+\.\d+\.\d+\.\d+$/.test(h))).toHaveLength(14);
    expect(result.domains.filter((h) => h.includes('xn--'))).toHaveLength(38);
    expect(result.urls).toEqual([
      'astrolabio.net/casino/',
      'cri.univ-tlse1.fr/tools/test_filtrage/gambling/',
      'sd579.sivit.org/lesgrandscasinos/',
      'thestreetwearmagazine.com/www.thestreetwearmagazine.com/',
      'top-lasvegas.com/en',
    ]);
    expect(totalSkipped(result)).toBe(0);
    expect(result.ut1Usage).toBe('black');
    expect(result.stats.skippedFiles).toEqual([]);
  });

  it('adult: no domains file; URLs lose #fragments; regex files are reported, not read', async () => {
    const result = await importListSource('ut1', data('ut1/adult'));
    expect(result.domains).toHaveLength(0);
    expect(result.urls).toHaveLength(1_089); // 1,090 lines, two differ only by fragment
    expect(result.stats.duplicates).toBe(1);
    expect(result.urls).toContain('danskporn.dk/');
    expect(result.urls.some((u) => u.includes('#'))).toBe(false);
    expect(result.stats.skippedFiles.map((f) => [path.basename(f.file), f.lines, f.reason])).toEqual([
      ['expressions', 0, 'regex'],
      ['very_restrictive_expression', 2, 'regex'],
    ]);
  });

  it('agressif: IPv4 domains and IP-host URLs with case-sensitive paths', async () => {
    const result = await importListSource('ut1', data('ut1/agressif'));
    expect(result.domains).toHaveLength(360);
    expect(result.domains).toContain('118.123.4.224');
    expect(result.urls).toHaveLength(36);
    expect(result.urls).toContain('129.105.212.34/~abutz');
  });

  it('dynamic-dns: entries written with a leading dot', async () => {
    const result = await importListSource('ut1', data('ut1/dynamic-dns'));
    expect(result.domains).toContain('afshin.ir');
    expect(result.domains).toHaveLength(2_077);
  });

  it('a whitelist folder says so, for the CLI to warn', async () => {
    const result = await importListSource('ut1', data('ut1/child'));
    expect(result.ut1Usage).toBe('white');
    expect(describeImport(result).at(-1)).toMatch(/danh sách TRẮNG/);
  });
});

describe('line syntax the shipped data lacks', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lachan-import-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('hosts: BOM, CRLF, several names a line, inline comments, machine names', async () => {
    const file = path.join(dir, 'hosts');
    await writeFile(
      file,
      '\uFEFF# a hosts file\r\n' +
        '127.0.0.1 localhost localhost.localdomain\r\n' +
        '::1 ip6-localhost ip6-loopback\r\n' +
        '255.255.255.255 broadcasthost\r\n' +
        '0.0.0.0 0.0.0.0\r\n' +
        '0.0.0.0 Ads.Example.COM tracker.example.net   # trackers  \r\n' +
        '0.0.0.0\tads.example.com.\r\n' +
        'ads.example.org\r\n' +
        '\r\n',
    );
    const result = await importListSource('hosts', file);
    expect(result.domains).toEqual(['ads.example.com', 'tracker.example.net']);
    expect(result.stats.duplicates).toBe(1);
    expect(skippedCount(result, 'local-name')).toBe(6);
    expect(skippedCount(result, 'malformed')).toBe(1);
    expect(result.stats.skipped.get('malformed')!.examples[0]).toEqual({ file, line: 8, text: 'ads.example.org' });
    expect(describeImport(result)).toContain(`  ${file}:8: ads.example.org`);
    expect(result.stats.lines).toBe(9);
  });

  it('domains: a hosts line given as domains is reported, not half-read', () => {
    expect(parseListLine('domains', '0.0.0.0 example.com')).toEqual([{ kind: 'skip', reason: 'malformed', text: '0.0.0.0 example.com' }]);
    expect(parseListLine('domains', '*.Example.com ')).toEqual([{ kind: 'domain', host: 'example.com' }]);
    expect(parseListLine('domains', 'ads.*.example.com')[0]).toMatchObject({ kind: 'skip', reason: 'wildcard' });
    expect(parseListLine('domains', 'com')[0]).toMatchObject({ kind: 'skip', reason: 'top-level-domain' });
  });

  it('adblock: options, exceptions, cosmetic rules, regexes, URL rules', () => {
    const one = (line: string): unknown => parseListLine('adblock', line)[0];
    expect(one('||ads.example.com^$third-party')).toEqual({ kind: 'domain', host: 'ads.example.com' });
    expect(one('||ads.example.com^$important,all')).toEqual({ kind: 'domain', host: 'ads.example.com' });
    expect(one('||ads.example.com^$script')).toMatchObject({ kind: 'skip', reason: 'unsupported-option' });
    expect(one('||ads.example.com^$domain=a.com|b.com')).toMatchObject({ kind: 'skip', reason: 'restricted-rule' });
    expect(one('||example.com^$denyallow=cdn.example.com')).toMatchObject({ kind: 'skip', reason: 'restricted-rule' });
    expect(one('@@||example.com^')).toMatchObject({ kind: 'skip', reason: 'exception-rule' });
    expect(one('example.com##.banner')).toMatchObject({ kind: 'skip', reason: 'cosmetic-rule' });
    expect(one('##.ad-slot')).toMatchObject({ kind: 'skip', reason: 'cosmetic-rule' });
    expect(one('example.com#@#.banner')).toMatchObject({ kind: 'skip', reason: 'cosmetic-rule' });
    expect(one('/banner\\d+\\.gif/')).toMatchObject({ kind: 'skip', reason: 'regex' });
    expect(one('||matomo.*.vn^')).toMatchObject({ kind: 'skip', reason: 'wildcard', text: '||matomo.*.vn^' });
    expect(one('/ads/banner.')).toMatchObject({ kind: 'skip', reason: 'unanchored-pattern' });
    expect(one('||example.com:8080^')).toMatchObject({ kind: 'skip', reason: 'port' });
    expect(one('||Example.com/Ads/')).toEqual({ kind: 'url', rule: 'example.com/Ads/' });
    expect(one('||example.com/ads^')).toEqual({ kind: 'url', rule: 'example.com/ads' });
    expect(one('|http://example.com/path|')).toEqual({ kind: 'url', rule: 'example.com/path' });
    expect(one('|https://example.com/')).toEqual({ kind: 'domain', host: 'example.com' });
    expect(one('[Adblock Plus 2.0]')).toEqual({ kind: 'comment' });
    expect(one('! Title: x')).toEqual({ kind: 'comment' });
  });

  it('UT1 urls: scheme, www. and fragment dropped; the path keeps its case', () => {
    expect(parseListLine('ut1-urls', 'www.Example.com/Path/Page.html#top')).toEqual([{ kind: 'url', rule: 'example.com/Path/Page.html' }]);
    expect(parseListLine('ut1-urls', 'http://example.com/x?a=1')).toEqual([{ kind: 'url', rule: 'example.com/x?a=1' }]);
    expect(parseListLine('ut1-urls', 'example.com:81/x')[0]).toMatchObject({ kind: 'skip', reason: 'port' });
  });

  it('a missing source, or the wrong kind of source, is an ImportError with a code', async () => {
    await expect(importListSource('hosts', path.join(dir, 'nope'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(importListSource('hosts', dir)).rejects.toMatchObject({ code: 'EISDIR' });
    await expect(importListSource('ut1', data('hostsvn/hosts'))).rejects.toMatchObject({ code: 'ENOTDIR' });
    await expect(importListSource('ut1', dir)).rejects.toBeInstanceOf(ImportError);
  });
});

describe('shipped rules (rules/categories/*/domains, urls, rules/no_inspect)', () => {
  const RULES = path.resolve(__dirname, '../rules');
  const ADULT_TLDS = ['xxx', 'porn', 'adult', 'sex'];
  const CATEGORIES = ['adult', 'gambling', 'drugs', 'violence', 'self-harm', 'dating', 'games', 'social-networks', 'vpn', 'doh'];

  async function shipped(file: string, format: 'domains' | 'ut1-urls'): Promise<{ rules: string[]; problems: string[] }> {
    const text = await readFile(file, 'utf8');
    const rules: string[] = [];
    const problems: string[] = [];
    text.split('\n').forEach((raw, index) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const where = `${path.relative(RULES, file)}:${index + 1}`;
      // The rules loader reads a whole line as the rule: no trailing comments.
      if (line.includes('#')) problems.push(`${where}: comment after a rule`);
      const items = parseListLine(format, line);
      const item = items[0]!;
      // Whole adult TLDs are shipped on purpose; imports refuse single labels.
      if (item.kind === 'skip' && item.reason === 'top-level-domain' && file.endsWith(path.join('adult', 'domains')) && ADULT_TLDS.includes(line)) {
        rules.push(line);
        return;
      }
      if (items.length !== 1 || item.kind === 'skip' || item.kind === 'comment') problems.push(`${where}: ${JSON.stringify(item)}`);
      else {
        const rule = item.kind === 'domain' ? item.host : item.rule;
        if (rule !== line) problems.push(`${where}: not canonical (${rule})`);
        if (rules.includes(rule)) problems.push(`${where}: duplicate`);
        rules.push(rule);
      }
    });
    return { rules, problems };
  }

  async function allShippedDomains(): Promise<Map<string, string>> {
    const byHost = new Map<string, string>();
    for (const category of CATEGORIES) {
      for (const host of (await shipped(path.join(RULES, 'categories', category, 'domains'), 'domains')).rules) byHost.set(host, category);
    }
    return byHost;
  }

  it('every category has a domains file of canonical, unique entries, with comments on their own lines', async () => {
    expect((await readdir(path.join(RULES, 'categories'))).filter((n) => CATEGORIES.includes(n)).sort()).toEqual([...CATEGORIES].sort());
    for (const category of CATEGORIES) {
      const { rules, problems } = await shipped(path.join(RULES, 'categories', category, 'domains'), 'domains');
      expect(problems).toEqual([]);
      expect(rules.length).toBeGreaterThan(category === 'self-harm' || category === 'violence' ? 2 : 20);
    }
  });

  it('urls files are host/path rules', async () => {
    for (const category of ['adult', 'drugs', 'gambling']) {
      const { rules, problems } = await shipped(path.join(RULES, 'categories', category, 'urls'), 'ut1-urls');
      expect(problems).toEqual([]);
      expect(rules.every((r) => r.startsWith('reddit.com/r/'))).toBe(true);
    }
  });

  it('no host is in two categories', async () => {
    const seen = new Map<string, string>();
    const clashes: string[] = [];
    for (const category of CATEGORIES) {
      for (const host of (await shipped(path.join(RULES, 'categories', category, 'domains'), 'domains')).rules) {
        const other = seen.get(host);
        if (other !== undefined) clashes.push(`${host}: ${other} and ${category}`);
        seen.set(host, category);
      }
    }
    expect(clashes).toEqual([]);
  });

  it('sites schools rely on are not covered by any shipped category', async () => {
    const shippedSet = new Set((await allShippedDomains()).keys());
    const mustStayReachable = [
      'www.google.com',
      'www.youtube.com',
      'vi.wikipedia.org',
      'olm.vn',
      'hocmai.vn',
      'vnedu.vn',
      'moet.gov.vn',
      'chat.zalo.me',
      'id.zalo.me',
      'education.minecraft.net',
      'play.google.com',
      'apps.apple.com',
      'www.chess.com',
      'lichess.org',
      'drugs.com',
      'www.vietlott.vn',
      'xosominhngoc.com',
      'zingnews.vn',
      'zingmp3.vn',
      'vnexpress.net',
      'dantri.com.vn',
      'teams.microsoft.com',
      'meet.google.com',
    ];
    expect(mustStayReachable.filter((host) => coveredBy(shippedSet, host))).toEqual([]);
  });

  it('well-known sites are blocked in the category a school expects', async () => {
    const byHost = await allShippedDomains();
    const categoryOf = (host: string): string | undefined => {
      for (let name = host; ; ) {
        const category = byHost.get(name);
        if (category !== undefined) return category;
        const dot = name.indexOf('.');
        if (dot === -1) return undefined;
        name = name.slice(dot + 1);
      }
    };
    expect(categoryOf('www.pornhub.com')).toBe('adult');
    expect(categoryOf('anything.xxx')).toBe('adult');
    expect(categoryOf('www.essex.ac.uk')).toBeUndefined();
    expect(categoryOf('www.fb88.com')).toBe('gambling');
    expect(categoryOf('m.facebook.com')).toBe('social-networks');
    expect(categoryOf('www.tiktok.com')).toBe('social-networks');
    expect(categoryOf('www.roblox.com')).toBe('games');
    expect(categoryOf('lienquan.garena.vn')).toBe('games');
    expect(categoryOf('tinder.com')).toBe('dating');
    expect(categoryOf('nordvpn.com')).toBe('vpn');
    expect(categoryOf('mozilla.cloudflare-dns.com')).toBe('doh');
    expect(categoryOf('1.1.1.1')).toBe('doh');
    expect(categoryOf('dns.google')).toBe('doh');
  });

  it('no_inspect covers the banks, wallets, gov.vn and update hosts, and nothing a category blocks', async () => {
    const { rules, problems } = await shipped(path.join(RULES, 'no_inspect'), 'domains');
    expect(problems).toEqual([]);
    const noInspect = new Set(rules);
    for (const host of [
      'vcbdigibank.vietcombank.com.vn',
      'ebanking.vietinbank.vn',
      'smartbanking.bidv.com.vn',
      'online.mbbank.com.vn',
      'ebank.tpb.vn',
      'payment.momo.vn',
      'sandbox.vnpayment.vnpay.vn',
      'dichvucong.gov.vn',
      'vneid.gov.vn',
      'download.windowsupdate.com',
      'swcdn.apple.com',
      'mesu.apple.com',
      'dl.google.com',
      'android.clients.google.com',
    ]) {
      expect(coveredBy(noInspect, host), host).toBe(true);
    }
    const blocked = new Set((await allShippedDomains()).keys());
    expect(rules.filter((host) => coveredBy(blocked, host))).toEqual([]);
  });
});
