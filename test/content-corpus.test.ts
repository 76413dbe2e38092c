/**
 * Content inspection on real text (docs/contract.md §8), with the shipped rules:
 *   - false positives: the 600 dantri.com.vn news articles of ../shared/data/vi-text,
 *     each served as an HTML page, must stay under 0.5 % blocked for `thcs` and 2 % for
 *     `tieu-hoc`; the score distribution goes to test/artifacts/content-scores.json;
 *   - detection: the pages of test/fixtures/content, in every way an origin serves them
 *     (gzip, br, deflate, windows-1258, without diacritics), blocked or not per tier
 *     as the table below says, the same in every variant.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPolicy } from '../src/rules/loader.js';
import { ContentInspection } from '../src/content/inspector.js';
import type { Policy } from '../src/policy/engine.js';
import { fixture, fixtureNames, runInspection, servedVariants, SHARED_DATA, stripDiacritics } from './harness/index.js';

const TIERS = ['mam-non', 'tieu-hoc', 'thcs', 'thpt', 'giao-vien'] as const;
const ARTIFACTS = path.resolve(import.meta.dirname, 'artifacts');

/** Which tiers block each fixture page, and in which category ('-' for none). */
const EXPECTED: Readonly<Record<string, { readonly category: string; readonly tiers: readonly string[] }>> = {
  'en-adult-site.html': { category: 'adult', tiers: ['mam-non', 'tieu-hoc', 'thcs', 'thpt'] },
  'en-betting-odds-explained.html': { category: 'gambling', tiers: ['mam-non', 'tieu-hoc', 'thcs'] },
  'en-gambling-site.html': { category: 'gambling', tiers: ['mam-non', 'tieu-hoc', 'thcs', 'thpt'] },
  'en-news-drugs.html': { category: '-', tiers: [] },
  'en-selfharm-forum.html': { category: 'self-harm', tiers: ['mam-non', 'tieu-hoc', 'thcs', 'thpt'] },
  'vi-adult-site.html': { category: 'adult', tiers: ['mam-non', 'tieu-hoc', 'thcs', 'thpt'] },
  'vi-celebrity-borderline.html': { category: 'adult', tiers: ['mam-non', 'tieu-hoc'] },
  'vi-drugs-shop.html': { category: 'drugs', tiers: ['mam-non', 'tieu-hoc', 'thcs', 'thpt'] },
  'vi-gambling-site.html': { category: 'gambling', tiers: ['mam-non', 'tieu-hoc', 'thcs', 'thpt'] },
  'vi-health-sex-education.html': { category: '-', tiers: [] },
  'vi-hidden-markup.html': { category: '-', tiers: [] },
  'vi-news-gambling-arrest.html': { category: '-', tiers: [] },
  'vi-rating-label.html': { category: 'adult', tiers: ['mam-non', 'tieu-hoc', 'thcs', 'thpt'] },
  'vi-selfharm-forum.html': { category: 'self-harm', tiers: ['mam-non', 'tieu-hoc', 'thcs', 'thpt'] },
  'vi-suicide-prevention.html': { category: '-', tiers: [] },
};

let policy: Policy;
beforeAll(async () => {
  policy = await loadPolicy('rules');
  mkdirSync(ARTIFACTS, { recursive: true });
}, 120_000);

function inspection(tier: string): ContentInspection | null {
  return ContentInspection.for(policy, tier);
}

