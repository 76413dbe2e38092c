// The compiled page scan (src/content/page-scan.ts, assembly/page-scan.ts) against the
// string path it replaces for UTF-8 pages: the same page, fed in the same pieces, must
// give the same scores, the same phrases in the same order, the same title and rating.
// The string path is the reference: TextDecoder, text.ts folding, KeywordSet.scanAll.
// Twice: with the shipped phrases (16-bit automaton rows) and with thousands more made
// from the news text itself (32-bit rows, a table far past 65,536 cells, whose deep
// states the news pages do reach).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContentInspection } from '../src/content/inspector.js';
import { PageScanKernel, pageScanAvailable } from '../src/content/page-scan.js';
import { contentRulesOf, PhraseSetBuilder } from '../src/policy/phrases.js';
import type { Policy } from '../src/policy/engine.js';
import { loadPolicy } from '../src/rules/loader.js';
import { makeRulesDir, REPO_ROOT, removeDir } from './harness/index.js';

const PROFILE = 'thcs';
const PHRASE_CATEGORIES = ['adult', 'drugs', 'gambling', 'self-harm', 'violence'];
/** Phrases made from the news text: enough for 32-bit rows many times over. */
const MADE_PHRASES = 5000;

let articles: string[];
const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

beforeAll(() => {
  articles = readFileSync('../shared/data/vi-text/uts-unc-dantri/unc-news-600docs.txt', 'utf8')
    .split(/^# doc_id = /mu)
    .slice(1)
    .map((doc) =>
      doc
        .split('\n')
        .slice(1)
        .filter((l) => !l.startsWith('#') && l.trim() !== '')
        .join('\n'),
    );
});

/**
 * `count` phrases lachan accepts, cut from the articles (one to three words, so the pages
 * contain many of them): as written, without diacritics, upper case, with `*` ends, each
 * with a small weight of either sign, so the scores move on every page without a verdict
 * in their category, which `thcs` does not block: the pages are read to their end.
 */
function phrasesFromNews(count: number): string {
  let seed = 0x2f6b_4a1d;
  const random = (n: number): number => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    return (seed >>> 8) % n;
  };
  const words = articles
    .join(' ')
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w !== '');
  const check = new PhraseSetBuilder();
  const lines: string[] = [];
  while (lines.length < count) {
    const at = random(words.length - 3);
    let phrase = words.slice(at, at + 1 + random(3)).join(' ');
    const variant = random(6);
    if (variant === 1) phrase = phrase.normalize('NFD').replace(/\p{M}/gu, '').replace(/đ/g, 'd').replace(/Đ/g, 'D');
    else if (variant === 2) phrase = phrase.toUpperCase();
    else if (variant === 3) phrase = `*${phrase}`;
    else if (variant === 4) phrase = `${phrase}*`;
    const line = `${random(2) === 0 ? '-' : ''}${1 + random(9)} ${phrase}`;
    if (check.addLine(line, 0, 0, 1) === null) lines.push(line);
  }
  return `${lines.join('\n')}\n`;
}

let largeDir: string | undefined;

/** The shipped phrase categories with a `made` category of phrasesFromNews, which a second profile blocks (so it is loaded). */
function largeRules(): string {
  if (largeDir !== undefined) return largeDir;
  const files: Record<string, string> = {};
  for (const category of PHRASE_CATEGORIES) files[`categories/${category}/phrases`] = readFileSync(`rules/categories/${category}/phrases`, 'utf8');
  files['categories/made/phrases'] = phrasesFromNews(MADE_PHRASES);
  files['policy.yaml'] = [
    'version: 1',
    `default_profile: ${PROFILE}`,
    'profiles:',
    `  ${PROFILE}:`,
    '    name: "Trung học cơ sở"',
    `    block_categories: [${PHRASE_CATEGORIES.join(', ')}]`,
    '    content_limit: 100',
    '  made:',
    '    name: "Made"',
    '    block_categories: [made]',
    '    content_limit: 1000',
    '',
  ].join('\n');
  largeDir = makeRulesDir(files);
  dirs.push(largeDir);
  return largeDir;
}

interface Reading {
  readonly scores: number[];
  readonly phrases: string[];
  readonly title: string | null;
  readonly verdict: string | null;
}

/** Reads `body` in pieces cut at `cuts` (byte offsets) and reports what the inspector saw. */
function read(inspection: ContentInspection, body: Buffer, cuts: readonly number[], type = 'text/html'): Reading {
  const inspector = inspection.begin(type, undefined)!;
  let verdict: string | null = null;
  let from = 0;
  for (const cut of [...cuts, body.length]) {
    if (cut <= from) continue;
    const step = inspector.write(body.subarray(from, cut));
    from = cut;
    if (step.verdict !== undefined) verdict ??= `${step.verdict.category}:${step.verdict.score}`;
  }
  const last = inspector.end();
  if (last.verdict !== undefined) verdict ??= `${last.verdict.category}:${last.verdict.score}`;
  const reading = { scores: [...inspector.scores], phrases: inspector.evidence(), title: inspector.title, verdict };
  inspector.release();
  return reading;
}

