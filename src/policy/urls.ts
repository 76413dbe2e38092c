import { DomainSetBuilder, type DomainSet } from './domains.js';
import { canonicalRuleHost, isIpLiteral } from './hostname.js';
import { CATEGORY_ALLOWS, CATEGORY_BLOCKS } from './types.js';

/**
 * URL rules as squidGuard and UT1 write them: `host/path`, no scheme. A rule matches
 * its host and every subdomain when the request path starts with the rule's path at
 * a segment boundary (`/porn` matches `/porn`, `/porn/x`, `/porn?x`, not
 * `/pornography`). Real lists hold tens of thousands of these, so a map from host to
 * the host's rules (longest path first) is compact enough.
 */

export interface UrlMatch {
  readonly entry: number;
}

interface UrlEntry {
  readonly host: string;
  readonly path: string;
  readonly category: number;
  readonly file: number;
  readonly line: number;
  /** True for an exact page: the request path must equal the rule's (any query allowed). */
  readonly exact: boolean;
}

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&gt;': '>', '&lt;': '<', '&amp;': '&', '&quot;': '"', '&#39;': "'" };

/**
 * Percent-encoding written two ways must compare equal: `%7e` and `~`, `%c3%b3` and
 * `%C3%B3`. Unreserved characters are decoded, other escapes get upper-case hex.
 */
export function normalisePercent(path: string): string {
  if (path.indexOf('%') === -1) return path;
  return path.replace(/%([0-9a-fA-F]{2})/g, (escaped: string, hex: string) => {
    const code = parseInt(hex, 16);
    const unreserved =
      (code >= 0x41 && code <= 0x5a) ||
      (code >= 0x61 && code <= 0x7a) ||
      (code >= 0x30 && code <= 0x39) ||
      code === 0x2d ||
      code === 0x2e ||
      code === 0x5f ||
      code === 0x7e;
    return unreserved ? String.fromCharCode(code) : escaped.toUpperCase();
  });
}

