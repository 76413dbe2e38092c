import { describe, expect, it } from 'vitest';
import {
  SAFE_SEARCH_OFF,
  SAFE_SEARCH_STRICT,
  compileSafeSearch,
  rewriteForSafeSearch,
  safeSearchEndpoint,
  type SafeSearchSettings,
} from '../src/policy/safesearch.js';

const MODERATE_YOUTUBE: SafeSearchSettings = { ...SAFE_SEARCH_STRICT, youtube: 'moderate' };
const ONLY_YOUTUBE: SafeSearchSettings = { ...SAFE_SEARCH_OFF, youtube: 'strict' };

describe('compileSafeSearch', () => {
  it.each([
    ['true: every engine strict', true, SAFE_SEARCH_STRICT],
    ['false: nothing forced', false, SAFE_SEARCH_OFF],
    ['absent: nothing forced', undefined, SAFE_SEARCH_OFF],
    ['the shipped thcs mapping', { google: true, bing: true, duckduckgo: true, youtube: 'moderate' }, MODERATE_YOUTUBE],
    ['engines left out are not forced', { youtube: 'strict' }, ONLY_YOUTUBE],
    ['youtube: true means strict', { youtube: true }, ONLY_YOUTUBE],
    ['levels as words', { google: 'on', bing: 'strict', duckduckgo: 'off', youtube: 'off' }, { ...SAFE_SEARCH_OFF, google: true, bing: true }],
  ] as const)('%s', (_name, config, expected) => {
    expect(compileSafeSearch(config)).toEqual({ settings: expected, problems: [] });
  });

  it('reports unknown engines and levels, and forces nothing for them', () => {
    const { settings, problems } = compileSafeSearch({ yahoo: true, youtube: 'kids', google: 'maybe', bing: true });
    expect(settings).toEqual({ ...SAFE_SEARCH_OFF, bing: true });
    expect(problems).toEqual([
      'safe_search.yahoo: unknown search engine (known: google, bing, duckduckgo, youtube)',
      'safe_search.youtube must be strict, moderate or off (got "kids")',
      'safe_search.google must be true or false (got "maybe")',
    ]);
  });
});

describe('safeSearchEndpoint (CONNECT: the host to dial instead)', () => {
  it.each([
    ['www.google.com', SAFE_SEARCH_STRICT, 'forcesafesearch.google.com'],
    ['google.com', SAFE_SEARCH_STRICT, 'forcesafesearch.google.com'],
    ['www.google.com.vn', SAFE_SEARCH_STRICT, 'forcesafesearch.google.com'],
    ['google.com.vn', SAFE_SEARCH_STRICT, 'forcesafesearch.google.com'],
    ['www.google.co.uk', SAFE_SEARCH_STRICT, 'forcesafesearch.google.com'],
    ['google.vn', SAFE_SEARCH_STRICT, 'forcesafesearch.google.com'],
    ['WWW.Google.COM.', SAFE_SEARCH_STRICT, 'forcesafesearch.google.com'],
    ['www.youtube.com', SAFE_SEARCH_STRICT, 'restrict.youtube.com'],
    ['m.youtube.com', SAFE_SEARCH_STRICT, 'restrict.youtube.com'],
    ['youtubei.googleapis.com', SAFE_SEARCH_STRICT, 'restrict.youtube.com'],
    ['youtube.googleapis.com', SAFE_SEARCH_STRICT, 'restrict.youtube.com'],
    ['www.youtube-nocookie.com', SAFE_SEARCH_STRICT, 'restrict.youtube.com'],
    ['www.youtube.com', MODERATE_YOUTUBE, 'restrictmoderate.youtube.com'],
    ['www.bing.com', SAFE_SEARCH_STRICT, 'strict.bing.com'],
    ['duckduckgo.com', SAFE_SEARCH_STRICT, 'safe.duckduckgo.com'],
    ['www.duckduckgo.com', SAFE_SEARCH_STRICT, 'safe.duckduckgo.com'],
    // Engines the profile does not force keep their address.
    ['www.google.com', ONLY_YOUTUBE, null],
    ['www.bing.com', ONLY_YOUTUBE, null],
    ['duckduckgo.com', ONLY_YOUTUBE, null],
    ['www.youtube.com', SAFE_SEARCH_OFF, null],
    // Other Google services and look-alikes are not search hosts.
    ['mail.google.com', SAFE_SEARCH_STRICT, null],
    ['accounts.google.com', SAFE_SEARCH_STRICT, null],
    ['docs.google.com', SAFE_SEARCH_STRICT, null],
    ['google.com.evil.example', SAFE_SEARCH_STRICT, null],
    ['notgoogle.com', SAFE_SEARCH_STRICT, null],
    ['www.google.example.com', SAFE_SEARCH_STRICT, null],
    ['bing.com.vn', SAFE_SEARCH_STRICT, null],
    ['vnexpress.net', SAFE_SEARCH_STRICT, null],
  ] as const)('%s → %s', (host, settings, expected) => {
    expect(safeSearchEndpoint(host, settings)).toBe(expected);
  });
});

