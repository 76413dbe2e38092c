/**
 * Safe search: which search engines a profile forces into their restricted mode, and
 * how. Two mechanisms, as the engines document for school networks:
 *
 * - `safeSearchEndpoint`: for a CONNECT to a search host, the host to dial instead
 *   (www.google.com → forcesafesearch.google.com). The client's TLS stays intact, since
 *   that endpoint serves the engine's own certificate; only the address changes. A proxy
 *   that intercepts keeps the original name for SNI, Host and certificate checks.
 * - `rewriteForSafeSearch`: for requests the proxy sees in clear (plain HTTP, or
 *   intercepted HTTPS), the query parameter or header that asks for the strict mode.
 *
 * Pure and synchronous, no Node imports. Lookups allocate nothing for hosts no engine
 * governs, which is nearly every request.
 */

export type YouTubeRestriction = 'strict' | 'moderate' | 'off';

/** A profile's safe-search settings, compiled from `safe_search:` in policy.yaml. */
export interface SafeSearchSettings {
  readonly google: boolean;
  readonly bing: boolean;
  readonly duckduckgo: boolean;
  readonly youtube: YouTubeRestriction;
}

/**
 * `safe_search:` as written in policy.yaml: `true` (every engine strict), `false`
 * (none), or a mapping `{ google: true, bing: true, duckduckgo: true, youtube: strict }`.
 * Engines a mapping leaves out are not forced.
 */
export type SafeSearchConfig = boolean | Readonly<Record<string, string | boolean>>;

export const SAFE_SEARCH_OFF: SafeSearchSettings = Object.freeze({ google: false, bing: false, duckduckgo: false, youtube: 'off' });
export const SAFE_SEARCH_STRICT: SafeSearchSettings = Object.freeze({ google: true, bing: true, duckduckgo: true, youtube: 'strict' });

export const SAFE_SEARCH_ENGINES = ['google', 'bing', 'duckduckgo', 'youtube'] as const;
export type SafeSearchEngine = (typeof SAFE_SEARCH_ENGINES)[number];

export interface CompiledSafeSearch {
  readonly settings: SafeSearchSettings;
  /** One message per entry that could not be understood (the entry then forces nothing). */
  readonly problems: readonly string[];
}

/** Validates and normalises `safe_search:`; the rules loader reports `problems` as lint errors. */
export function compileSafeSearch(config: SafeSearchConfig | undefined): CompiledSafeSearch {
  if (config === undefined || config === false) return { settings: SAFE_SEARCH_OFF, problems: [] };
  if (config === true) return { settings: SAFE_SEARCH_STRICT, problems: [] };
  const problems: string[] = [];
  let google = false;
  let bing = false;
  let duckduckgo = false;
  let youtube: YouTubeRestriction = 'off';
  for (const [key, value] of Object.entries(config)) {
    const engine = key.toLowerCase();
    if (engine === 'youtube') {
      const level = youtubeLevel(value);
      if (level === null) problems.push(`safe_search.youtube must be strict, moderate or off (got ${JSON.stringify(value)})`);
      else youtube = level;
      continue;
    }
    if (engine !== 'google' && engine !== 'bing' && engine !== 'duckduckgo') {
      problems.push(`safe_search.${key}: unknown search engine (known: ${SAFE_SEARCH_ENGINES.join(', ')})`);
      continue;
    }
    const on = switchValue(value);
    if (on === null) {
      problems.push(`safe_search.${key} must be true or false (got ${JSON.stringify(value)})`);
      continue;
    }
    if (engine === 'google') google = on;
    else if (engine === 'bing') bing = on;
    else duckduckgo = on;
  }
  return { settings: { google, bing, duckduckgo, youtube }, problems };
}

function switchValue(value: string | boolean): boolean | null {
  if (typeof value === 'boolean') return value;
  const text = value.toLowerCase();
  if (text === 'strict' || text === 'on' || text === 'active') return true;
  if (text === 'off') return false;
  return null;
}