/** Splits and canonicalises a `urls` line; an error message when it cannot be a rule. */
export function parseUrlRule(raw: string): { host: string; path: string } | string {
  let text = raw.trim().replace(/&(?:gt|lt|amp|quot|#39);/g, (entity) => HTML_ESCAPES[entity]!);
  text = text.replace(/^https?:\/\//i, '');
  const hash = text.indexOf('#');
  if (hash !== -1) text = text.slice(0, hash);
  const slash = text.search(/[/?]/);
  const hostPart = slash === -1 ? text : text.slice(0, slash);
  const host = canonicalRuleHost(hostPart);
  if (host === null) return `"${hostPart}" is not a host name`;
  if (slash === -1) return { host, path: '/' };
  let url: URL;
  try {
    // The request path goes through the same parser, so both end up encoded alike.
    url = new URL(`http://${host}${text.charAt(slash) === '?' ? '/' : ''}${text.slice(slash)}`);
  } catch {
    return 'not a URL path';
  }
  return { host, path: normalisePercent(`${url.pathname}${url.search}`) };
}

export class UrlSetBuilder {
  private readonly entries: UrlEntry[] = [];

  /**
   * Returns null when accepted, otherwise why the line is not a URL rule. `exact`: the
   * rule names one page (its path and no deeper one) instead of a path prefix.
   */
  add(rule: string, categoryId: number, fileId: number, line: number, exact = false): string | null {
    const parsed = parseUrlRule(rule);
    if (typeof parsed === 'string') return parsed;
    this.entries.push({ host: parsed.host, path: parsed.path, category: categoryId, file: fileId, line, exact });
    return null;
  }

  build(): UrlSet {
    return new UrlSet(this.entries);
  }
}

const ANY_RULE_HOST = Uint8Array.of(CATEGORY_BLOCKS);

export class UrlSet {
  private readonly byHost = new Map<string, number[]>();
  private readonly entries: readonly UrlEntry[];
  /**
   * Fingerprints of every rule host: most requests have no URL rule anywhere up their
   * host, and this answers so in one allocation-free walk of the host, in cache.
   */
  private readonly ruleHosts: DomainSet;

  constructor(entries: readonly UrlEntry[]) {
    this.entries = entries;
    entries.forEach((entry, index) => {
      const list = this.byHost.get(entry.host);
      if (list === undefined) this.byHost.set(entry.host, [index]);
      else list.push(index);
    });
    // Longest path first; at equal length the order of the files, stable.
    for (const list of this.byHost.values()) list.sort((x, y) => entries[y]!.path.length - entries[x]!.path.length || x - y);
    const hosts = new DomainSetBuilder();
    for (const host of this.byHost.keys()) hosts.add(host, 0, 0, 0);
    this.ruleHosts = hosts.build();
  }

  get size(): number {
    return this.entries.length;
  }

  categoryOf(entry: number): number {
    return this.entries[entry]!.category;
  }

  fileOf(entry: number): number {
    return this.entries[entry]!.file;
  }

  lineOf(entry: number): number {
    return this.entries[entry]!.line;
  }

  /** Length of the rule's path: the part of a matching request path the rule names. */
  pathLengthOf(entry: number): number {
    return this.entries[entry]!.path.length;
  }

  ruleText(entry: number): string {
    const { host, path } = this.entries[entry]!;
    return `${host}${path}`;
  }

  /** Most specific host first, then the longest path; allow beats block at equal specificity. */
  lookup(host: string, pathAndQuery: string, actions: Uint8Array): UrlMatch | null {
    if (this.ruleHosts.lookup(host, ANY_RULE_HOST) === null) return null;
    const path = normalisePercent(pathAndQuery);
    // `http://example.com./` parses to the hostname `example.com.`: the same name.
    if (host.length > 1 && host.charCodeAt(host.length - 1) === 0x2e) host = host.slice(0, -1);
    // An address has no parent domains: `2.3.4` is not a suffix of 1.2.3.4 worth asking.
    const wholeOnly = isIpLiteral(host);
    let start = 0;
    while (start < host.length) {
      const list = this.byHost.get(start === 0 ? host : host.slice(start));
      if (list !== undefined) {
        const entry = this.bestFor(list, path, actions);
        if (entry >= 0) return { entry };
      }
      const dot = wholeOnly ? -1 : host.indexOf('.', start);
      if (dot === -1) break;
      start = dot + 1;
    }
    return null;
  }

  private bestFor(list: readonly number[], path: string, actions: Uint8Array): number {
    let blocking = -1;
    let blockingLength = -1;
    for (const index of list) {
      const entry = this.entries[index]!;
      if (blocking >= 0 && entry.path.length < blockingLength) break;
      const action = actions[entry.category];
      if (action !== CATEGORY_ALLOWS && action !== CATEGORY_BLOCKS) continue;
      if (!(entry.exact ? pageMatches(entry.path, path) : pathMatches(entry.path, path))) continue;
      if (action === CATEGORY_ALLOWS) return index;
      if (blocking < 0) {
        blocking = index;
        blockingLength = entry.path.length;
      }
    }
    return blocking;
  }
}

/** An exact page: the same path, with or without a query or fragment after it. */
function pageMatches(rule: string, path: string): boolean {
  if (!path.startsWith(rule)) return false;
  if (path.length === rule.length) return true;
  const next = path.charCodeAt(rule.length);
  return next === 0x3f /* ? */ || next === 0x23 /* # */;
}

function pathMatches(rule: string, path: string): boolean {
  if (!path.startsWith(rule)) return false;
  if (path.length === rule.length) return true;
  const last = rule.charCodeAt(rule.length - 1);
  // A rule ending in a separator already names a boundary.
  if (last === 0x2f /* / */ || last === 0x3f /* ? */ || last === 0x26 /* & */ || last === 0x3d /* = */) return true;
  const next = path.charCodeAt(rule.length);
  return next === 0x2f || next === 0x3f || next === 0x26 || next === 0x23 /* # */;
}
