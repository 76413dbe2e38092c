import { ClientMap, type ClientRange, type ClientRule, type InterceptMode } from './clients.js';
import { DomainSetBuilder, type DomainSet } from './domains.js';
import { DecisionCache, MAX_CACHED_PROFILES } from './decision-cache.js';
import { normalisePercent, type UrlSet } from './urls.js';
import type { KeywordSet } from './keywords.js';
import type { BrandSet } from './brands.js';
import { isIpLiteral } from './hostname.js';
import type { SafeSearchSettings } from './safesearch.js';
import { buildWeekTable, minuteOfWeek, type ScheduleSpec } from './schedules.js';
import { CATEGORY_ALLOWS, CATEGORY_BLOCKS, type Action, type Decision, type Reason } from './types.js';

/** The category name under which a profile's own lists (block_domains, allow_domains, block_keywords) decide. */
export const CUSTOM_CATEGORY = 'custom';

/** A profile as the engine needs it, already validated by the rules loader. */
export interface ProfileSpec {
  readonly id: string;
  /** Display name, Vietnamese (`Tiểu học`). */
  readonly name: string;
  /**
   * What this profile does with each category id (CATEGORY_* values), including the
   * pseudo-categories that hold profile-specific lists.
   */
  readonly actions: Uint8Array;
  readonly blockIpLiterals: boolean;
  readonly defaultAction: Action;
  readonly safeSearch: SafeSearchSettings;
  /** Whether HTTPS of this profile may be intercepted (when a CA exists). */
  readonly inspect: boolean;
  /** Time bands (docs/contract.md §9), validated not to overlap; none when absent. */
  readonly schedules?: readonly ScheduleSpec[];
}

export type ProfileInfo = Omit<ProfileSpec, 'actions' | 'schedules'>;

export interface ProxyAuthSettings {
  /** Absolute path of the users file, or null when proxy authentication is off. */
  readonly usersFile: string | null;
  /** user name → profile id */
  readonly profiles: ReadonlyMap<string, string>;
}

/** Everything the rules loader compiles; the engine only reads it. */
export interface CompiledRules {
  /** Category names indexed by category id. Pseudo-categories of profiles are named CUSTOM_CATEGORY. */
  readonly categoryNames: readonly string[];
  /** Display names of rule files (`rules/categories/gambling/domains`) indexed by file id. */
  readonly fileNames: readonly string[];
  readonly domains: DomainSet;
  readonly urls: UrlSet;
  readonly keywords: KeywordSet;
  /** Brand labels (`3bet` for `3bet.<any public suffix>`), written or derived; see brands.ts. */
  readonly brands?: BrandSet;
  readonly profiles: readonly ProfileSpec[];
  readonly defaultProfile: string;
  readonly clients: readonly ClientRule[];
  /** Interception mode of ranges that name none and of addresses in no range (default `learned`). */
  readonly intercept?: InterceptMode;
  readonly connectPorts: readonly number[];
  /** Actions vector under which only the no-inspect list is active. */
  readonly noInspectActions: Uint8Array;
  readonly proxyAuth: ProxyAuthSettings;
  /**
   * Indexed by category id: 1 where an allow of that category does not switch keyword
   * rules off. The district opens one page, path or site for a profile, yet keywords in
   * the rest of the URL (a query, a deeper path) still block. Missing: none.
   */
  readonly keywordsInsideAllow?: Uint8Array;
}

export interface PolicyOptions {
  /** Decision cache entries; 0 disables the cache (benchmarks of the uncached path). */
  readonly cacheSize?: number;
}

/**
 * Entries (a host, or a host and path) remembered across all profiles: 6 MiB of table
 * (three 8-byte slots an entry). Sized for a day of a school's browsing: on the bench's
 * top-sites stream (50 k hosts, 80 k host-and-path keys) 65,536 entries hit 83 % of the
 * time and 262,144 hit 99.96 %, and each miss costs a full decision (~2 µs).
 */
const DEFAULT_CACHE_SIZE = 262_144;
const ROOT_PATH = '/';
/** An actions vector under which the one category of urlRuleHosts is active. */
const ANY_ACTIVE = Uint8Array.of(CATEGORY_BLOCKS);

/**
 * The decision engine: pure and synchronous. Built once per rules load; a reload
 * builds a new Policy (and so a new, empty decision cache) and swaps it in whole.
 */
