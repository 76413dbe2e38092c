import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair, type YAMLError } from 'yaml';
import { DEFAULT_INTERCEPT_MODE, INTERCEPT_MODES, parseCidr, type InterceptMode } from '../policy/clients.js';
import type { Action } from '../policy/types.js';
import { compileSafeSearch, type SafeSearchConfig, type SafeSearchSettings } from '../policy/safesearch.js';
import type { ProblemList } from './problems.js';
import { readOrganisation, type Organisation } from './organisation.js';
import { readSchedules, type ScheduleConfig } from './schedule-config.js';

/** A value from policy.yaml with the line it was written on. */
export interface Located<T> {
  readonly value: T;
  readonly line: number;
}

export interface ProfileConfig {
  readonly id: string;
  readonly line: number;
  readonly name: string;
  readonly blockCategories: readonly Located<string>[];
  readonly allowCategories: readonly Located<string>[];
  readonly blockDomains: readonly Located<string>[];
  readonly allowDomains: readonly Located<string>[];
  readonly blockKeywords: readonly Located<string>[];
  readonly blockIpLiterals: boolean;
  readonly safeSearch: SafeSearchSettings;
  readonly inspect: boolean;
  readonly defaultAction: Action;
  /** Content score at which a page is blocked (docs/contract.md §8); null: pages are not inspected. */
  readonly contentLimit: number | null;
  /** Time bands (docs/contract.md §9); empty when the profile has none. */
  readonly schedules: readonly ScheduleConfig[];
}

export interface PolicyConfig {
  readonly defaultProfile: Located<string>;
  readonly profiles: readonly ProfileConfig[];
  readonly connectPorts: readonly number[];
  readonly clients: readonly { readonly cidr: string; readonly profile: string; readonly intercept?: InterceptMode; readonly line: number }[];
  /** HTTPS interception of ranges that name no mode, and of addresses in no range. */
  readonly intercept: InterceptMode;
  readonly proxyAuth: { readonly usersFile: string | null; readonly profiles: readonly Located<[string, string]>[] };
  /** School, managing office, hotline: what the block page names (defaults when the section is absent). */
  readonly organisation: Organisation;
}

const TOP_LEVEL_FIELDS = new Set(['version', 'default_profile', 'profiles', 'connect_ports', 'clients', 'proxy_auth', 'organisation', 'intercept']);
const PROFILE_FIELDS = new Set([
  'name',
  'description',
  'block_categories',
  'allow_categories',
  'block_domains',
  'allow_domains',
  'block_keywords',
  'block_ip_literals',
  'safe_search',
  'inspect',
  'default_action',
  'content_limit',
  'schedules',
]);
const PROFILE_ID = /^[a-z0-9][a-z0-9_-]*$/;

/**
 * Parses and validates policy.yaml. Every problem goes to `problems` with its line;
 * the returned config is only meaningful when no error was recorded.
 */
export function parsePolicyFile(text: string, file: string, problems: ProblemList): PolicyConfig | null {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  for (const error of doc.errors) {
    problems.error(file, yamlErrorLine(text, error, lineCounter), `YAML: ${firstLine(error.message)}`);
  }
  if (doc.errors.length > 0) return null;
  return new PolicyReader(doc, lineCounter, file, problems).read();
}

/**
 * The line to show for a YAML error. The parser notices an unclosed quote or bracket
 * only where the text ends (or where the next key starts), but the mistake is where it
 * was opened: that is the line the person has to fix.
 */
function yamlErrorLine(text: string, error: YAMLError, lines: LineCounter): number {
  const at = error.pos[0];
  if (error.code === 'MISSING_CHAR' || /end with a [\]}]|closing/.test(error.message)) {
    const opened = unclosedAt(text, at);
    if (opened !== null) return lines.linePos(opened).line;
  }
  return lines.linePos(at).line;
}

