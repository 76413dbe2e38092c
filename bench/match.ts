/**
 * Matcher benchmark. Loads MATCH_DOMAINS domains (default 5 M): every real domain
 * list in ../shared/data (UT1 all categories, Hagezi, StevenBlack, hostsVN) plus
 * generated names to make up the rest, and every UT1 `urls` line. Then:
 *
 *   1. matchers alone: DomainSet and UrlSet built from the lists' text in memory
 *      (load rate, heap per domain), lookups on a top-sites request stream;
 *   2. the whole engine: the same lists as a rules folder through the real loader
 *      (with keywords), decisions uncached and cached.
 *
 *   npm run bench:match                                # full size
 *   MATCH_DOMAINS=500000 MATCH_ROUNDS=3 npm run bench:match
 *   MATCH_ENGINE=0 npm run bench:match                 # matchers only
 *
 * Prints a markdown table and one JSON line with every number.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DomainSetBuilder, type DomainSet } from '../src/policy/domains.js';
import { canonicalRuleHost } from '../src/policy/hostname.js';
import { UrlSetBuilder, type UrlSet } from '../src/policy/urls.js';
import { CATEGORY_ALLOWS, CATEGORY_BLOCKS } from '../src/policy/types.js';
import { loadRules } from '../src/rules/loader.js';
import { Policy } from '../src/policy/engine.js';
import { KeywordSetBuilder } from '../src/policy/keywords.js';
import {
  DATA,
  UT1,
  UT1_WHITE,
  generatedDomainText,
  realDomainLists,
  topSitesHosts,
  topSitesTraffic,
  ut1Categories,
  ut1UrlLines,
  type DomainListText,
} from './lib/data.js';
import { formatRate, gc, liveBytes, markdownTable, median } from './lib/stats.js';

const TARGET_DOMAINS = Number(process.env.MATCH_DOMAINS ?? 5_000_000);
const ROUNDS = Number(process.env.MATCH_ROUNDS ?? 5);
const RUN_ENGINE = process.env.MATCH_ENGINE !== '0';
const REQUESTS = 200_000;

type Row = [measure: string, result: string, target: string];

/** Seconds taken by `run`, and its result. */
function timed<T>(run: () => T): [T, number] {
  const start = process.hrtime.bigint();
  const result = run();
  return [result, Number(process.hrtime.bigint() - start) / 1e9];
}

/** Scans a list's text line by line as the rules loader does: canonical spans without allocating. */
function addListText(builder: DomainSetBuilder, list: DomainListText, categoryId: number, fileId: number): void {
  const text = list.text;
  let line = 0;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    line++;
    let first = start;
    let last = end;
    while (first < last && text.charCodeAt(first) <= 0x20) first++;
    while (last > first && text.charCodeAt(last - 1) <= 0x20) last--;
    if (last > first && text.charCodeAt(first) !== 0x23 /* # */ && !builder.addCanonicalSpan(text, first, last, categoryId, fileId, line)) {
      const host = canonicalRuleHost(text.slice(first, last));
      if (host !== null) builder.add(host, categoryId, fileId, line);
    }
    start = end + 1;
  }
}

/** Median nanoseconds per call of `lookup(i)` over `count` calls, after a warm-up round. */
function nsPerLookup(count: number, lookup: (i: number) => boolean): { ns: number; hits: number } {
  let hits = 0;
  const once = (): number => {
    hits = 0;
    const start = process.hrtime.bigint();
    for (let i = 0; i < count; i++) if (lookup(i)) hits++;
    return Number(process.hrtime.bigint() - start) / count;
  };
  once();
  const runs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) runs.push(once());
  return { ns: median(runs), hits };
}

