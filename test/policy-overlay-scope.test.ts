import { afterAll, describe, expect, it } from 'vitest';
import { loadPolicy } from '../src/rules/loader.js';
import { parseOverlay, type PolicyOverlay } from '../src/rules/overlay.js';
import { UrlSetBuilder } from '../src/policy/urls.js';
import { CATEGORY_ALLOWS } from '../src/policy/types.js';
import { makeRulesDir, removeDir } from './harness/index.js';

// The engine's side of scoped district allows: an exact page, a folder, a site, and
// whether keyword rules still read the rest of the URL, decided (and cached) per request.
const rulesDir = makeRulesDir({
  'policy.yaml': 'version: 1\ndefault_profile: tieu-hoc\nprofiles:\n  tieu-hoc:\n    name: "Tiểu học"\n    block_categories: [gambling, adult, games]\n',
  'categories/gambling/keywords': 'cờ bạc\n',
  'categories/adult/keywords': 'sex\n',
  'categories/games/domains': 'hoc-toan.example\ntin-tuc.example\n',
});
afterAll(() => removeDir(rulesDir));

const overlay: PolicyOverlay = {
  version: 7,
  profiles: {
    'tieu-hoc': {
      allow_domains: [],
      allow_urls: [
        { scope: 'page', url: 'vnexpress.example/bai-hoc/tac-hai-cua-co-bac', keywords: true },
        { scope: 'path', url: 'hoc-toan.example/bai-tap/', keywords: true },
        { scope: 'site', url: 'tin-tuc.example', keywords: true },
      ],
    },
  },
};

describe('scoped allows from the district overlay', () => {
  it('an exact page matches its path with any query, not a deeper or longer path', () => {
    const builder = new UrlSetBuilder();
    builder.add('a.example/p', 0, 0, 1, true);
    const set = builder.build();
    const allows = Uint8Array.of(CATEGORY_ALLOWS);
    for (const path of ['/p', '/p?x=1', '/p#top']) expect(set.lookup('a.example', path, allows), path).not.toBeNull();
    for (const path of ['/p/q', '/pq', '/', '/p2']) expect(set.lookup('a.example', path, allows), path).toBeNull();
  });

  it('decides each scope, keywords still reading what the allow does not name', async () => {
    const policy = await loadPolicy(rulesDir, { overlay, cacheSize: 1024 });
    const decide = (host: string, path: string) => policy.decide('tieu-hoc', host, path);
    expect(decide('vnexpress.example', '/bai-hoc/tac-hai-cua-co-bac')).toMatchObject({ action: 'allow', reason: 'url', source: 'district-overlay:v7:1' });
    expect(decide('vnexpress.example', '/bai-hoc/tac-hai-cua-co-bac?q=sex')).toMatchObject({ action: 'block', reason: 'keyword', category: 'adult' });
    expect(decide('vnexpress.example', '/search?q=xem+phim+sex')).toMatchObject({ action: 'block', reason: 'keyword' });
    expect(decide('hoc-toan.example', '/bai-tap/phan-so')).toMatchObject({ action: 'allow', source: 'district-overlay:v7:2' });
    expect(decide('hoc-toan.example', '/tro-choi')).toMatchObject({ action: 'block', reason: 'domain', category: 'games' });
    // The site: first a plain page (a whole-host decision could be cached), then one a keyword blocks.
    expect(decide('tin-tuc.example', '/')).toMatchObject({ action: 'allow', reason: 'domain', source: 'district-overlay:v7:3' });
    expect(decide('tin-tuc.example', '/co-bac-online')).toMatchObject({ action: 'block', reason: 'keyword', category: 'gambling' });
    expect(decide('tin-tuc.example', '/')).toMatchObject({ action: 'allow' });
  });

  it('refuses an overlay whose allow_urls are malformed', () => {
    expect(() => parseOverlay(JSON.stringify({ version: 1, profiles: { x: { allow_urls: [{ scope: 'all', url: 'a', keywords: true }] } } }))).toThrow(
      /allow_urls/,
    );
    expect(() => parseOverlay(JSON.stringify({ version: 1, profiles: { x: { allow_urls: [{ scope: 'page', url: 'a' }] } } }))).toThrow(/allow_urls/);
  });
});