/** Offset of the quote or outermost bracket still open at `end`, outside comments; null when none is. */
function unclosedAt(text: string, end: number): number | null {
  let quote: { char: string; at: number } | null = null;
  const brackets: number[] = [];
  for (let i = 0; i < end && i < text.length; i++) {
    const c = text[i]!;
    if (quote !== null) {
      if (c === '\\' && quote.char === '"') i++;
      else if (c === quote.char) quote = null;
      continue;
    }
    if (c === '#' && (i === 0 || /\s/.test(text[i - 1]!))) {
      const newline = text.indexOf('\n', i);
      i = newline === -1 ? text.length : newline;
    } else if ((c === '"' || c === "'") && (i === 0 || /[\s[{,:]/.test(text[i - 1]!))) quote = { char: c, at: i };
    else if (c === '[' || c === '{') brackets.push(i);
    else if ((c === ']' || c === '}') && brackets.length > 0) brackets.pop();
  }
  return quote?.at ?? brackets[0] ?? null;
}

function firstLine(message: string): string {
  return message.split('\n', 1)[0]!;
}

class PolicyReader {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly file: string,
    private readonly problems: ProblemList,
  ) {}

  private lineOf(node: Node | Pair | null | undefined): number {
    const range = node && 'range' in node ? node.range : node && 'key' in node ? (node.key as Node | null)?.range : undefined;
    return range ? this.lines.linePos(range[0]).line : 1;
  }

  private error(node: Node | Pair | null | undefined, message: string): void {
    this.problems.error(this.file, this.lineOf(node), message);
  }

  read(): PolicyConfig | null {
    const root = this.doc.contents;
    if (!isMap(root)) {
      this.problems.error(this.file, 1, 'policy.yaml must be a mapping (version, default_profile, profiles, …)');
      return null;
    }
    const fields = new Map<string, Pair>();
    for (const pair of root.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      if (!TOP_LEVEL_FIELDS.has(key)) this.problems.warning(this.file, this.lineOf(pair.key as Node), `unknown field "${key}" (ignored)`);
      fields.set(key, pair);
    }

    const version = fields.get('version');
    if (!version) this.problems.error(this.file, 1, 'missing "version: 1"');
    else if (!isScalar(version.value) || version.value.value !== 1) this.error(version.value as Node, 'unsupported version (this lachan reads version: 1)');

    const profiles = this.readProfiles(fields.get('profiles'));
    const profileIds = new Set(profiles.map((p) => p.id));

    const defaultPair = fields.get('default_profile');
    let defaultProfile: Located<string> = { value: '', line: 1 };
    if (!defaultPair || !isScalar(defaultPair.value) || typeof defaultPair.value.value !== 'string') {
      this.error(defaultPair?.value as Node | undefined, 'missing "default_profile" (the profile of clients no range names)');
    } else {
      defaultProfile = { value: defaultPair.value.value, line: this.lineOf(defaultPair.value) };
      if (profiles.length > 0 && !profileIds.has(defaultProfile.value)) {
        this.error(defaultPair.value, `default_profile "${defaultProfile.value}" is not a profile defined under profiles`);
      }
    }

    return {
      defaultProfile,
      profiles,
      connectPorts: this.readPorts(fields.get('connect_ports')),
      clients: this.readClients(fields.get('clients'), profileIds),
      intercept: this.readInterceptMode(fields.get('intercept')?.value as Node | undefined) ?? DEFAULT_INTERCEPT_MODE,
      proxyAuth: this.readProxyAuth(fields.get('proxy_auth'), profileIds),
      organisation: readOrganisation(fields.get('organisation')?.value as Node | null | undefined, this.lines, this.file, this.problems),
    };
  }

  private readProfiles(pair: Pair | undefined): ProfileConfig[] {
    if (!pair || !isMap(pair.value) || pair.value.items.length === 0) {
      this.error(pair?.value as Node | undefined, 'missing "profiles": at least one profile is needed');
      return [];
    }
    const result: ProfileConfig[] = [];
    for (const item of pair.value.items) {
      const id = isScalar(item.key) ? String(item.key.value) : '';
      if (!PROFILE_ID.test(id)) {
        this.error(item.key as Node, `profile id "${id}" must be lower-case letters, digits, "-" or "_"`);
        continue;
      }
      if (!isMap(item.value)) {
        this.error(item.key as Node, `profile "${id}" must be a mapping of settings`);
        continue;
      }
      const settings = new Map<string, Pair>();
      for (const field of item.value.items) {
        const key = isScalar(field.key) ? String(field.key.value) : '';
        if (!PROFILE_FIELDS.has(key)) this.problems.warning(this.file, this.lineOf(field.key as Node), `unknown profile field "${key}" (ignored)`);
        settings.set(key, field);
      }
      const defaultAction = this.readString(settings.get('default_action'), 'allow');
      if (defaultAction !== 'allow' && defaultAction !== 'block') {
        this.error(settings.get('default_action')?.value as Node, 'default_action must be "allow" or "block"');
      }
      result.push({
        id,
        line: this.lineOf(item.key as Node),
        name: this.readString(settings.get('name'), id),
        blockCategories: this.readList(settings.get('block_categories')),
        allowCategories: this.readList(settings.get('allow_categories')),
        blockDomains: this.readList(settings.get('block_domains')),
        allowDomains: this.readList(settings.get('allow_domains')),
        blockKeywords: this.readList(settings.get('block_keywords')),
        blockIpLiterals: this.readBoolean(settings.get('block_ip_literals'), true),
        safeSearch: this.readSafeSearch(settings.get('safe_search')),
        inspect: this.readBoolean(settings.get('inspect'), false),
        defaultAction: defaultAction === 'block' ? 'block' : 'allow',
        contentLimit: this.readContentLimit(settings.get('content_limit')),
        schedules: readSchedules(settings.get('schedules')?.value as Node | undefined, this.lines, this.file, this.problems),
      });
    }
    return result;
  }

  private readString(pair: Pair | undefined, fallback: string): string {
    if (!pair) return fallback;
    if (isScalar(pair.value) && (typeof pair.value.value === 'string' || typeof pair.value.value === 'number')) return String(pair.value.value);
    this.error(pair.value as Node, `"${String((pair.key as { value?: unknown })?.value)}" must be a text value`);
    return fallback;
  }

  private readContentLimit(pair: Pair | undefined): number | null {
    if (!pair || (isScalar(pair.value) && pair.value.value === null)) return null;
    if (isScalar(pair.value) && Number.isInteger(pair.value.value) && (pair.value.value as number) > 0) return pair.value.value as number;
    this.error(pair.value as Node, 'content_limit must be a whole number above 0 (the page score that blocks), e.g. 100');
    return null;
  }

  private readBoolean(pair: Pair | undefined, fallback: boolean): boolean {
    if (!pair) return fallback;
    if (isScalar(pair.value) && typeof pair.value.value === 'boolean') return pair.value.value;
    this.error(pair.value as Node, `"${String((pair.key as { value?: unknown })?.value)}" must be true or false`);
    return fallback;
  }

  private readList(pair: Pair | undefined): Located<string>[] {
    if (!pair || pair.value === null || (isScalar(pair.value) && pair.value.value === null)) return [];
    if (!isSeq(pair.value)) {
      this.error(pair.value as Node, `"${String((pair.key as { value?: unknown })?.value)}" must be a list, e.g. [a, b]`);
      return [];
    }
    const values: Located<string>[] = [];
    for (const element of pair.value.items) {
      if (isScalar(element) && (typeof element.value === 'string' || typeof element.value === 'number')) {
        values.push({ value: String(element.value), line: this.lineOf(element) });
      } else {
        this.error(element as Node, 'list entries must be plain text');
      }
    }
    return values;
  }

  private readSafeSearch(pair: Pair | undefined): SafeSearchSettings {
    const compiled = compileSafeSearch(this.readSafeSearchConfig(pair));
    for (const problem of compiled.problems) this.error(pair?.value as Node | undefined, problem);
    return compiled.settings;
  }

  private readSafeSearchConfig(pair: Pair | undefined): SafeSearchConfig {
    if (!pair) return false;
    if (isScalar(pair.value) && typeof pair.value.value === 'boolean') return pair.value.value;
    if (isMap(pair.value)) {
      const settings: Record<string, string | boolean> = {};
      for (const item of pair.value.items) {
        const key = isScalar(item.key) ? String(item.key.value) : '';
        if (isScalar(item.value) && (typeof item.value.value === 'string' || typeof item.value.value === 'boolean')) settings[key] = item.value.value;
        else this.error(item.value as Node, `safe_search.${key} must be true, false or a level`);
      }
      return settings;
    }
    this.error(pair.value as Node, 'safe_search must be true, false or a mapping of engines to levels');
    return false;
  }

  private readPorts(pair: Pair | undefined): number[] {
    if (!pair) return [443];
    if (!isSeq(pair.value)) {
      this.error(pair.value as Node, 'connect_ports must be a list of port numbers, e.g. [443]');
      return [443];
    }
    const ports: number[] = [];
    for (const element of pair.value.items) {
      const port = isScalar(element) ? element.value : undefined;
      if (typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535) ports.push(port);
      else this.error(element as Node, `"${String(port)}" is not a port number (1–65535)`);
    }
    return ports;
  }

  private readClients(pair: Pair | undefined, profileIds: ReadonlySet<string>): PolicyConfig['clients'] {
    if (!pair || (isScalar(pair.value) && pair.value.value === null)) return [];
    if (!isSeq(pair.value)) {
      this.error(pair.value as Node, 'clients must be a list of { cidr, profile }');
      return [];
    }
    const clients: { cidr: string; profile: string; intercept?: InterceptMode; line: number }[] = [];
    for (const element of pair.value.items) {
      if (!isMap(element)) {
        this.error(element as Node, 'each client entry needs "cidr" and "profile"');
        continue;
      }
      const cidr = element.get('cidr', true);
      const profile = element.get('profile', true);
      const line = this.lineOf(element as Node);
      if (!isScalar(cidr) || typeof cidr.value !== 'string') {
        this.error(element as Node, 'client entry without "cidr"');
        continue;
      }
      try {
        parseCidr(cidr.value);
      } catch (error) {
        this.error(cidr, (error as Error).message);
        continue;
      }
      if (!isScalar(profile) || typeof profile.value !== 'string') {
        this.error(element as Node, `client ${cidr.value} without "profile"`);
        continue;
      }
      if (!profileIds.has(profile.value)) {
        this.error(profile, `unknown profile "${profile.value}" for client ${cidr.value}`);
        continue;
      }
      const intercept = this.readInterceptMode(element.get('intercept', true) as Node | undefined);
      clients.push({ cidr: cidr.value, profile: profile.value, line, ...(intercept === undefined ? {} : { intercept }) });
    }
    return clients;
  }

  /** `intercept: always | learned | never`; undefined when absent or wrong (wrong is an error). */
  private readInterceptMode(node: Node | undefined): InterceptMode | undefined {
    if (node === undefined) return undefined;
    const value = isScalar(node) ? node.value : undefined;
    if (typeof value === 'string' && (INTERCEPT_MODES as readonly string[]).includes(value)) return value as InterceptMode;
    this.error(node, `intercept must be one of ${INTERCEPT_MODES.join(', ')}, not "${String(value)}"`);
    return undefined;
  }

  private readProxyAuth(pair: Pair | undefined, profileIds: ReadonlySet<string>): PolicyConfig['proxyAuth'] {
    if (!pair) return { usersFile: null, profiles: [] };
    if (!isMap(pair.value)) {
      this.error(pair.value as Node, 'proxy_auth must be a mapping with users_file and profiles');
      return { usersFile: null, profiles: [] };
    }
    const usersFileNode = pair.value.get('users_file', true);
    const usersFile = isScalar(usersFileNode) && typeof usersFileNode.value === 'string' ? usersFileNode.value : null;
    if (usersFile === null) this.error(pair.value as Node, 'proxy_auth needs "users_file"');
    const profiles: Located<[string, string]>[] = [];
    const map = pair.value.get('profiles', true);
    if (isMap(map)) {
      for (const item of map.items) {
        const user = isScalar(item.key) ? String(item.key.value) : '';
        const profile = isScalar(item.value) ? String(item.value.value) : '';
        if (!profileIds.has(profile)) this.error(item.value as Node, `unknown profile "${profile}" for user "${user}"`);
        else profiles.push({ value: [user, profile], line: this.lineOf(item.key as Node) });
      }
    } else if (map !== undefined) {
      this.error(map as Node, 'proxy_auth.profiles must map user names to profiles');
    }
    return { usersFile, profiles };
  }
}
