/**
 * bench:safeguarding: what the shipped safeguarding phrases (rules/safeguarding/) cost
 * and how often they would raise an alert on ordinary text.
 *
 *   npm run bench:safeguarding [-- --rounds 200000]
 *
 * - Time per search query matched (the cost an allowed search pays), and per URL that
 *   is not a search (what every allowed URL with a query pays to be told apart).
 * - False alerts: the share of the ordinary Vietnamese sentences in ../shared/data/vi-text
 *   (UD VTB and TueCL, dantri.com.vn articles: news, with its crime and accident reports)
 *   that match a phrase, as written and with the diacritics stripped, since pupils type
 *   without them. Sentences are longer than searches, so this over-counts what searches
 *   would raise. Every match is printed for review. Run from the repository root.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { searchQueryOf } from '../src/content/search-terms.js';
import { loadSafeguardingPhrases } from '../src/safeguarding/phrases.js';

const TEXT = '../shared/data/vi-text';
const roundsArg = process.argv.indexOf('--rounds');
const ROUNDS = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 200_000;

function stripDiacritics(text: string): string {
  return text
    .normalize('NFD')
    .replace(/\p{Mn}/gu, '')
    .replace(/đ/g, 'd')
    .replace(/Đ/g, 'D');
}

function timePerCall(calls: number, call: (i: number) => boolean): number {
  let hits = 0;
  for (let i = 0; i < Math.min(calls, 20_000); i++) if (call(i)) hits++;
  const started = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) if (call(i)) hits++;
  const ns = Number(process.hrtime.bigint() - started) / calls;
  if (hits < 0) throw new Error('unreachable');
  return ns / 1000;
}

function sentences(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (/sentences\.txt$|\.txt$/.test(entry.name) && !/LICENSE|README/i.test(entry.name))
        for (const line of readFileSync(file, 'utf8').split('\n')) if (line.trim() !== '') out.push(line.trim());
    }
  };
  if (existsSync(TEXT)) walk(TEXT);
  return out;
}

const phrases = await loadSafeguardingPhrases('rules');
const queries = [
  'giải bài tập toán lớp 7 trang 45',
  'thời tiết hà nội hôm nay',
  'cach tu tu khong dau',
  'minecraft mod download',
  'bài văn tả mẹ lớp 5 hay nhất',
];
console.log(`${phrases.size} phrases in ${phrases.files.join(', ')}`);
console.log(`match, one search query:            ${timePerCall(ROUNDS, (i) => phrases.match(queries[i % queries.length]!) !== null).toFixed(2)} µs`);
console.log(
  `searchQueryOf, a URL with a query:  ${timePerCall(ROUNDS * 5, () => searchQueryOf('cdn.example.vn', '/static/app.js?v=123') !== null).toFixed(3)} µs`,
);
console.log(`searchQueryOf, a URL without:       ${timePerCall(ROUNDS * 5, () => searchQueryOf('vnexpress.net', '/thoi-su/abc.html') !== null).toFixed(3)} µs`);

const text = sentences();
if (text.length === 0) {
  console.log(`no sentences under ${TEXT}: false alerts not measured`);
} else {
  for (const [form, prepare] of [
    ['as written', (s: string) => s],
    ['without diacritics', stripDiacritics],
  ] as const) {
    const hits = text.map((s) => [s, phrases.match(prepare(s))] as const).filter(([, m]) => m !== null);
    console.log(`false alerts, ${form}: ${hits.length} of ${text.length} sentences (${((hits.length / text.length) * 100).toFixed(3)} %)`);
    for (const [s, m] of hits) console.log(`  ${m!.category}/${m!.phrase}: ${s.slice(0, 140)}`);
  }
}
