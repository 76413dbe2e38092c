/**
 * Matcher benchmark (issue: policy engine). Loads 5 M domains — every real list in
 * ../shared/data plus generated names to make up the rest — all UT1 categories with
 * their URL rules, and over 2,000 keywords, through the real rules loader; then
 * decides traffic drawn from the top-sites list, uncached and cached.
 *
 *   npm run bench:match                 # full size
 *   MATCH_DOMAINS=500000 npm run bench:match
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadRules } from '../src/rules/loader.js';
import { importListSource } from '../src/rules/importers.js';
import { Policy } from '../src/policy/engine.js';
import { KeywordSetBuilder } from '../src/policy/keywords.js';
import { gc, liveBytes, markdownTable, median, formatRate } from './lib/stats.js';

const DATA = path.resolve(import.meta.dirname, '../../../shared/data');
const TARGET_DOMAINS = Number(process.env.MATCH_DOMAINS ?? 5_000_000);
const ROUNDS = Number(process.env.MATCH_ROUNDS ?? 5);

/** Real lists in formats other than UT1's, converted once by our own importers. */
const EXTRA_LISTS: readonly [category: string, format: 'domains' | 'hosts' | 'adblock', file: string][] = [
  ['sb-unified', 'domains', 'stevenblack/unified-hosts.domains.txt'],
  ['sb-porn', 'domains', 'stevenblack/porn-only.domains.txt'],
  ['hagezi-light', 'domains', 'hagezi/domains/light.txt'],
  ['hagezi-nsfw', 'domains', 'hagezi/wildcard/nsfw-onlydomains.txt'],
  ['hagezi-gambling', 'domains', 'hagezi/wildcard/gambling.mini.txt'],
  ['hostsvn', 'hosts', 'hostsvn/hosts'],
  ['hostsvn-gambling', 'domains', 'hostsvn/extensions/gambling/domain.txt'],
  ['hostsvn-adult', 'domains', 'hostsvn/extensions/adult/domain.txt'],
];

async function buildRulesDir(): Promise<{ dir: string; realDomains: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lachan-bench-match-'));
  const categories = path.join(dir, 'categories');
  mkdirSync(categories);
  const names: string[] = [];
  let realDomains = 0;
  const ut1 = path.join(DATA, 'ut1');
  for (const name of readdirSync(ut1)) {
    if (!statSync(path.join(ut1, name)).isDirectory()) continue;
    symlinkSync(path.join(ut1, name), path.join(categories, name));
    names.push(name);
    try {
      realDomains += readFileSync(path.join(ut1, name, 'domains'), 'utf8').split('\n').filter(Boolean).length;
    } catch {
      // adult has only urls here
    }
  }
  for (const [category, format, file] of EXTRA_LISTS) {
    const result = await importListSource(format, path.join(DATA, file));
    mkdirSync(path.join(categories, category));
    writeFileSync(path.join(categories, category, 'domains'), `${result.domains.join('\n')}\n`);
    realDomains += result.domains.length;
    names.push(category);
  }
  // Keywords: the shipped lists plus the public word lists (the loader skips what its lint refuses).
  const keywordSources = [
    readFileSync(path.join(DATA, 'keywords/ldnoobw-v2/en.txt'), 'utf8'),
    readFileSync(path.join(DATA, 'keywords/ldnoobw-v2/vi.txt'), 'utf8'),
    (JSON.parse(readFileSync(path.join(DATA, 'keywords/vn-badwords/vi.json'), 'utf8')) as string[]).join('\n'),
  ];
  mkdirSync(path.join(categories, 'public-words'));
  const lint = new KeywordSetBuilder();
  const accepted = keywordSources.join('\n').split(/\r?\n/).filter((word) => word.trim() !== '' && !word.startsWith('#') && lint.add(word, 0, 0, 0) === null);
  writeFileSync(path.join(categories, 'public-words', 'keywords'), `${accepted.join('\n')}\n`);
  names.push('public-words');
  for (const shipped of readdirSync(path.resolve(import.meta.dirname, '../../rules/categories'))) {
    const from = path.resolve(import.meta.dirname, '../../rules/categories', shipped);
    symlinkSync(from, path.join(categories, `shipped-${shipped}`));
    names.push(`shipped-${shipped}`);
  }
  const generated = Math.max(0, TARGET_DOMAINS - realDomains);
  mkdirSync(path.join(categories, 'generated'));
  const lines: string[] = [];
  for (let i = 0; i < generated; i++) lines.push(`h${(i * 2654435761 >>> 0).toString(36)}${i.toString(36)}.gen${i % 1009}.example`);
  writeFileSync(path.join(categories, 'generated', 'domains'), `${lines.join('\n')}\n`);
  names.push('generated');
  writeFileSync(
    path.join(dir, 'policy.yaml'),
    `version: 1\ndefault_profile: students\nprofiles:\n  students:\n    block_categories: [${names.filter((n) => !['liste_blanche', 'child', 'sexual_education'].includes(n)).join(', ')}]\n    allow_categories: [liste_blanche]\n    block_ip_literals: true\n`,
  );
  return { dir, realDomains };
}

/**
 * Requests drawn from the top-sites list by popularity (Zipf, s = 1, as web traffic
 * is: a few sites take most requests), with realistic paths, one in ten to a real
 * UT1 gambling domain. Seeded, so every run sees the same stream.
 */