/** The news corpus as pages: one article a page, its lines as paragraphs. */
function newsPages(): { id: string; html: string }[] {
  const text = readFileSync(path.join(SHARED_DATA, 'vi-text/uts-unc-dantri/unc-news-600docs.txt'), 'utf8');
  return text
    .split(/^# doc_id = /mu)
    .slice(1)
    .map((doc) => {
      const lines = doc.split('\n');
      const body = lines.slice(1).filter((l) => !l.startsWith('#') && l.trim() !== '');
      return {
        id: lines[0]!.trim(),
        html: `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${body[0]}</title></head><body><h1>${body[0]}</h1>${body
          .slice(1)
          .map((l) => `<p>${l}</p>`)
          .join('\n')}</body></html>`,
      };
    });
}

describe('false positives on Vietnamese news', () => {
  it('blocks at most 0.5 % of 600 news pages for thcs and 2 % for tieu-hoc', async () => {
    const pages = newsPages();
    expect(pages.length).toBe(600);
    const report: Record<string, unknown> = {};
    const blockedRate: Record<string, number> = {};
    for (const tier of ['tieu-hoc', 'thcs', 'thpt', 'mam-non']) {
      const tierInspection = inspection(tier)!;
      const maxScores: number[] = [];
      const blocked: string[] = [];
      for (const page of pages) {
        const run = runInspection(
          tierInspection,
          { variant: 'utf-8', contentType: 'text/html; charset=utf-8', contentEncoding: undefined, body: Buffer.from(page.html) },
          16_384,
        );
        maxScores.push(Math.max(0, ...run.scores!));
        if (run.verdict !== null) blocked.push(`${page.id}: ${run.verdict.category} ${run.verdict.score} [${run.verdict.phrases.join(', ')}]`);
      }
      blockedRate[tier] = blocked.length / pages.length;
      report[tier] = { limit: tierInspection.profile.limit, blocked, distribution: distribution(maxScores) };
    }
    writeFileSync(path.join(ARTIFACTS, 'content-scores.json'), `${JSON.stringify(report, null, 2)}\n`);
    expect(blockedRate['thcs']).toBeLessThanOrEqual(0.005);
    expect(blockedRate['tieu-hoc']).toBeLessThanOrEqual(0.02);
  }, 300_000);
});

describe('false positives on Vietnamese news without diacritics', () => {
  // Text typed without an IME matches every phrase whose letters it has (§3), so
  // `lo de` (lo để) reads as `lô đề`: the harder case, under the same gates.
  it('blocks at most 0.5 % of the 600 pages for thcs and 2 % for tieu-hoc', async () => {
    const pages = newsPages();
    const blocked: Record<string, string[]> = {};
    for (const tier of ['tieu-hoc', 'thcs']) {
      blocked[tier] = [];
      for (const page of pages) {
        const run = runInspection(
          inspection(tier)!,
          { variant: 'no-diacritics', contentType: 'text/html; charset=utf-8', contentEncoding: undefined, body: Buffer.from(stripDiacritics(page.html)) },
          16_384,
        );
        if (run.verdict !== null) blocked[tier]!.push(`${page.id}: ${run.verdict.category} ${run.verdict.score} [${run.verdict.phrases.join(', ')}]`);
      }
    }
    writeFileSync(path.join(ARTIFACTS, 'content-scores-no-diacritics.json'), `${JSON.stringify(blocked, null, 2)}\n`);
    expect(blocked['thcs']!.length / pages.length).toBeLessThanOrEqual(0.005);
    expect(blocked['tieu-hoc']!.length / pages.length).toBeLessThanOrEqual(0.02);
  }, 300_000);
});

/** How many pages have their highest category score in each band. */
function distribution(scores: readonly number[]): Record<string, number> {
  const bands: Record<string, number> = { '0': 0, '1-19': 0, '20-39': 0, '40-59': 0, '60-99': 0, '100-149': 0, '150+': 0 };
  for (const s of scores) {
    const band = s <= 0 ? '0' : s < 20 ? '1-19' : s < 40 ? '20-39' : s < 60 ? '40-59' : s < 100 ? '60-99' : s < 150 ? '100-149' : '150+';
    bands[band]!++;
  }
  return bands;
}

describe('detection on the fixture pages', () => {
  it('lists every fixture in the expected table', () => {
    expect(fixtureNames()).toEqual(Object.keys(EXPECTED).sort());
  });

  it('blocks each page for the expected tiers, in every served variant', async () => {
    const table: string[] = [`| page | variants | ${TIERS.join(' | ')} |`, `|---|---|${TIERS.map(() => '---').join('|')}|`];
    for (const name of fixtureNames()) {
      const expected = EXPECTED[name]!;
      const row: string[] = [];
      for (const tier of TIERS) {
        const tierInspection = inspection(tier);
        const outcomes = new Set<string>();
        for (const page of servedVariants(fixture(name))) {
          if (name.startsWith('en-') && page.variant === 'windows-1258') continue;
          const run = tierInspection === null ? null : runInspection(tierInspection, page, 97);
          const outcome = run?.verdict ? run.verdict.category : '-';
          outcomes.add(outcome);
          expect({ name, tier, variant: page.variant, outcome }).toEqual({
            name,
            tier,
            variant: page.variant,
            outcome: expected.tiers.includes(tier) ? expected.category : '-',
          });
        }
        row.push([...outcomes].join('/'));
      }
      table.push(`| ${name} | all | ${row.join(' | ')} |`);
    }
    writeFileSync(path.join(ARTIFACTS, 'content-detection.md'), `${table.join('\n')}\n`);
  }, 300_000);
});
