/**
 * The shipped keyword lists against ordinary Vietnamese text (../shared/data/vi-text:
 * UD VTB news and dialogue, UD TueCL speech, 11,784 dantri.com.vn news lines).
 *
 * A hit is a false positive here: the corpus contains no gambling or adult pages,
 * only news that sometimes reports on them. The test gates every category at a
 * recorded baseline, the whole set at 0.5 % of sentences, and checks the measurement
 * can see a bad list (LDNOOBW vi). It also runs the text with its diacritics
 * stripped, which is how URL slugs (`/tin-tuc/co-bac-...`) write Vietnamese, and
 * checks recall on real gambling and adult phrases, URLs and hosts.
 *
 * The per-keyword hit table goes to test/artifacts/keyword-hits.json.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { KeywordSetBuilder, type KeywordSet } from '../src/policy/keywords.js';
import { CATEGORY_BLOCKS } from '../src/policy/types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DATA = path.resolve(ROOT, '../shared/data');
const CATEGORIES_DIR = path.join(ROOT, 'rules/categories');
const ARTIFACT = path.join(ROOT, 'test/artifacts/keyword-hits.json');

const CORPUS: ReadonlyArray<readonly [string, number]> = [
  ['vi-text/ud-vtb/vi_vtb-ud-train.sentences.txt', 1400],
  ['vi-text/ud-vtb/vi_vtb-ud-dev.sentences.txt', 1123],
  ['vi-text/ud-vtb/vi_vtb-ud-test.sentences.txt', 800],
  ['vi-text/ud-tuecl/vi_tuecl-ud-test.sentences.txt', 100],
  ['vi-text/uts-unc-dantri/unc-news-600docs.txt', 11784],
];

/**
 * Sentences matched, per category, measured when the lists were written (15,207
 * sentences), plus a small margin. Raise a number only after reading the new hits
 * in test/artifacts/keyword-hits.json and judging them acceptable.
 *   accented: the corpus as published (NFC, 73 NFD lines, zero-width characters);
 *   stripped: the same sentences without diacritics, as in URL slugs.
 */
const BASELINE: Readonly<Record<string, { readonly accented: number; readonly stripped: number }>> = {
  adult: { accented: 2, stripped: 3 }, // measured 0 / 0
  dating: { accented: 2, stripped: 2 }, // 0 / 0
  doh: { accented: 0, stripped: 0 }, // no keywords
  drugs: { accented: 8, stripped: 10 }, // 6 / 8: news on drug arrests (bán ma túy, heroin)
  gambling: { accented: 14, stripped: 30 }, // 11 / 25: casino business news; stripped `co bac si` (có bác sĩ)
  games: { accented: 2, stripped: 2 }, // 0 / 0
  'self-harm': { accented: 9, stripped: 28 }, // 7 / 24: suicide news; stripped `tu tu` is also từ từ
  'social-networks': { accented: 0, stripped: 0 }, // no keywords
  violence: { accented: 2, stripped: 2 }, // 0 / 0
  vpn: { accented: 2, stripped: 2 }, // 0 / 0
};
const MAX_OVERALL_RATE = 0.005;

/** Top-100k resolver names matched, per category: all seen were real adult, dating or gambling sites. */
const TOP_HOSTS_BASELINE: Readonly<Record<string, number>> = {
  adult: 240, // measured 217 (xhamster, pornhub, xnxx, xvideos CDNs ...)
  dating: 18, // 14 (gotinder.com, badoo.com)
  gambling: 16, // 13 (casinoplus.com.ph, 1xbet, sportsbook.fanduel.com)
};

interface Shipped {
  readonly set: KeywordSet;
  readonly names: readonly string[];
  readonly lintErrors: readonly string[];
}

function loadShipped(): Shipped {
  const builder = new KeywordSetBuilder();
  const names = readdirSync(CATEGORIES_DIR)
    .filter((name) => existsSync(path.join(CATEGORIES_DIR, name, 'keywords')))
    .sort();
  const lintErrors: string[] = [];
  names.forEach((name, categoryId) => {
    const lines = readFileSync(path.join(CATEGORIES_DIR, name, 'keywords'), 'utf8').split('\n');
    lines.forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const error = builder.add(line, categoryId, categoryId, i + 1);
      if (error !== null) lintErrors.push(`${name}/keywords:${i + 1}: ${error}`);
    });
  });
  return { set: builder.build(), names, lintErrors };
}