function benchMatchers(lists: readonly DomainListText[], traffic: { hosts: string[]; paths: string[] }, rows: Row[]): Record<string, number> {
  // One category per list; UT1's white lists allow, everything else blocks.
  const actions = new Uint8Array(lists.length);
  lists.forEach((list, i) => {
    actions[i] = UT1_WHITE.has(list.category) ? CATEGORY_ALLOWS : CATEGORY_BLOCKS;
  });
  const lines = lists.reduce((sum, list) => sum + list.lines, 0);

  gc();
  const before = liveBytes();
  const [domains, loadSeconds] = timed((): DomainSet => {
    const builder = new DomainSetBuilder();
    lists.forEach((list, i) => {
      addListText(builder, list, i, i);
    });
    return builder.build();
  });
  gc();
  const heapPerDomain = (liveBytes() - before) / domains.size;

  const urlLines = ut1UrlLines();
  const categories = ut1Categories();
  const urlActions = new Uint8Array(categories.length);
  categories.forEach((name, i) => {
    urlActions[i] = UT1_WHITE.has(name) ? CATEGORY_ALLOWS : CATEGORY_BLOCKS;
  });
  const [urls, urlSeconds] = timed((): UrlSet => {
    const builder = new UrlSetBuilder();
    for (const { category, line, rule } of urlLines) builder.add(rule, categories.indexOf(category), 0, line);
    return builder.build();
  });

  const { hosts, paths } = traffic;
  const stream = nsPerLookup(hosts.length, (i) => domains.lookup(hosts[i]!, actions) !== null);
  const distinct = topSitesHosts();
  const topOnce = nsPerLookup(distinct.length, (i) => domains.lookup(distinct[i]!, actions) !== null);
  const urlStream = nsPerLookup(hosts.length, (i) => urls.lookup(hosts[i]!, paths[i]!, urlActions) !== null);
  if (stream.hits === 0) throw new Error('no domain lookup matched: the bench is not measuring matching');

  const results = {
    domainLines: lines,
    domainEntries: domains.size,
    domainLoadSeconds: +loadSeconds.toFixed(2),
    domainsPerSecond: Math.round(domains.size / loadSeconds),
    domainHeapBytesPerDomain: +heapPerDomain.toFixed(1),
    domainSetBytesPerDomain: +(domains.byteLength / domains.size).toFixed(1),
    domainLookupNs: Math.round(stream.ns),
    domainLookupMatchedShare: +(stream.hits / hosts.length).toFixed(3),
    domainLookupTop100kNs: Math.round(topOnce.ns),
    top100kMatched: topOnce.hits,
    urlRules: urls.size,
    urlRulesPerSecond: Math.round(urls.size / urlSeconds),
    urlLookupNs: Math.round(urlStream.ns),
  };
  rows.push(
    ['domain entries (real + generated)', `${domains.size.toLocaleString('en')} of ${lines.toLocaleString('en')} lines`, '5,000,000'],
    ['domain set load (text in memory → frozen set)', `${results.domainLoadSeconds} s (${formatRate(results.domainsPerSecond)})`, '≥ 1 M domains/s'],
    ['domain set heap per domain (measured)', `${results.domainHeapBytesPerDomain} B`, '≤ 32 B'],
    ['domain set arrays per domain', `${results.domainSetBytesPerDomain} B`, ''],
    [
      'domain lookup, top-sites stream (10% blocked hosts)',
      `${results.domainLookupNs} ns (${(results.domainLookupMatchedShare * 100).toFixed(1)}% matched)`,
      '< 2 µs',
    ],
    ['domain lookup, each top-100k host once', `${results.domainLookupTop100kNs} ns (${results.top100kMatched.toLocaleString('en')} matched)`, '< 2 µs'],
    ['UT1 URL rules load', `${results.urlRules.toLocaleString('en')} (${formatRate(results.urlRulesPerSecond)})`, 'all 42,360'],
    ['URL lookup, same stream', `${results.urlLookupNs} ns`, ''],
  );
  return results;
}

/** The same lists as a rules folder (UT1 linked, others written out), with public keyword lists. */
function writeRulesDir(lists: readonly DomainListText[]): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'lachan-bench-match-'));
  const categories = path.join(dir, 'categories');
  mkdirSync(categories);
  const names: string[] = [];
  for (const name of ut1Categories()) {
    symlinkSync(path.join(UT1, name), path.join(categories, name));
    names.push(name);
  }
  for (const list of lists) {
    if (names.includes(list.category)) continue;
    mkdirSync(path.join(categories, list.category));
    writeFileSync(path.join(categories, list.category, 'domains'), list.text);
    names.push(list.category);
  }
  // Keywords: the public word lists (what the keyword lint refuses is left out) and the shipped lists.
  const keywordSources = [
    readFileSync(path.join(DATA, 'keywords/ldnoobw-v2/en.txt'), 'utf8'),
    readFileSync(path.join(DATA, 'keywords/ldnoobw-v2/vi.txt'), 'utf8'),
    (JSON.parse(readFileSync(path.join(DATA, 'keywords/vn-badwords/vi.json'), 'utf8')) as string[]).join('\n'),
  ];
  mkdirSync(path.join(categories, 'public-words'));
  const lint = new KeywordSetBuilder();
  const accepted = keywordSources
    .join('\n')
    .split(/\r?\n/)
    .filter((word) => word.trim() !== '' && !word.startsWith('#') && lint.add(word, 0, 0, 0) === null);
  writeFileSync(path.join(categories, 'public-words', 'keywords'), `${accepted.join('\n')}\n`);
  names.push('public-words');
  const shippedRoot = path.resolve(import.meta.dirname, '../../rules/categories');
  for (const shipped of readdirSync(shippedRoot)) {
    symlinkSync(path.join(shippedRoot, shipped), path.join(categories, `shipped-${shipped}`));
    names.push(`shipped-${shipped}`);
  }
  const blocked = names.filter((n) => !UT1_WHITE.has(n));
  writeFileSync(
    path.join(dir, 'policy.yaml'),
    `version: 1\ndefault_profile: students\nprofiles:\n  students:\n    block_categories: [${blocked.join(', ')}]\n    allow_categories: [liste_blanche]\n    block_ip_literals: true\n`,
  );
  return dir;
}