function buildTraffic(count: number): { hosts: string[]; paths: string[] } {
  const top = readFileSync(path.join(DATA, 'topsites/umbrella-top-100k.txt'), 'utf8').trim().split('\n');
  const gambling = readFileSync(path.join(DATA, 'ut1/gambling/domains'), 'utf8').trim().split('\n');
  const paths = ['/', '/index.html', '/search?q=bai+tap+toan+lop+5', '/news/2026/11/giao-duc-vung-cao.html', '/static/js/app.min.js?v=12', '/watch?v=dQw4w9WgXcQ'];
  // Cumulative Zipf weights over ranks.
  const cumulative = new Float64Array(top.length);
  let total = 0;
  for (let rank = 0; rank < top.length; rank++) cumulative[rank] = total += 1 / (rank + 1);
  let seed = 0x2545f491;
  const random = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const hosts: string[] = [];
  const pathList: string[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 10 === 9) {
      hosts.push(gambling[Math.floor(random() * gambling.length)]!);
    } else {
      const target = random() * total;
      let low = 0;
      let high = top.length - 1;
      while (low < high) {
        const middle = (low + high) >> 1;
        if (cumulative[middle]! < target) low = middle + 1;
        else high = middle;
      }
      hosts.push(top[low]!);
    }
    pathList.push(paths[Math.floor(random() * paths.length)]!);
  }
  // Fresh flat strings, as a request parser hands them over.
  return { hosts: hosts.map((h) => (' ' + h).slice(1)), paths: pathList };
}

function decisionsPerSecond(policy: Policy, hosts: readonly string[], paths: readonly string[]): number {
  let blocked = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < hosts.length; i++) if (policy.decide('students', hosts[i]!, paths[i]!).action === 'block') blocked++;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (blocked === 0) throw new Error('no request was blocked: the bench is not measuring matching');
  return hosts.length / seconds;
}

async function main(): Promise<void> {
  process.stderr.write(`preparing rules (${TARGET_DOMAINS} domains)…\n`);
  const { dir, realDomains } = await buildRulesDir();
  const { hosts, paths } = buildTraffic(200_000);
  try {
    gc();
    const before = liveBytes();
    const started = process.hrtime.bigint();
    const result = await loadRules(dir);
    const loadSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (result.policy === null) throw new Error(`rules refused: ${result.problems.slice(0, 3).map((p) => `${p.file}:${p.line}: ${p.message}`).join('; ')}`);
    gc();
    const heapBytes = liveBytes() - before;
    const compiled = result.policy.rules;
    const domainCount = result.stats.domains;

    const uncached = new Policy(compiled, { cacheSize: 0 });
    // Large enough to hold every host of the stream: this measures the hit path.
    const cached = new Policy(compiled, { cacheSize: 200_000 });
    // Fill the cache with every request of the stream and let the JIT settle.
    decisionsPerSecond(cached, hosts, paths);
    decisionsPerSecond(cached, hosts, paths);
    decisionsPerSecond(uncached, hosts, paths);
    const uncachedRates: number[] = [];
    const cachedRates: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      uncachedRates.push(decisionsPerSecond(uncached, hosts, paths));
      cachedRates.push(decisionsPerSecond(cached, hosts, paths));
    }
    const uncachedRate = median(uncachedRates);
    const cachedRate = median(cachedRates);
    const results = {
      domains: domainCount,
      realDomains,
      urls: result.stats.urls,
      keywords: result.stats.keywords,
      loadSeconds: +loadSeconds.toFixed(2),
      domainsPerSecond: Math.round(domainCount / loadSeconds),
      heapBytesPerDomain: +(heapBytes / domainCount).toFixed(1),
      domainSetBytesPerDomain: +(compiled.domains.byteLength / compiled.domains.size).toFixed(1),
      cacheHitRatioDuringCachedRuns: +(cached.cacheStats().hits / (cached.cacheStats().hits + cached.cacheStats().misses)).toFixed(4),
      uncachedNsPerDecision: +(1e9 / uncachedRate).toFixed(0),
      cachedNsPerDecision: +(1e9 / cachedRate).toFixed(0),
      requests: hosts.length,
      rounds: ROUNDS,
    };
    process.stdout.write(
      `${markdownTable(
        ['measure', 'result', 'target'],
        [
          ['domains loaded (real + generated)', `${domainCount} (${realDomains} real)`, '5,000,000'],
          ['URL rules / keywords', `${results.urls} / ${results.keywords}`, 'all UT1 / ≥ 2,000'],
          ['load time', `${results.loadSeconds} s (${formatRate(results.domainsPerSecond)} domains)`, '≥ 1 M domains/s'],
          ['heap per domain (all compiled rules)', `${results.heapBytesPerDomain} B`, '≤ 32 B'],
          ['domain set alone', `${results.domainSetBytesPerDomain} B`, ''],
          ['uncached decision', `${results.uncachedNsPerDecision} ns (${formatRate(uncachedRate)})`, '≤ 2 µs'],
          ['cached decision', `${results.cachedNsPerDecision} ns (${formatRate(cachedRate)})`, '≤ 0.3 µs'],
        ],
      )}\n`,
    );
    process.stdout.write(`${JSON.stringify(results)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
