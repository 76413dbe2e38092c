import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UrlSetBuilder, normalisePercent, parseUrlRule, type UrlSet } from '../src/policy/urls.js';
import { CATEGORY_ALLOWS, CATEGORY_BLOCKS, CATEGORY_IGNORED } from '../src/policy/types.js';
import { SHARED_DATA } from './harness/index.js';

const BLOCK = 0;
const ALLOW = 1;
const OTHER = 2;
const actions = Uint8Array.of(CATEGORY_BLOCKS, CATEGORY_ALLOWS, CATEGORY_IGNORED);

/** Host and path+query exactly as the proxy hands them over: from WHATWG URL. */
function request(url: string): [string, string] {
  const parsed = new URL(url);
  return [parsed.hostname, `${parsed.pathname}${parsed.search}`];
}

function build(rules: readonly (readonly [string, number])[]): UrlSet {
  const builder = new UrlSetBuilder();
  rules.forEach(([rule, category], i) => {
    expect(builder.add(rule, category, 3, i + 1), rule).toBeNull();
  });
  return builder.build();
}

describe('URL rules (UT1/squidGuard `urls`)', () => {
  const set = build([
    ['example.com/porn', BLOCK], // 1
    ['example.com/porn/ok', ALLOW], // 2
    ['Example.COM/Case/Sensitive', BLOCK], // 3
    ['example.com/caf%c3%a9', BLOCK], // 4
    ['example.com/~user', BLOCK], // 5
    ['example.com/index.php?id=5', BLOCK], // 6
    ['games.example/dir/', BLOCK], // 7
    ['http://www.site.example/x', BLOCK], // 8
    ['1152957.wcomhost.example/&gt;', BLOCK], // 9
    ['frag.example/page#section', BLOCK], // 10
    ['ignored.example/x', OTHER], // 11
    ['both.example/p', BLOCK], // 12
    ['both.example/p', ALLOW], // 13
    ['sub.both.example/p', BLOCK], // 14
    ['129.105.212.34/~abutz', BLOCK], // 15
    ['amp.example/q?a=1&amp;b=2', BLOCK], // 16
  ]);
  const decide = (url: string): string | null => {
    const [host, path] = request(url);
    const match = set.lookup(host, path, actions);
    if (match === null) return null;
    return `${set.categoryOf(match.entry) === ALLOW ? 'allow' : 'block'} ${set.ruleText(match.entry)} :${set.lineOf(match.entry)}`;
  };

  it.each([
    ['http://example.com/porn', 'block example.com/porn :1'],
    ['http://example.com/porn/', 'block example.com/porn :1'],
    ['http://example.com/porn/x.html', 'block example.com/porn :1'],
    ['http://example.com/porn?x=1', 'block example.com/porn :1'],
    ['https://sub.example.com/porn', 'block example.com/porn :1'],
    ['http://EXAMPLE.com./porn', 'block example.com/porn :1'],
    // a segment boundary, not a prefix of a longer word
    ['http://example.com/pornography', null],
    ['http://example.com/porn.html', null],
    ['http://example.com/', null],
    ['http://notexample.com/porn', null],
    // the longer path is more specific
    ['http://example.com/porn/ok', 'allow example.com/porn/ok :2'],
    ['http://example.com/porn/ok/page', 'allow example.com/porn/ok :2'],
    ['http://example.com/porn/okay', 'block example.com/porn :1'],
    // the path is case-sensitive, the host is not
    ['http://example.com/Case/Sensitive', 'block example.com/Case/Sensitive :3'],
    ['http://example.com/case/sensitive', null],
    ['http://example.com/CASE/SENSITIVE', null],
    // percent-encoding written either way, or raw, compares equal
    ['http://example.com/caf%C3%A9', 'block example.com/caf%C3%A9 :4'],
    ['http://example.com/caf%c3%a9', 'block example.com/caf%C3%A9 :4'],
    ['http://example.com/café', 'block example.com/caf%C3%A9 :4'],
    ['http://example.com/%7Euser', 'block example.com/~user :5'],
    ['http://example.com/~user/page', 'block example.com/~user :5'],
    // a rule with a query is a prefix of path and query
    ['http://example.com/index.php?id=5', 'block example.com/index.php?id=5 :6'],
    ['http://example.com/index.php?id=5&x=1', 'block example.com/index.php?id=5 :6'],
    ['http://example.com/index.php?id=55', null],
    ['http://example.com/index.php', null],
    ['http://example.com/index.php?x=1&id=5', null],
    // a rule ending in / covers everything below, not the directory without its slash
    ['http://games.example/dir/anything/deeper', 'block games.example/dir/ :7'],
    ['http://games.example/dir/', 'block games.example/dir/ :7'],
    ['http://games.example/directory', null],
    // a scheme on the rule is dropped; www is kept as written
    ['http://www.site.example/x', 'block www.site.example/x :8'],
    ['http://m.www.site.example/x/y', 'block www.site.example/x :8'],
    ['http://site.example/x', null],
    // HTML-escaped rules and fragments of real lists
    ['http://1152957.wcomhost.example/%3E', 'block 1152957.wcomhost.example/%3E :9'],
    ['http://1152957.wcomhost.example/>', 'block 1152957.wcomhost.example/%3E :9'],
    ['http://frag.example/page', 'block frag.example/page :10'],
    ['http://frag.example/page#other', 'block frag.example/page :10'],
    // a category the profile ignores does not decide
    ['http://ignored.example/x', null],
    // allow beats block at equal specificity; the more specific host wins over both
    ['http://both.example/p/q', 'allow both.example/p :13'],
    ['http://sub.both.example/p', 'block sub.both.example/p :14'],
    // `&amp;` in a rule is the `&` of the request
    ['http://amp.example/q?a=1&b=2', 'block amp.example/q?a=1&b=2 :16'],
    ['http://amp.example/q?a=1&amp;b=2', null],
    // IP hosts match exactly
    ['http://129.105.212.34/~abutz/home', 'block 129.105.212.34/~abutz :15'],
    ['http://1.129.105.212/~abutz', null],
  ])('%s → %s', (url, expected) => {
    expect(decide(url)).toBe(expected);
  });

  it('answers per profile: the same rules allow for one and block for another', () => {
    const [host, path] = request('http://ignored.example/x');
    expect(set.lookup(host, path, Uint8Array.of(0, 0, CATEGORY_BLOCKS))).not.toBeNull();
    expect(set.lookup(...request('http://example.com/porn'), new Uint8Array(3))).toBeNull();
  });

  it.each([['/just/a/path'], ['bad host/x'], ['a&amp;b.example/q'], ['']])('refuses %j with a reason', (rule) => {
    expect(typeof parseUrlRule(rule)).toBe('string');
  });

  it.each([
    ['biocab.org/Sobrepoblaci%C3%B3n.html.', 'biocab.org', '/Sobrepoblaci%C3%B3n.html.'],
    ['7wyh.wugrcgr.es/NkP72vYO/#', '7wyh.wugrcgr.es', '/NkP72vYO/'],
    ['appwarez.com/forumdisplay.php?10-Games', 'appwarez.com', '/forumdisplay.php?10-Games'],
    ['host.example?x=1', 'host.example', '/?x=1'],
    ['host.example', 'host.example', '/'],
    ['HTTPS://Host.Example/A%2fb', 'host.example', '/A%2Fb'],
  ])('parses %j', (rule, host, path) => {
    expect(parseUrlRule(rule)).toEqual({ host, path });
  });

  it('normalises percent-encoding: unreserved decoded, the rest upper-case', () => {
    expect(normalisePercent('/a%2fb%7e%41%2D')).toBe('/a%2Fb~A-');
    expect(normalisePercent('/plain')).toBe('/plain');
    expect(normalisePercent('/bad%zz%4')).toBe('/bad%zz%4');
  });
});