function page(text: string, title = 'Tin tức'): Buffer {
  return Buffer.from(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title><style>p{color:red}</style></head><body>${text}</body></html>`);
}

describe.each([
  { phrases: 'the shipped phrases', rules: () => 'rules', cellBytes: 2 },
  { phrases: `the shipped phrases and ${MADE_PHRASES} made from the news`, rules: largeRules, cellBytes: 4 },
])('compiled page scan with $phrases', ({ rules, cellBytes }) => {
  let policy: Policy;
  let compiled: ContentInspection;
  let strings: ContentInspection;

  beforeAll(async () => {
    policy = await loadPolicy(rules());
    compiled = ContentInspection.for(policy, PROFILE, { holdBackBytes: 1 << 30 })!;
    strings = ContentInspection.for(policy, PROFILE, { holdBackBytes: 1 << 30, compiledScan: false })!;
  });

  function bothRead(body: Buffer, cuts: readonly number[], type?: string): { compiled: Reading; strings: Reading } {
    return { compiled: read(compiled, body, cuts, type), strings: read(strings, body, cuts, type) };
  }

  it(`scans ${8 * cellBytes}-bit automaton rows, and UTF-8 pages take it`, () => {
    expect(pageScanAvailable()).toBe(true);
    const phrases = contentRulesOf(policy).phrases;
    const table = phrases.automaton.pageTable;
    expect(table.cellBytes).toBe(cellBytes);
    // Rows far past what 16 bits hold, so a row cut to 16 bits or premultiplied wrong cannot pass below.
    if (cellBytes === 4) expect(table.states * table.alphabetSize).toBeGreaterThan(8 * 0x10000);
    expect(PageScanKernel.of(phrases)).not.toBeNull();
  });

  it('finds what the string path finds on 600 Vietnamese news articles, as pages in 16 KiB pieces', () => {
    let withPhrases = 0;
    for (let i = 0; i < articles.length; i += 5) {
      const body = page(
        articles
          .slice(i, i + 5)
          .map((a) => `<p>${a.replace(/\n/g, '</p><p>')}</p>`)
          .join('<hr>'),
      );
      const cuts = Array.from({ length: Math.floor(body.length / 16384) }, (_, k) => (k + 1) * 16384);
      const both = bothRead(body, cuts);
      expect(both.compiled).toEqual(both.strings);
      if (both.strings.phrases.length > 0) withPhrases++;
    }
    // The comparison means something only if the news pages do contain phrases.
    expect(withPhrases).toBeGreaterThan(20);
  });

  it('finds harmful phrases as the string path does: NFC, NFD, without diacritics, in entities, across tags', () => {
    const harmful = 'Trang cá độ bóng đá uy tín, nhà cái tặng tiền, casino trực tuyến, cờ bạc online, chơi tài xỉu và lô đề';
    const variants = [
      harmful,
      harmful.normalize('NFD'),
      harmful.normalize('NFD').replace(/\p{M}/gu, ''),
      harmful.replace(/đ/g, '&#273;').replace(/á/g, '&aacute;').replace(/ộ/g, '&#x1ed9;'),
      harmful.replace(/ /g, '</b> <b>'),
      harmful.replace(/ /g, '&nbsp;'),
      harmful.toUpperCase(),
    ];
    for (const text of variants) {
      const body = page(`<p>${text}</p>`, text.slice(0, 40));
      const both = bothRead(body, []);
      expect(both.compiled).toEqual(both.strings);
      expect(both.strings.verdict).not.toBeNull();
    }
  });

  it('keeps the state of each page when pages are read at once, chunk by chunk in turn', () => {
    const harmful = page(`<p>${articles[1]}</p><p>trang cá độ bóng đá, nhà cái uy tín, tài xỉu</p><p>${articles[2]}</p>`);
    const news = page(`<p>${articles[9]}</p><p>${articles[10]}</p>`);
    const alone = [read(compiled, harmful, []), read(compiled, news, [])];
    const inspectors = [compiled.begin('text/html', undefined)!, compiled.begin('text/html', undefined)!];
    const bodies = [harmful, news];
    // Cut where a phrase spans two chunks: the other page scans in between.
    const cut = harmful.indexOf(Buffer.from('bóng')) + 2;
    for (const [from, to] of [
      [0, 100],
      [100, cut],
      [cut, Math.max(harmful.length, news.length)],
    ] as const) {
      for (let k = 0; k < 2; k++) if (from < bodies[k]!.length) inspectors[k]!.write(bodies[k]!.subarray(from, Math.min(to, bodies[k]!.length)));
    }
    for (const inspector of inspectors) inspector.end();
    expect(inspectors.map((inspector) => [...inspector.scores])).toEqual(alone.map((reading) => reading.scores));
    expect(alone[0]!.verdict).not.toBeNull();
    for (const inspector of inspectors) inspector.release();
  });

  it('reads a 4 MB page handed over in one write like the string path, in a kernel memory that stays small', () => {
    // Entities and no tag: each `&` once made the markup search the rest of the chunk for a `<`.
    const body = Buffer.from(`${'&lt;cá độ bóng đá &amp; nhà cái uy tín '.repeat(110_000)}`.slice(0, 4_000_000));
    const both = bothRead(body, []);
    expect(both.compiled).toEqual(both.strings);
    expect(both.strings.verdict).not.toBeNull();
    const phrases = contentRulesOf(policy).phrases;
    const kernel = PageScanKernel.of(phrases)!;
    const { states, alphabetSize } = phrases.automaton.pageTable;
    // Scanned 64 KiB at a time: the work area is sized for that, not for the write.
    expect(kernel.bytes.length - states * alphabetSize * cellBytes).toBeLessThan(4 * 1024 * 1024);
  });

  it('reads text/plain pages the same way', () => {
    const body = Buffer.from(`${articles[3]}\ncá độ bóng đá, nhà cái uy tín, casino trực tuyến, tài xỉu\n${articles[4]}`);
    const both = bothRead(body, [100, 101, 102, 5000]);
    expect(both.compiled).toEqual(both.strings);
    expect(both.strings.phrases.length).toBeGreaterThan(0);
  });

  it('gives the same phrases whatever the pieces, with broken UTF-8, entities and tags cut anywhere', () => {
    const harmful = 'cá độ bóng đá, nhà cái uy tín, casino trực tuyến, tài xỉu, đánh bạc';
    const pieces = fc.constantFrom(
      harmful,
      harmful.normalize('NFD'),
      'thuốc lắc, ma túy đá, cỏ mỹ',
      articles[7]!.slice(0, 300),
      '<b>',
      '</p><p class="x">',
      '&#7897;',
      '&agrave;',
      '&amp;',
      '&bogus;',
      '<!-- cá độ -->',
      '<script>var s = "cá độ bóng đá";</script>',
      '<title>cá độ</title>',
      ' ',
      '\u200b',
      '😀',
      '\u0301',
    );
    const junk = fc.uint8Array({ minLength: 1, maxLength: 3 }).map((b) => Buffer.from(b));
    fc.assert(
      fc.property(
        fc.array(fc.oneof({ weight: 6, arbitrary: pieces.map((p) => Buffer.from(p)) }, { weight: 1, arbitrary: junk }), { maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (parts, rawCuts) => {
          const body = Buffer.concat([Buffer.from('<html><body>'), ...parts, Buffer.from('</body></html>')]);
          const cuts = rawCuts.map((c) => c % (body.length + 1)).sort((a, b) => a - b);
          const both = bothRead(body, cuts);
          expect(both.compiled).toEqual(both.strings);
          const plain = bothRead(body, cuts, 'text/plain; charset=utf-8');
          expect(plain.compiled).toEqual(plain.strings);
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('a phrase table the page scan memory cannot take', () => {
  it('leaves that list to the string path and reads its pages all the same', () => {
    // A process whose WebAssembly memories may not pass 40 pages (2.6 MB): room for the
    // shipped phrases' kernel (16-bit rows, 117 KB), not for the 4 MB of the large set's rows.
    const script = `
      const dist = ${JSON.stringify(`${REPO_ROOT}/dist/src`)};
      const { loadPolicy } = await import(dist + '/rules/loader.js');
      const { ContentInspection } = await import(dist + '/content/inspector.js');
      const { contentRulesOf } = await import(dist + '/policy/phrases.js');
      const { PageScanKernel } = await import(dist + '/content/page-scan.js');
      const out = {};
      for (const [name, dir] of [['shipped', 'rules'], ['large', process.argv[1]]]) {
        const policy = await loadPolicy(dir);
        const inspector = ContentInspection.for(policy, ${JSON.stringify(PROFILE)}, { holdBackBytes: 1 << 30 }).begin('text/html', undefined);
        inspector.write(Buffer.from('<p>cá độ bóng đá, nhà cái uy tín, casino trực tuyến, tài xỉu, đánh bạc</p>'));
        const verdict = inspector.end().verdict;
        out[name] = { kernel: PageScanKernel.of(contentRulesOf(policy).phrases) !== null, verdict: verdict?.category ?? null };
      }
      console.log(JSON.stringify(out));`;
    const child = spawnSync(process.execPath, ['--wasm-max-mem-pages=40', '--input-type=module', '-e', script, largeRules()], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    expect(child.stderr).toBe('');
    expect(JSON.parse(child.stdout)).toEqual({ shipped: { kernel: true, verdict: 'gambling' }, large: { kernel: false, verdict: 'gambling' } });
  });
});