function youtubeLevel(value: string | boolean): YouTubeRestriction | null {
  if (value === true) return 'strict';
  if (value === false) return 'off';
  const text = value.toLowerCase();
  return text === 'strict' || text === 'moderate' || text === 'off' ? text : null;
}

// Hosts each engine documents for network-enforced safe search.
const YOUTUBE_HOSTS: ReadonlySet<string> = new Set([
  'www.youtube.com',
  'm.youtube.com',
  'youtubei.googleapis.com',
  'youtube.googleapis.com',
  'www.youtube-nocookie.com',
]);
const BING_HOSTS: ReadonlySet<string> = new Set(['www.bing.com']);
const DUCKDUCKGO_HOSTS: ReadonlySet<string> = new Set(['duckduckgo.com', 'www.duckduckgo.com']);

/**
 * Google search on any of its country domains, bare or www: google.com, google.com.vn,
 * www.google.co.uk, google.vn, google.cat. Other google.* names (mail, docs, accounts)
 * are other services and must keep their own addresses.
 */
const GOOGLE_SEARCH_HOST = /^(?:www\.)?google\.(?:com|(?:com?\.)?[a-z]{2}|cat)$/;

export const GOOGLE_SAFE_ENDPOINT = 'forcesafesearch.google.com';
export const YOUTUBE_STRICT_ENDPOINT = 'restrict.youtube.com';
export const YOUTUBE_MODERATE_ENDPOINT = 'restrictmoderate.youtube.com';
export const BING_SAFE_ENDPOINT = 'strict.bing.com';
export const DUCKDUCKGO_SAFE_ENDPOINT = 'safe.duckduckgo.com';

type Engine = 'google' | 'youtube' | 'bing' | 'duckduckgo' | null;

function engineOf(host: string): Engine {
  if (YOUTUBE_HOSTS.has(host)) return 'youtube';
  if (BING_HOSTS.has(host)) return 'bing';
  if (DUCKDUCKGO_HOSTS.has(host)) return 'duckduckgo';
  if (host.includes('google.') && GOOGLE_SEARCH_HOST.test(host)) return 'google';
  return null;
}

/** Lower-case without trailing dot; returns the same string when already canonical. */
function canonicalHost(host: string): string {
  let name = host;
  if (name.endsWith('.')) name = name.slice(0, -1);
  return /[A-Z]/.test(name) ? name.toLowerCase() : name;
}

/**
 * For a CONNECT to `host`, the host the proxy should dial instead so the engine serves
 * its restricted mode; null when `host` is no governed search host or the profile does
 * not force that engine.
 */
export function safeSearchEndpoint(host: string, settings: SafeSearchSettings): string | null {
  switch (engineOf(canonicalHost(host))) {
    case 'google':
      return settings.google ? GOOGLE_SAFE_ENDPOINT : null;
    case 'youtube':
      if (settings.youtube === 'strict') return YOUTUBE_STRICT_ENDPOINT;
      return settings.youtube === 'moderate' ? YOUTUBE_MODERATE_ENDPOINT : null;
    case 'bing':
      return settings.bing ? BING_SAFE_ENDPOINT : null;
    case 'duckduckgo':
      return settings.duckduckgo ? DUCKDUCKGO_SAFE_ENDPOINT : null;
    default:
      return null;
  }
}

export interface SafeSearchRewrite {
  /** The request target to send upstream (unchanged when only headers apply). */
  readonly pathAndQuery: string;
  /** Headers to set on the upstream request, replacing any the client sent with that name. */
  readonly headers: readonly (readonly [name: string, value: string])[];
}

const NO_HEADERS: SafeSearchRewrite['headers'] = Object.freeze([]);
const YOUTUBE_STRICT_HEADERS: SafeSearchRewrite['headers'] = Object.freeze([Object.freeze(['YouTube-Restrict', 'Strict'] as const)]);
const YOUTUBE_MODERATE_HEADERS: SafeSearchRewrite['headers'] = Object.freeze([Object.freeze(['YouTube-Restrict', 'Moderate'] as const)]);