// ---------------------------------------------------------------------------------
// The real UT1 lists.

const UT1 = path.join(SHARED_DATA, 'ut1');

describe('the real UT1 urls files', () => {
  const categories = readdirSync(UT1)
    .filter((name) => statSync(path.join(UT1, name)).isDirectory())
    .sort();
  const builder = new UrlSetBuilder();
  const refusals: string[] = [];
  let lines = 0;
  categories.forEach((category, categoryId) => {
    const file = path.join(UT1, category, 'urls');
    if (!existsSync(file)) return;
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, index) => {
        if (line.trim() === '' || line.startsWith('#')) return;
        lines++;
        const problem = builder.add(line, categoryId, categoryId, index + 1);
        if (problem !== null) refusals.push(`${category}/urls:${index + 1}: ${problem}`);
      });
  });
  const set = builder.build();
  const all = new Uint8Array(categories.length).fill(CATEGORY_BLOCKS);
  const decide = (url: string): string | null => {
    const match = set.lookup(...request(url), all);
    return match === null ? null : `${categories[set.categoryOf(match.entry)]} ${set.ruleText(match.entry)} :${set.lineOf(match.entry)}`;
  };

  it('accepts every one of the 42,360 lines', () => {
    expect(lines).toBe(42_360);
    expect(refusals).toEqual([]);
    expect(set.size).toBe(42_360);
  });

  it.each([
    ['http://12.5.179.24/meth_info/index.html', 'drogue 12.5.179.24/meth_info :1'],
    ['http://128.104.21.149/~cozzi', 'drogue 128.104.21.149/~cozzi :2'],
    ['http://www.1001cocktails.com/javanoid/play', 'games 1001cocktails.com/javanoid :1'],
    ['http://appwarez.com/forumdisplay.php?10-Games', 'games appwarez.com/forumdisplay.php?10-Games :130'],
    ['http://1152957.wcomhost.com/%3E', 'malware 1152957.wcomhost.com/%3E :290'],
    ['http://1momentactivate.de/mrno/index.html', 'malware 1momentactivate.de/mrno/index.html :554'],
    ['http://7wyh.wugrcgr.es/NkP72vYO/anything', 'malware 7wyh.wugrcgr.es/NkP72vYO/ :1078'],
    // malware and phishing share entries: the first category loaded (sorted names) reports
    // near misses
    ['http://12.5.179.24/meth_information', null],
    ['http://1001cocktails.com/', null],
    ['http://7wyh.wugrcgr.es/nkp72vyo/', null],
    ['http://www.google.com/search?q=x', null],
  ])('%s → %s', (url, expected) => {
    expect(decide(url)).toBe(expected);
  });

  it('matches each real rule, requested as a browser would write it', () => {
    let missed = 0;
    let checked = 0;
    for (const category of ['drogue', 'games', 'malware']) {
      const rules = readFileSync(path.join(UT1, category, 'urls'), 'utf8')
        .trim()
        .split('\n');
      for (let i = 0; i < rules.length; i += 11) {
        const parsed = parseUrlRule(rules[i]!);
        if (typeof parsed === 'string') continue;
        checked++;
        const [host, pathAndQuery] = request(`http://${parsed.host}${parsed.path}`);
        if (set.lookup(host, pathAndQuery, all) === null) missed++;
      }
    }
    expect(checked).toBeGreaterThan(1_900);
    expect(missed).toBe(0);
  });
});
