/**
 * Search terms (docs/contract.md §8): the query of each supported search engine is
 * read from the URL and scored with the phrases, per profile.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicy } from '../src/rules/loader.js';
import { searchQueryOf, searchVerdict } from '../src/content/search-terms.js';
import type { Policy } from '../src/policy/engine.js';
import { makePhrasesRulesDir, removeDir } from './harness/index.js';

describe('searchQueryOf', () => {
  it.each([
    ['www.google.com', '/search?q=c%C3%A1+%C4%91%E1%BB%99+b%C3%B3ng+%C4%91%C3%A1&oq=x', 'cá độ bóng đá'],
    ['www.google.com.vn', '/search?hl=vi&q=phim+sex', 'phim sex'],
    ['google.co.uk', '/search?q=online+casino', 'online casino'],
    ['www.bing.com', '/search?q=nha+cai+uy+tin&form=QBLH', 'nha cai uy tin'],
    ['www.bing.com', '/images/search?q=porn', 'porn'],
    ['www.youtube.com', '/results?search_query=c%C3%A1ch+t%E1%BB%B1+t%E1%BB%AD', 'cách tự tử'],
    ['m.youtube.com', '/results?search_query=soi+k%C3%A8o', 'soi kèo'],
    ['coccoc.com', '/search?query=l%C3%B4+%C4%91%E1%BB%81', 'lô đề'],
    ['duckduckgo.com', '/?q=free+porn&ia=web', 'free porn'],
    ['html.duckduckgo.com', '/html?q=betting+odds', 'betting odds'],
    ['www.tiktok.com', '/search?q=t%C3%A0i%20x%E1%BB%89u&t=1', 'tài xỉu'],
    ['www.tiktok.com', '/search/video?q=nha%20cai', 'nha cai'],
  ])('reads the query of %s%s', (host, path, query) => {
    expect(searchQueryOf(host, path)).toBe(query);
  });

  it.each([
    ['www.google.com', '/maps?q=phim+sex'],
    ['www.google.com', '/search'],
    ['www.google.com', '/search?q=+'],
    ['google.evil.example', '/search?q=x'],
    ['notgoogle.com', '/search?q=x'],
    ['www.youtube.com', '/watch?v=abc&search_query=x'],
    ['duckduckgo.com', '/about?q=x'],
    ['vnexpress.net', '/search?q=cá độ'],
  ])('is not a search: %s%s', (host, path) => {
    expect(searchQueryOf(host, path)).toBeNull();
  });
});

describe('searchVerdict', () => {
  let dir: string;
  let policy: Policy;
  beforeAll(async () => {
    dir = makePhrasesRulesDir('100 cá độ bóng đá\n30 nhà cái\n-50 công an\n', {
      young: { name: 'Tiểu học', contentLimit: 60 },
      older: { name: 'THPT', contentLimit: 150 },
      staff: { name: 'Giáo viên' },
    });
    policy = await loadPolicy(dir);
  });
  afterAll(() => removeDir(dir));

  it('blocks a search whose score reaches the profile limit, with or without diacritics', () => {
    expect(searchVerdict(policy, 'young', 'www.google.com', '/search?q=ca+do+bong+da')).toMatchObject({ category: 'gambling', score: 100, limit: 60 });
    expect(searchVerdict(policy, 'young', 'www.youtube.com', '/results?search_query=c%C3%A1+%C4%91%E1%BB%99+b%C3%B3ng+%C4%91%C3%A1')?.category).toBe(
      'gambling',
    );
  });

  it('lets through weak or contextual searches, other profiles and non-searches', () => {
    expect(searchVerdict(policy, 'young', 'www.google.com', '/search?q=nha+cai')).toBeNull();
    expect(searchVerdict(policy, 'young', 'www.google.com', '/search?q=c%C3%B4ng+an+b%E1%BA%AFt+c%C3%A1+%C4%91%E1%BB%99+b%C3%B3ng+%C4%91%C3%A1')).toBeNull();
    expect(searchVerdict(policy, 'older', 'www.google.com', '/search?q=ca+do+bong+da')).toBeNull();
    expect(searchVerdict(policy, 'staff', 'www.google.com', '/search?q=ca+do+bong+da')).toBeNull();
    expect(searchVerdict(policy, 'young', 'www.google.com', '/maps?q=ca+do+bong+da')).toBeNull();
  });
});