export class Policy {
  readonly defaultProfile: string;
  readonly connectPorts: ReadonlySet<number>;
  readonly proxyAuth: ProxyAuthSettings;
  readonly rules: CompiledRules;

  private readonly profilesById = new Map<string, ProfileSpec>();
  private readonly profileIndex = new Map<string, number>();
  /**
   * What decides: every profile as written (at its own index), then one variant per
   * schedule, the same profile with the schedule's actions. The decision cache is
   * keyed by variant, so an answer cached inside a window is never reused outside it.
   */
  private readonly variants: ProfileSpec[] = [];
  /** Name of the schedule each variant stands for; null for the profiles as written. */
  private readonly variantSchedules: (string | null)[] = [];
  /** By profile index: the variant in force at each minute of the week, or null for a profile without schedules. */
  private readonly weekTables: (Uint16Array | null)[] = [];
  private readonly clientMap: ClientMap;
  /**
   * Keyed by variant index (a profile, or a profile inside one of its schedules),
   * host and path (or host alone when the decision cannot depend on the path), so a
   * cached answer is never reused for another profile, time band or URL. See decision-cache.ts for why it is not an lru-cache. Made at the first
   * decision, so that a policy compiled next to the serving one (a reload) does not
   * hold its table before it serves.
   */
  private cache: DecisionCache | null = null;
  /** Entries of the cache; 0 when this policy decides uncached. */
  private readonly cacheEntries: number;
  /**
   * Every host that has URL rules: under such a host (or a subdomain) the path can
   * decide, so decisions there are cached per path.
   */
  private readonly urlRuleHosts: DomainSet;
  private readonly defaultDecisions = new Map<string, Decision>();
  private readonly keywordsInsideAllow: Uint8Array;
  /**
   * Set by evaluate() when the decision read the path although it came from a domain
   * rule (an allow that keeps keyword rules): such a decision is cached per path.
   */
  private pathDecided = false;

  constructor(rules: CompiledRules, options: PolicyOptions = {}) {
    this.rules = rules;
    this.defaultProfile = rules.defaultProfile;
    this.connectPorts = new Set(rules.connectPorts);
    this.proxyAuth = rules.proxyAuth;
    rules.profiles.forEach((profile, index) => {
      this.profilesById.set(profile.id, profile);
      this.profileIndex.set(profile.id, index);
      this.defaultDecisions.set(profile.id, builtIn(profile.defaultAction, profile.id, 'default'));
      this.variants.push(profile);
      this.variantSchedules.push(null);
    });
    for (const profile of rules.profiles) {
      const schedules = profile.schedules ?? [];
      const bands = schedules.map((schedule) => {
        this.variantSchedules.push(schedule.name);
        return { variant: this.variants.push({ ...profile, actions: schedule.actions }) - 1, windows: schedule.windows };
      });
      this.weekTables.push(bands.length === 0 ? null : buildWeekTable(this.profileIndex.get(profile.id)!, bands));
    }
    if (!this.profilesById.has(rules.defaultProfile)) {
      throw new Error(`default profile "${rules.defaultProfile}" is not defined`);
    }
    this.clientMap = new ClientMap(rules.clients, rules.defaultProfile, rules.intercept);
    const cacheSize = options.cacheSize ?? DEFAULT_CACHE_SIZE;
    this.cacheEntries = cacheSize > 0 && this.variants.length <= MAX_CACHED_PROFILES ? cacheSize : 0;
    // UrlSet keeps its own host index private; the rule text is `host` + a path starting with `/`.
    const hosts = new DomainSetBuilder();
    for (let entry = 0; entry < rules.urls.size; entry++) {
      const text = rules.urls.ruleText(entry);
      const slash = text.indexOf('/');
      hosts.add(slash === -1 ? text : text.slice(0, slash), 0, 0, 0);
    }
    this.urlRuleHosts = hosts.build();
    this.keywordsInsideAllow = rules.keywordsInsideAllow ?? new Uint8Array(rules.categoryNames.length);
  }

  profileIds(): string[] {
    return [...this.profilesById.keys()];
  }

  profile(id: string): ProfileInfo | undefined {
    return this.profilesById.get(id);
  }