function decisionsPerSecond(policy: Policy, hosts: readonly string[], paths: readonly string[]): number {
  let blocked = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < hosts.length; i++) if (policy.decide('students', hosts[i]!, paths[i]!).action === 'block') blocked++;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (blocked === 0) throw new Error('no request was blocked: the bench is not measuring matching');
  return hosts.length / seconds;
}

async function benchEngine(lists: readonly DomainListText[], traffic: { hosts: string[]; paths: string[] }, rows: Row[]): Promise<Record<string, number>> {
  const dir = writeRulesDir(lists);
  try {
    gc();
    const before = liveBytes();
    const started = process.hrtime.bigint();
    const result = await loadRules(dir);
    const loadSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (result.policy === null)
      throw new Error(
        `rules refused: ${result.problems
          .slice(0, 3)
          .map((p) => `${p.file}:${p.line}: ${p.message}`)
          .join('; ')}`,
      );
    gc();
    const heapBytes = liveBytes() - before;
    const compiled = result.policy.rules;
    const domainCount = result.stats.domains;
    const { hosts, paths } = traffic;

    const uncached = new Policy(compiled, { cacheSize: 0 });
    // Large enough to hold every host of the stream: this measures the hit path.
    const cached = new Policy(compiled, { cacheSize: REQUESTS });
    // Uncached rounds first, then the cached ones back to back: a cached round right
    // after an uncached one starts with the processor caches full of the 5 M-domain
    // tables, which a proxy answering mostly from its decision cache does not see.
    decisionsPerSecond(uncached, hosts, paths);
    const uncachedRates: number[] = [];
    for (let round = 0; round < ROUNDS; round++) uncachedRates.push(decisionsPerSecond(uncached, hosts, paths));
    decisionsPerSecond(cached, hosts, paths);
    decisionsPerSecond(cached, hosts, paths);
    const warm = cached.cacheStats();
    const cachedRates: number[] = [];
    for (let round = 0; round < ROUNDS; round++) cachedRates.push(decisionsPerSecond(cached, hosts, paths));
    const uncachedRate = median(uncachedRates);
    const cachedRate = median(cachedRates);
    const stats = cached.cacheStats();
    const results = {
      engineDomains: domainCount,
      engineUrls: result.stats.urls,
      engineKeywords: result.stats.keywords,
      engineLoadSeconds: +loadSeconds.toFixed(2),
      engineDomainsPerSecond: Math.round(domainCount / loadSeconds),
      engineHeapBytesPerDomain: +(heapBytes / domainCount).toFixed(1),
      // Over the measured rounds only: misses there are conflict or capacity evictions.
      cacheHitRatio: +((stats.hits - warm.hits) / (stats.hits - warm.hits + stats.misses - warm.misses)).toFixed(4),
      cacheEntries: stats.size,
      uncachedNsPerDecision: Math.round(1e9 / uncachedRate),
      cachedNsPerDecision: Math.round(1e9 / cachedRate),
    };
    rows.push(
      [
        'engine: rules folder load (read, lint, compile)',
        `${results.engineLoadSeconds} s (${formatRate(results.engineDomainsPerSecond)} domains)`,
        '≥ 1 M domains/s',
      ],
      ['engine: heap per domain (all compiled rules)', `${results.engineHeapBytesPerDomain} B`, '≤ 32 B'],
      ['engine: URL rules / keywords', `${results.engineUrls.toLocaleString('en')} / ${results.engineKeywords.toLocaleString('en')}`, ''],
      ['engine: uncached decision', `${results.uncachedNsPerDecision} ns (${formatRate(uncachedRate)})`, '≤ 2 µs'],
      [
        'engine: cached decision',
        `${results.cachedNsPerDecision} ns (${formatRate(cachedRate)}; ${(results.cacheHitRatio * 100).toFixed(2)} % hits, ${results.cacheEntries.toLocaleString('en')} entries)`,
        '≤ 0.3 µs',
      ],
    );
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  process.stderr.write(`preparing ${TARGET_DOMAINS.toLocaleString('en')} domains…\n`);
  const lists = await realDomainLists();
  const realLines = lists.reduce((sum, list) => sum + list.lines, 0);
  if (TARGET_DOMAINS > realLines) lists.push(generatedDomainText(TARGET_DOMAINS - realLines));
  const traffic = topSitesTraffic(REQUESTS);
  const rows: Row[] = [];
  const results: Record<string, number> = { realDomainLines: realLines, requests: REQUESTS, rounds: ROUNDS };
  process.stderr.write('matchers…\n');
  Object.assign(results, benchMatchers(lists, traffic, rows));
  if (RUN_ENGINE) {
    process.stderr.write('engine…\n');
    Object.assign(results, await benchEngine(lists, traffic, rows));
  }
  process.stdout.write(`${markdownTable(['measure', 'result', 'target'], rows)}\n`);
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

await main();
