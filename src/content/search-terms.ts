/**
 * Search terms (docs/contract.md §8): the query typed into Google, Bing, YouTube,
 * Cốc Cốc, DuckDuckGo or TikTok, read from the request URL and scored with the same
 * weighted phrases as pages, so a search for what a page would be blocked for is
 * blocked before any result shows. Pure: the proxy calls it on the decide path.
 */
import type { Policy } from '../policy/engine.js';
import { contentProfileOf, type ContentVerdict } from './profile.js';

interface SearchEngine {
  /** Whether a canonical (lower-case) host belongs to the engine. */
  readonly host: (host: string) => boolean;
  /** Paths whose query holds the search, matched at a segment boundary. */
  readonly paths: readonly string[];
  readonly parameter: string;
}

/**
 * `google.com`, `www.google.com.vn`, `google.co.uk`: any host whose label before the public
 * suffix is `name`. Read in place (no split): it runs for every allowed URL with a query.
 */
function brandHost(name: string): (host: string) => boolean {
  return (host) => {
    let brandAt = -1;
    let label = 0;
    let start = 0;
    for (;;) {
      const dot = host.indexOf('.', start);
      const end = dot < 0 ? host.length : dot;
      if (brandAt < 0) {
        if (end - start === name.length && host.startsWith(name, start)) brandAt = label;
      } else if (end - start > 3) {
        return false; // the brand is followed by something longer than a suffix label
      }
      if (dot < 0) break;
      start = dot + 1;
      label++;
    }
    const labels = label + 1;
    return brandAt >= 0 && brandAt >= labels - 3 && brandAt <= labels - 2;
  };
}

function domainHost(domain: string): (host: string) => boolean {
  return (host) => host === domain || host.endsWith(`.${domain}`);
}

const ENGINES: readonly SearchEngine[] = [
  { host: brandHost('google'), paths: ['/search', '/webhp', '/complete/search'], parameter: 'q' },
  { host: domainHost('bing.com'), paths: ['/search', '/images/search', '/videos/search', '/news/search'], parameter: 'q' },
  { host: domainHost('youtube.com'), paths: ['/results'], parameter: 'search_query' },
  { host: domainHost('coccoc.com'), paths: ['/search'], parameter: 'query' },
  { host: domainHost('duckduckgo.com'), paths: ['/', '/html', '/lite'], parameter: 'q' },
  { host: domainHost('tiktok.com'), paths: ['/search'], parameter: 'q' },
];

function pathMatches(path: string, prefix: string): boolean {
  if (prefix === '/') return path === '/';
  return path === prefix || path.startsWith(`${prefix}/`);
}

/**
 * The search query of a request to a known search engine, decoded (`+` is a space),
 * or null when the URL is not a search. `host` is canonical (lower case).
 */
export function searchQueryOf(host: string, pathAndQuery: string): string | null {
  const queryAt = pathAndQuery.indexOf('?');
  if (queryAt < 0) return null;
  for (const engine of ENGINES) {
    if (!engine.host(host)) continue;
    const path = pathAndQuery.slice(0, queryAt);
    if (!engine.paths.some((p) => pathMatches(path, p))) continue;
    const value = new URLSearchParams(pathAndQuery.slice(queryAt + 1)).get(engine.parameter);
    return value === null || value.trim() === '' ? null : value.trim();
  }
  return null;
}

/** The content verdict on a search query for a profile; null when allowed, not a search, or the profile is not inspected. */
export function searchVerdict(policy: Policy, profileId: string, host: string, pathAndQuery: string): ContentVerdict | null {
  const profile = contentProfileOf(policy, profileId);
  if (profile === null) return null;
  const query = searchQueryOf(host, pathAndQuery);
  return query === null ? null : queryVerdict(policy, profileId, query);
}

/** The content verdict on search terms already read (searchQueryOf) for a profile; null when allowed or the profile is not inspected. */
export function queryVerdict(policy: Policy, profileId: string, query: string): ContentVerdict | null {
  const profile = contentProfileOf(policy, profileId);
  if (profile === null) return null;
  const scanner = profile.scanner(true);
  scanner.append(query);
  scanner.finish();
  return profile.verdictOf(scanner, false, null);
}
