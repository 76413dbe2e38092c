/**
 * Keyword matcher micro-benchmark.
 *
 *   npx tsc -p . && node dist/bench/keywords.js [hosts=100000] [rounds=5]
 *
 * Matches top-sites hosts with realistic paths and queries against:
 *   - shipped:      the shipped lists (rules/categories/x/keywords), all blocking;
 *   - loaded:       the shipped lists plus the public lists in ../shared/data/keywords
 *                   (LDNOOBW vi+en, vn-badwords: about 12,700 phrases), only the
 *                   shipped categories blocking, so the automaton is large but
 *                   ordinary URLs rarely stop the scan early;
 *   - everything:   the same set with every list blocking.
 * Also prints ns per KB of page text, and as a yardstick for the machine the cost of
 * merely reading each URL character through a table. Run from the repository root.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { KeywordSetBuilder, type KeywordSet } from '../src/policy/keywords.js';
import { CATEGORY_BLOCKS } from '../src/policy/types.js';

const DATA = '../shared/data';
const RULES = 'rules/categories';

type Lists = ReadonlyArray<readonly string[]>;

function shippedLists(): Lists {
  return readdirSync(RULES)
    .sort()
    .map((name) => join(RULES, name, 'keywords'))
    .filter((file) => existsSync(file))
    .map((file) => readFileSync(file, 'utf8').split('\n'));
}

function publicLists(): Lists {
  return [
    readFileSync(join(DATA, 'keywords/ldnoobw-v2/vi.txt'), 'utf8').split('\n'),
    readFileSync(join(DATA, 'keywords/ldnoobw-v2/en.txt'), 'utf8').split('\n'),
    JSON.parse(readFileSync(join(DATA, 'keywords/vn-badwords/vi.json'), 'utf8')) as string[],
    JSON.parse(readFileSync(join(DATA, 'keywords/vn-badwords/en.json'), 'utf8')) as string[],
  ];
}

/** One category per list, in order. */
function build(lists: Lists): { set: KeywordSet; rejected: number; ms: number } {
  const started = performance.now();
  const builder = new KeywordSetBuilder();
  let rejected = 0;
  lists.forEach((lines, category) => {
    lines.forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      if (builder.add(line, category, category, i + 1) !== null) rejected++;
    });
  });
  const set = builder.build();
  return { set, rejected, ms: Math.round(performance.now() - started) };
}

const PATHS = [
  '/',
  '/index.html',
  '/search?q=b%C3%A0i+t%E1%BA%ADp+to%C3%A1n+l%E1%BB%9Bp+5&hl=vi',
  '/tin-tuc/giao-duc/hoc-sinh-tieu-hoc-tham-gia-ngay-hoi-doc-sach-20240512093011.htm',
  '/watch?v=dQw4w9WgXcQ&list=PL1234567890',
  '/wp-content/uploads/2024/05/anh-minh-hoa-1200x800.jpg',
  '/api/v1/users/12345/profile?lang=vi&fields=name,avatar',
  '/static/js/main.8f3a2c1d.chunk.js',
  '/thoi-su/quoc-hoi-thao-luan-du-an-luat-20241028.html?utm_source=facebook',
  '/v2/track?event=page_view&ts=1732780000&sid=ab12cd34',
];

type Url = readonly [host: string, pathAndQuery: string];

function measureUrls(set: KeywordSet, urls: readonly Url[], actions: Uint8Array, rounds: number): { nsPerUrl: number; matched: number } {
  let matched = 0;
  for (const [h, p] of urls) if (set.matchUrl(h, p, actions) >= 0) matched++; // warm-up
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < urls.length; i++) set.matchUrl(urls[i]![0], urls[i]![1], actions);
    const ns = Number(process.hrtime.bigint() - t0) / urls.length;
    if (ns < best) best = ns;
  }
  return { nsPerUrl: Math.round(best), matched };
}

function measureReadingOnly(urls: readonly Url[], rounds: number): number {
  const table = new Uint16Array(0x10000);
  let sink = 0;
  let best = Infinity;
  for (let r = 0; r <= rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < urls.length; i++) {
      const h = urls[i]![0];
      const p = urls[i]![1];
      for (let k = 0; k < h.length; k++) sink += table[h.charCodeAt(k)]!;
      for (let k = 0; k < p.length; k++) sink += table[p.charCodeAt(k)]!;
    }
    const ns = Number(process.hrtime.bigint() - t0) / urls.length;
    if (r > 0 && ns < best) best = ns;
  }
  if (sink !== 0) throw new Error('unreachable');
  return Math.round(best);
}

function measureText(set: KeywordSet, text: string, actions: Uint8Array, rounds: number): number {
  set.matchText(text, actions);
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    set.matchText(text, actions);
    const ns = Number(process.hrtime.bigint() - t0) / (text.length / 1024); // per KB of UTF-16 code units
    if (ns < best) best = ns;
  }
  return Math.round(best);
}

function main(): void {
  const hostLimit = Number(process.argv[2] ?? 100_000);
  const rounds = Number(process.argv[3] ?? 5);

  const shipped = shippedLists();
  const small = build(shipped);
  const large = build([...shipped, ...publicLists()]);
  const shippedBlocking = new Uint8Array(shipped.length + 4).fill(CATEGORY_BLOCKS, 0, shipped.length);
  const allBlocking = new Uint8Array(shipped.length + 4).fill(CATEGORY_BLOCKS);

  const urls: Url[] = readFileSync(join(DATA, 'topsites/umbrella-top-100k.txt'), 'utf8')
    .split('\n')
    .filter((h) => h !== '')
    .slice(0, hostLimit)
    .map((h, i) => [h, PATHS[i % PATHS.length]!] as const);
  const avgUrlChars = urls.reduce((n, [h, p]) => n + h.length + p.length, 0) / urls.length;
  const text = readFileSync(join(DATA, 'vi-text/ud-vtb/vi_vtb-ud-train.sentences.txt'), 'utf8');

  console.log(
    JSON.stringify({
      urls: urls.length,
      avgUrlChars: Math.round(avgUrlChars),
      nsPerUrlReadingCharsOnly: measureReadingOnly(urls, rounds),
      shipped: { keywords: small.set.size, buildMs: small.ms, ...measureUrls(small.set, urls, allBlocking, rounds) },
      loaded: {
        keywords: large.set.size,
        rejectedByLint: large.rejected,
        buildMs: large.ms,
        ...measureUrls(large.set, urls, shippedBlocking, rounds),
      },
      everything: measureUrls(large.set, urls, allBlocking, rounds),
      nsPerKbTextShipped: measureText(small.set, text, allBlocking, rounds),
    }),
  );
}

main();