/** Paths of result pages (and suggestions) that honour the safe-search parameter. */
const GOOGLE_SEARCH_PATHS: ReadonlySet<string> = new Set(['/', '/search', '/webhp', '/imghp', '/images', '/complete/search']);
const BING_SEARCH_PATHS: ReadonlySet<string> = new Set(['/search', '/images/search', '/videos/search', '/news/search', '/AS/Suggestions']);
const DUCKDUCKGO_SEARCH_PATHS: ReadonlySet<string> = new Set(['/', '/html', '/html/', '/lite', '/lite/']);

/**
 * For a request the proxy sees in clear, what to change so the engine answers in its
 * restricted mode: Google `safe=active`, Bing `adlt=strict`, DuckDuckGo `kp=1` (each
 * replacing whatever value the client sent), YouTube the `YouTube-Restrict` header.
 * Null when nothing needs changing.
 */
export function rewriteForSafeSearch(host: string, pathAndQuery: string, settings: SafeSearchSettings): SafeSearchRewrite | null {
  // Most requests: nothing to enforce for this profile, so the host is not even looked at.
  if (!settings.google && !settings.bing && !settings.duckduckgo && settings.youtube === 'off') return null;
  switch (engineOf(canonicalHost(host))) {
    case 'google':
      return settings.google ? withParameter(pathAndQuery, GOOGLE_SEARCH_PATHS, 'safe', 'active') : null;
    case 'bing':
      return settings.bing ? withParameter(pathAndQuery, BING_SEARCH_PATHS, 'adlt', 'strict') : null;
    case 'duckduckgo':
      return settings.duckduckgo ? withParameter(pathAndQuery, DUCKDUCKGO_SEARCH_PATHS, 'kp', '1') : null;
    case 'youtube':
      if (settings.youtube === 'off') return null;
      return { pathAndQuery, headers: settings.youtube === 'strict' ? YOUTUBE_STRICT_HEADERS : YOUTUBE_MODERATE_HEADERS };
    default:
      return null;
  }
}

function withParameter(pathAndQuery: string, searchPaths: ReadonlySet<string>, name: string, value: string): SafeSearchRewrite | null {
  const queryStart = pathAndQuery.indexOf('?');
  const path = queryStart === -1 ? pathAndQuery : pathAndQuery.slice(0, queryStart);
  if (!searchPaths.has(path)) return null;
  const rewritten = setQueryParameter(path, queryStart === -1 ? '' : pathAndQuery.slice(queryStart + 1), name, value);
  return rewritten === pathAndQuery ? null : { pathAndQuery: rewritten, headers: NO_HEADERS };
}

/**
 * `path?query` with every `name=…` parameter removed and `name=value` appended; other
 * parameters keep their exact bytes and order. Names compare after percent-decoding so
 * `%73afe=off` cannot slip past.
 */
function setQueryParameter(path: string, query: string, name: string, value: string): string {
  const kept: string[] = [];
  let alreadySet = false;
  if (query !== '') {
    for (const part of query.split('&')) {
      if (part === '') continue;
      const equals = part.indexOf('=');
      const key = decodeName(equals === -1 ? part : part.slice(0, equals));
      if (key === name) {
        // Keep a single correct occurrence in place, so a compliant URL stays unchanged.
        if (!alreadySet && part === `${name}=${value}`) {
          alreadySet = true;
          kept.push(part);
        }
        continue;
      }
      kept.push(part);
    }
  }
  if (!alreadySet) kept.push(`${name}=${value}`);
  return `${path}?${kept.join('&')}`;
}

function decodeName(raw: string): string {
  if (!raw.includes('%') && !raw.includes('+')) return raw.toLowerCase();
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' ')).toLowerCase();
  } catch {
    return raw.toLowerCase();
  }
}