  profileForAddress(address: string): string {
    return this.clientMap.profileFor(address);
  }

  /** The `clients:` range of an address (profile, interception mode), or the defaults. */
  clientRange(address: string): ClientRange {
    return this.clientMap.rangeFor(address);
  }

  /** True when `host` (canonical) is on the no-inspect list: always tunnelled, never intercepted. */
  isNoInspect(host: string): boolean {
    return this.rules.domains.lookup(host, this.rules.noInspectActions) !== null;
  }

  /**
   * The name of the schedule in force for a profile at `atMs` (ms since the epoch),
   * or null outside every window.
   */
  scheduleAt(profileId: string, atMs: number): string | null {
    const index = this.profileIndex.get(profileId);
    if (index === undefined) throw new Error(`unknown profile "${profileId}"`);
    return this.variantSchedules[this.variantAt(index, atMs)]!;
  }

  /**
   * The variant of profile `index` in force at `atMs`. Until every caller passes the
   * request's time, a missing time is now: the clock is read only for a profile that
   * has schedules, so the others decide as before.
   */
  private variantAt(index: number, atMs: number | undefined): number {
    const table = this.weekTables[index]!;
    return table === null ? index : table[minuteOfWeek(atMs ?? Date.now())]!;
  }

  cacheStats(): { hits: number; misses: number; size: number } {
    return this.cache === null ? { hits: 0, misses: 0, size: 0 } : this.cache.stats();
  }

  /**
   * Decides a request. `host` must be in the form WHATWG `new URL(...).hostname`
   * gives (lower case, punycode, IPv4 normalised, IPv6 in brackets) so that every
   * spelling of one destination shares one decision; `pathAndQuery` is the raw
   * request path with its query; `atMs` the request's time in ms since the epoch
   * (the profile's schedules decide with it).
   */
  decide(profileId: string, host: string, pathAndQuery: string, atMs?: number): Decision {
    const profileIndex = this.profileIndex.get(profileId);
    if (profileIndex === undefined) throw new Error(`unknown profile "${profileId}"`);
    // `example.com.` is the same name as `example.com` (docs/contract.md §3).
    if (host.charCodeAt(host.length - 1) === 0x2e) host = host.slice(0, -1);
    const index = this.variantAt(profileIndex, atMs);
    const profile = this.variants[index]!;
    if (this.cacheEntries === 0) return this.evaluate(profile, host, pathAndQuery);
    const cache = (this.cache ??= new DecisionCache(this.cacheEntries));
    const cached = cache.get(index, host, pathAndQuery);
    if (cached !== undefined) return cached;
    this.pathDecided = false;
    const decision = this.evaluate(profile, host, pathAndQuery);
    // A domain or address decision holds for every path unless a URL rule could
    // match under this host (URL rules come first; keywords only after both).
    const wholeHost =
      (decision.reason === 'domain' || decision.reason === 'ip-literal') && !this.pathDecided && this.urlRuleHosts.lookup(host, ANY_ACTIVE) === null;
    cache.remember(index, host, pathAndQuery, decision, wholeHost);
    return decision;
  }

  /** Decides a CONNECT: the port first, then the host as a request for `/`. */
  decideConnect(profileId: string, host: string, port: number, atMs?: number): Decision {
    if (!this.connectPorts.has(port)) {
      if (!this.profilesById.has(profileId)) throw new Error(`unknown profile "${profileId}"`);
      return { action: 'block', profile: profileId, category: null, reason: 'port', rule: String(port), source: null };
    }
    return this.decide(profileId, host, ROOT_PATH, atMs);
  }