function loadSentences(): string[] {
  const sentences: string[] = [];
  for (const [file, expected] of CORPUS) {
    const lines = readFileSync(path.join(DATA, file), 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith('#'));
    expect(lines.length, file).toBe(expected);
    sentences.push(...lines);
  }
  return sentences;
}

function stripDiacritics(text: string): string {
  return text.normalize('NFD').replace(/\p{M}/gu, '').replace(/đ/g, 'd').replace(/Đ/g, 'D');
}

function only(categoryId: number, size: number): Uint8Array {
  const actions = new Uint8Array(size);
  actions[categoryId] = CATEGORY_BLOCKS;
  return actions;
}

interface Measure {
  readonly perCategory: Record<string, number>;
  /** `category: phrase` → sentences it matches (every keyword, not only the first), with up to 3 examples. */
  readonly perKeyword: Record<string, { count: number; examples: string[] }>;
  readonly overall: number;
}

/** One single-keyword set per entry, to attribute a matched sentence to every keyword in it. */
function singleKeywordSets(set: KeywordSet): KeywordSet[] {
  const sets: KeywordSet[] = [];
  for (let i = 0; i < set.size; i++) {
    const builder = new KeywordSetBuilder();
    expect(builder.add(set.phraseOf(i), 0, 0, 1)).toBeNull();
    sets.push(builder.build());
  }
  return sets;
}

function measure(shipped: Shipped, singles: readonly KeywordSet[], sentences: readonly string[]): Measure {
  const { set, names } = shipped;
  const perCategory: Record<string, number> = {};
  const perKeyword: Record<string, { count: number; examples: string[] }> = {};
  const one = new Uint8Array([CATEGORY_BLOCKS]);
  names.forEach((name, categoryId) => {
    const actions = only(categoryId, names.length);
    const entries = singles.map((_, i) => i).filter((i) => set.categoryOf(i) === categoryId);
    let hits = 0;
    for (const sentence of sentences) {
      if (set.matchText(sentence, actions) < 0) continue;
      hits++;
      for (const i of entries) {
        if (singles[i]!.matchText(sentence, one) < 0) continue;
        const row = (perKeyword[`${name}: ${set.phraseOf(i)}`] ??= { count: 0, examples: [] });
        row.count++;
        if (row.examples.length < 3) row.examples.push(sentence.slice(0, 160));
      }
    }
    perCategory[name] = hits;
  });
  const all = new Uint8Array(names.length).fill(CATEGORY_BLOCKS);
  let overall = 0;
  for (const sentence of sentences) if (set.matchText(sentence, all) >= 0) overall++;
  const sorted = Object.fromEntries(Object.entries(perKeyword).sort((a, b) => b[1].count - a[1].count));
  return { perCategory, perKeyword: sorted, overall };
}

let shipped: Shipped;
let sentences: string[];
let accented: Measure;
let stripped: Measure;

beforeAll(() => {
  shipped = loadShipped();
  sentences = loadSentences();
  const singles = singleKeywordSets(shipped.set);
  accented = measure(shipped, singles, sentences);
  stripped = measure(shipped, singles, sentences.map(stripDiacritics));
  mkdirSync(path.dirname(ARTIFACT), { recursive: true });
  writeFileSync(
    ARTIFACT,
    JSON.stringify(
      {
        sentences: sentences.length,
        keywords: shipped.set.size,
        accented,
        stripped,
      },
      null,
      2,
    ) + '\n',
  );
});