describe('rewriteForSafeSearch (requests seen in clear)', () => {
  it.each([
    ['www.google.com', '/search?q=c%E1%BB%9D+b%E1%BA%A1c', '/search?q=c%E1%BB%9D+b%E1%BA%A1c&safe=active'],
    ['www.google.com.vn', '/search?q=x&safe=off&hl=vi', '/search?q=x&hl=vi&safe=active'],
    ['www.google.com', '/search?q=x&%73afe=off', '/search?q=x&safe=active'],
    ['www.google.com', '/search?safe=active&q=x&safe=images', '/search?safe=active&q=x'],
    ['www.google.com', '/search', '/search?safe=active'],
    ['www.google.com', '/?q=x', '/?q=x&safe=active'],
    ['www.google.com', '/complete/search?q=co', '/complete/search?q=co&safe=active'],
    ['www.bing.com', '/search?q=x', '/search?q=x&adlt=strict'],
    ['www.bing.com', '/images/search?q=x&adlt=off', '/images/search?q=x&adlt=strict'],
    ['duckduckgo.com', '/?q=x&kp=-2', '/?q=x&kp=1'],
    ['duckduckgo.com', '/html/?q=x', '/html/?q=x&kp=1'],
  ] as const)('%s%s → %s', (host, target, expected) => {
    expect(rewriteForSafeSearch(host, target, SAFE_SEARCH_STRICT)).toEqual({ pathAndQuery: expected, headers: [] });
  });

  it.each([
    ['already compliant', 'www.google.com', '/search?q=x&safe=active', SAFE_SEARCH_STRICT],
    ['not a search page', 'www.google.com', '/xjs/_/js/k=xjs.s.vi', SAFE_SEARCH_STRICT],
    ['engine not forced', 'www.google.com', '/search?q=x', ONLY_YOUTUBE],
    ['not a search host', 'mail.google.com', '/search?q=x', SAFE_SEARCH_STRICT],
    ['other site', 'vnexpress.net', '/search?q=x', SAFE_SEARCH_STRICT],
    ['youtube off', 'www.youtube.com', '/watch?v=abc', SAFE_SEARCH_OFF],
  ] as const)('null when nothing changes: %s', (_name, host, target, settings) => {
    expect(rewriteForSafeSearch(host, target, settings)).toBeNull();
  });

  it.each([
    ['www.youtube.com', SAFE_SEARCH_STRICT, 'Strict'],
    ['m.youtube.com', MODERATE_YOUTUBE, 'Moderate'],
    ['youtubei.googleapis.com', ONLY_YOUTUBE, 'Strict'],
  ] as const)('YouTube %s gets YouTube-Restrict: %s', (host, settings, level) => {
    expect(rewriteForSafeSearch(host, '/watch?v=abc', settings)).toEqual({
      pathAndQuery: '/watch?v=abc',
      headers: [['YouTube-Restrict', level]],
    });
  });
});