  private evaluate(profile: ProfileSpec, host: string, pathAndQuery: string): Decision {
    const { actions } = profile;
    const rules = this.rules;

    // A URL rule is more specific than any domain rule of its host.
    const urlMatch = rules.urls.lookup(host, pathAndQuery, actions);
    if (urlMatch !== null) {
      const entry = urlMatch.entry;
      const category = rules.urls.categoryOf(entry);
      if (this.keywordsInsideAllow[category] === 1 && actions[category] === CATEGORY_ALLOWS) {
        // Only what the rule did not name is read: the page itself was reviewed.
        const blocked = this.keywordBlock(profile, normalisePercent(pathAndQuery).slice(rules.urls.pathLengthOf(entry)));
        if (blocked !== null) return blocked;
      }
      return this.fromRule(profile, category, 'url', rules.urls.ruleText(entry), rules.urls.fileOf(entry), rules.urls.lineOf(entry));
    }

    const domainMatch = rules.domains.lookup(host, actions);
    if (domainMatch !== null) {
      const entry = domainMatch.entry;
      const category = rules.domains.categoryOf(entry);
      if (this.keywordsInsideAllow[category] === 1 && actions[category] === CATEGORY_ALLOWS) {
        this.pathDecided = true;
        const blocked = this.keywordBlock(profile, pathAndQuery);
        if (blocked !== null) return blocked;
      }
      return this.fromRule(profile, category, 'domain', host.slice(domainMatch.suffixStart), rules.domains.fileOf(entry), rules.domains.lineOf(entry));
    }

    if (profile.blockIpLiterals && isIpLiteral(host)) {
      return { action: 'block', profile: profile.id, category: null, reason: 'ip-literal', rule: host, source: null };
    }

    // A brand stands for a registrable domain under any suffix: a domain rule, just
    // less specific than every listed domain (which decided above).
    const brands = rules.brands;
    if (brands !== undefined) {
      const brand = brands.lookup(host, actions);
      if (brand >= 0) return this.fromBrand(profile, brands, brand);
    }

    const keyword = rules.keywords.matchUrl(host, pathAndQuery, actions);
    if (keyword >= 0) {
      return this.fromRule(
        profile,
        rules.keywords.categoryOf(keyword),
        'keyword',
        rules.keywords.phraseOf(keyword),
        rules.keywords.fileOf(keyword),
        rules.keywords.lineOf(keyword),
      );
    }

    return this.defaultDecisions.get(profile.id)!;
  }

  /** A keyword block in `rest` of an allowed URL (the allowed host is not read), or null. */
  private keywordBlock(profile: ProfileSpec, rest: string): Decision | null {
    if (rest === '') return null;
    const k = this.rules.keywords;
    const keyword = k.matchUrl('', rest, profile.actions);
    if (keyword < 0) return null;
    return this.fromRule(profile, k.categoryOf(keyword), 'keyword', k.phraseOf(keyword), k.fileOf(keyword), k.lineOf(keyword));
  }

  /** Decides page text (content scanning); only keyword rules apply. */
  decideText(profileId: string, text: string, atMs?: number): Decision | null {
    const index = this.profileIndex.get(profileId);
    if (index === undefined) throw new Error(`unknown profile "${profileId}"`);
    const profile = this.variants[this.variantAt(index, atMs)]!;
    const keyword = this.rules.keywords.matchText(text, profile.actions);
    if (keyword < 0) return null;
    const k = this.rules.keywords;
    return this.fromRule(profile, k.categoryOf(keyword), 'keyword', k.phraseOf(keyword), k.fileOf(keyword), k.lineOf(keyword));
  }

  private fromRule(profile: ProfileSpec, categoryId: number, reason: Reason, rule: string, fileId: number, line: number): Decision {
    const categoryAction = profile.actions[categoryId];
    return {
      action: categoryAction === CATEGORY_ALLOWS ? 'allow' : 'block',
      profile: profile.id,
      category: this.rules.categoryNames[categoryId] ?? null,
      reason,
      rule,
      // Line 0: a rule that has no line of its own (a subscribed list, named by version).
      source: line === 0 ? (this.rules.fileNames[fileId] ?? '?') : `${this.rules.fileNames[fileId] ?? '?'}:${line}`,
    };
  }

  private fromBrand(profile: ProfileSpec, brands: BrandSet, entry: number): Decision {
    const decision = this.fromRule(profile, brands.categoryOf(entry), 'domain', `${brands.labelOf(entry)}.*`, brands.fileOf(entry), brands.lineOf(entry));
    const derivedFrom = brands.derivedFromOf(entry);
    if (derivedFrom === 0) return decision;
    const file = this.rules.fileNames[brands.fileOf(entry)] ?? '?';
    return { ...decision, source: `derived from ${derivedFrom} listed domain${derivedFrom === 1 ? '' : 's'} (${file})` };
  }
}

function builtIn(action: Action, profile: string, reason: Reason): Decision {
  return Object.freeze({ action, profile, category: null, reason, rule: null, source: null });
}