describe('shipped keyword lists', () => {
  it('lint clean, and every expected category folder has a list', () => {
    expect(shipped.lintErrors).toEqual([]);
    expect(shipped.names).toEqual(expect.arrayContaining(Object.keys(BASELINE)));
    expect(shipped.set.size).toBeGreaterThan(200);
  });

  it('read the whole corpus (15,207 sentences)', () => {
    expect(sentences.length).toBe(15207);
  });

  it(`match at most ${MAX_OVERALL_RATE * 100} % of ordinary sentences overall`, () => {
    expect(accented.overall / sentences.length).toBeLessThanOrEqual(MAX_OVERALL_RATE);
    expect(stripped.overall / sentences.length).toBeLessThanOrEqual(MAX_OVERALL_RATE);
  });

  it.each(Object.keys(BASELINE))('%s stays within its recorded false-positive baseline', (name) => {
    const baseline = BASELINE[name]!;
    expect(accented.perCategory[name] ?? 0, `accented text, see ${ARTIFACT}`).toBeLessThanOrEqual(baseline.accented);
    expect(stripped.perCategory[name] ?? 0, `text without diacritics, see ${ARTIFACT}`).toBeLessThanOrEqual(baseline.stripped);
  });

  it('the measurement catches a bad list: LDNOOBW vi hits far more sentences', () => {
    const builder = new KeywordSetBuilder();
    let rejected = 0;
    readFileSync(path.join(DATA, 'keywords/ldnoobw-v2/vi.txt'), 'utf8')
      .split('\n')
      .forEach((raw, i) => {
        const line = raw.trim();
        if (line !== '' && builder.add(line, 0, 0, i + 1) !== null) rejected++;
      });
    const set = builder.build();
    const actions = new Uint8Array([CATEGORY_BLOCKS]);
    let hits = 0;
    for (const sentence of sentences) if (set.matchText(sentence, actions) >= 0) hits++;
    // Lint already drops its 1–2 letter words (`có` alone is in a third of the
    // sentences); the rest still matches about 16 % of ordinary text.
    expect(rejected).toBeGreaterThan(20);
    expect(hits / sentences.length).toBeGreaterThan(0.1);
    expect(hits).toBeGreaterThan(20 * Math.max(1, accented.overall));
  });
});

describe('shipped keyword lists catch what they are for', () => {
  const positives: ReadonlyArray<readonly [string, string]> = [
    ['gambling', 'Top 10 nhà cái uy tín nhất Việt Nam 2024'],
    ['gambling', 'soi cầu lô đề miễn phí hôm nay'],
    ['gambling', 'web cá độ bóng đá online'],
    ['gambling', 'tải game bài đổi thưởng, nạp rút nhanh'],
    ['gambling', 'chơi tài xỉu online ăn tiền thật'],
    ['gambling', 'XOC DIA ONLINE'],
    ['gambling', 'Kèo nhà cái hôm nay: tỷ lệ kèo Ngoại hạng Anh'],
    ['gambling', 'best online casino bonus'],
    ['adult', 'xem phim sex miễn phí'],
    ['adult', 'Truyện người lớn hay nhất'],
    ['adult', 'free porn videos'],
    ['drugs', 'mua cần sa ở đâu Hà Nội'],
    ['drugs', 'cách làm ma túy đá tại nhà'],
    ['drugs', 'thuốc lắc giá bao nhiêu'],
    ['self-harm', 'cách tự tử không đau'],
    ['self-harm', 'em muốn tự tử'],
    ['self-harm', 'rạch tay có đau không'],
    ['self-harm', 'how to kill myself'],
    ['violence', 'cách chế tạo bom tại nhà'],
    ['violence', 'xem clip chặt đầu'],
    ['dating', 'app hẹn hò cho học sinh'],
    ['vpn', 'cách vượt tường lửa ở trường'],
    ['vpn', 'free vpn download'],
  ];
  it.each(positives)('%s: %s', (category, text) => {
    const { set, names } = shipped;
    const entry = set.matchText(text, only(names.indexOf(category), names.length));
    expect(entry).toBeGreaterThanOrEqual(0);
    expect(names[set.categoryOf(entry)]).toBe(category);
  });

  const urls: ReadonlyArray<readonly [string, string, string]> = [
    ['gambling', 'vn88nhacai.com', '/'],
    ['gambling', 'soicau247.net', '/'],
    ['gambling', 'www.google.com', '/search?q=keo+nha+cai+hom+nay'],
    ['gambling', 'www.google.com', '/search?q=c%C3%A1+%C4%91%E1%BB%99+b%C3%B3ng+%C4%91%C3%A1'],
    ['gambling', 'bongda.example', '/soi-keo/ngoai-hang-anh'],
    ['gambling', 'kubet.net', '/'],
    ['gambling', 'www.789bet.com', '/dang-ky'],
    ['adult', 'www.pornhub.com', '/'],
    ['adult', 'xvideos.com', '/'],
    ['adult', 'phimsexhay.example', '/'],
    ['adult', 'www.google.com', '/search?q=phim+sex'],
    ['self-harm', 'www.google.com', '/search?q=c%C3%A1ch+t%E1%BB%B1+t%E1%BB%AD'],
    ['self-harm', 'www.youtube.com', '/results?search_query=cach+tu+tu'],
    ['dating', 'tinder.com', '/'],
    ['vpn', 'www.google.com', '/search?q=cach+vuot+tuong+lua'],
  ];
  it.each(urls)('%s: %s%s', (category, host, pathAndQuery) => {
    const { set, names } = shipped;
    const entry = set.matchUrl(host, pathAndQuery, only(names.indexOf(category), names.length));
    expect(entry).toBeGreaterThanOrEqual(0);
    expect(names[set.categoryOf(entry)]).toBe(category);
  });

  const ordinary: ReadonlyArray<readonly [string, string]> = [
    ['dantri.com.vn', '/giao-duc/hoc-sinh-gioi-quoc-gia-2024.htm'],
    ['nflxvideo.net', '/range/0-1000'],
    ['olm.vn', '/bai-hoc/toan-lop-5'],
    ['vnexpress.net', '/phong-chong-ma-tuy-trong-truong-hoc-4812345.html'],
    ['shop.example', '/tu-sat-van-phong'],
    ['www.google.com', '/search?q=alphabet+song'],
  ];
  it.each(ordinary)('allows %s%s', (host, pathAndQuery) => {
    const { set, names } = shipped;
    const all = new Uint8Array(names.length).fill(CATEGORY_BLOCKS);
    const entry = set.matchUrl(host, pathAndQuery, all);
    expect(entry < 0 ? null : `${names[set.categoryOf(entry)]}: ${set.phraseOf(entry)}`).toBeNull();
  });

  it('the ASCII fast path of matchUrl agrees with the full fold', () => {
    // A trailing `%20` changes nothing in the folded text but forces the full path
    // (percent-decoding), so both answers must be the same entry.
    const { set, names } = shipped;
    const all = new Uint8Array(names.length).fill(CATEGORY_BLOCKS);
    const hosts = readFileSync(path.join(DATA, 'topsites/umbrella-top-100k.txt'), 'utf8').split('\n').filter(Boolean);
    const slugs = sentences.map(
      (sentence) =>
        '/' +
        stripDiacritics(sentence)
          .toLowerCase()
          .replace(/[^a-z0-9]+/g, '-'),
    );
    let matched = 0;
    for (let i = 0; i < slugs.length; i++) {
      const host = hosts[i * 3]!;
      const fast = set.matchUrl(host, slugs[i]!, all);
      expect(set.matchUrl(host, slugs[i]! + '%20', all), `${host}${slugs[i]}`).toBe(fast);
      if (fast >= 0) matched++;
    }
    expect(matched).toBeGreaterThan(50); // both paths were exercised with hits
  });

  it('wildcards stay off ordinary sites in the top-100k hosts, and catch Vietnamese gambling domains', () => {
    const { set, names } = shipped;
    const all = new Uint8Array(names.length).fill(CATEGORY_BLOCKS);
    const hosts = readFileSync(path.join(DATA, 'topsites/umbrella-top-100k.txt'), 'utf8').split('\n').filter(Boolean);
    expect(hosts.length).toBe(100_000);
    const perCategory: Record<string, number> = {};
    for (const host of hosts) {
      const entry = set.matchUrl(host, '/', all);
      if (entry >= 0) {
        const name = names[set.categoryOf(entry)]!;
        perCategory[name] = (perCategory[name] ?? 0) + 1;
      }
    }
    for (const [name, count] of Object.entries(perCategory)) {
      expect(count, `${name} hits in top-100k hosts`).toBeLessThanOrEqual(TOP_HOSTS_BASELINE[name] ?? 0);
    }
    const gambling = only(names.indexOf('gambling'), names.length);
    const vnGambling = readFileSync(path.join(DATA, 'hostsvn/extensions/gambling/domain-VN.txt'), 'utf8').split('\n').filter(Boolean);
    const caught = vnGambling.filter((host) => set.matchUrl(host, '/', gambling) >= 0).length;
    // Measured 305 of 3,747: brand names are the domains list's job, keywords catch the generic ones.
    expect(caught).toBeGreaterThanOrEqual(290);
  });
});
