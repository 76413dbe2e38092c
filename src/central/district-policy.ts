import type { SqlConnection } from '../storage/sql.js';
import { createHash } from 'node:crypto';
import { domainToASCII } from 'node:url';
import { parseUrlRule } from '../policy/urls.js';
import type { AllowScope, OverlayAllowUrl, PolicyOverlay } from '../rules/overlay.js';
import type { PolicySigner } from './signing-key.js';
import { StoreError } from './store.js';

/**
 * The district's policy overlay, kept at the collector: rules added in the dashboard (or
 * by approving a review), each change a new version. Gateways fetch it signed through
 * `GET /api/v1/policy` and apply it on top of their local rules (src/rules/overlay.ts is
 * the format). A rule applies to every school, or to one.
 */
export type RuleAction = 'allow' | 'block';
/** `url`: one page or one path of a site (allow rules only; `match` says which). */
export type RuleKind = 'domain' | 'keyword' | 'url';
export type UrlMatch = 'page' | 'path';

export interface PolicyRuleInput {
  readonly action: RuleAction;
  readonly kind: RuleKind;
  readonly value: string;
  /** For kind `url`: an exact page (host and path, any query) or a path and everything under it. */
  readonly match?: UrlMatch | null;
  /**
   * For an allow: keyword rules still apply to what the allow does not name (a query, a
   * deeper path). New allows default to true; a trusted site has false.
   */
  readonly keywords?: boolean;
  /** Exactly one of profile and category: the rule applies to a profile, or extends a category. */
  readonly profile: string | null;
  readonly category: string | null;
  /** null: every school. */
  readonly school: string | null;
  readonly note: string;
  /** The review request this rule came from, if any. */
  readonly reviewSeq?: number | null;
}

export interface PolicyRule extends PolicyRuleInput {
  readonly id: number;
  readonly match: UrlMatch | null;
  readonly keywords: boolean;
  readonly reviewSeq: number | null;
  readonly createdBy: string;
  readonly createdAt: number;
}

export interface PolicyVersion {
  readonly version: number;
  readonly at: number;
  readonly actor: string;
  readonly summary: string;
}

/** What a gateway downloads: the exact bytes signed, their signature and the ETag. */
export interface SignedOverlay {
  readonly version: number;
  readonly body: Buffer;
  readonly signature: string;
  readonly etag: string;
}

export type AuditSink = (actor: string, action: string, target: string, before: unknown, after: unknown) => void;

interface RuleRow {
  id: number;
  action: RuleAction;
  kind: RuleKind;
  value: string;
  match: UrlMatch | null;
  keywords: number;
  profile: string | null;
  category: string | null;
  school: string | null;
  note: string;
  review_seq: number | null;
  created_by: string;
  created_at: number;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const LABEL_RE = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;
const MAX_KEYWORD = 100;
const MAX_NOTE = 500;

/**
 * A domain as staff paste it ("https://Example.com/path", "*.example.com.", "bóng đá.vn")
 * in the form gateways match: ASCII (punycode), lower case, no scheme, path or dots at
 * the ends. Throws StoreError when nothing usable remains.
 */
export function normaliseDomain(input: string): string {
  let value = input.trim().toLowerCase();
  const scheme = value.indexOf('://');
  if (scheme !== -1) value = value.slice(scheme + 3);
  value = value
    .replace(/[/?#].*$/, '')
    .replace(/:\d+$/, '')
    .replace(/^\*?\.+/, '')
    .replace(/\.+$/, '');
  const ascii = value === '' ? '' : domainToASCII(value);
  if (ascii === '' || ascii.length > 253 || !ascii.split('.').every((label) => LABEL_RE.test(label))) {
    throw new StoreError('LACHAN_BAD_RULE', `"${input.trim()}" is not a domain name`);
  }
  return ascii;
}

/**
 * A page or path as staff paste it ("https://Báo.vn/bài-học?x=1") in the form gateways
 * match: `host/path`, host in ASCII, path percent-encoded as the proxy sees requests,
 * no query. Throws StoreError when it is not one.
 */
export function normaliseUrl(input: string): string {
  const parsed = parseUrlRule(input.trim().replace(/[?#].*$/, ''));
  if (typeof parsed === 'string') throw new StoreError('LACHAN_BAD_RULE', `"${input.trim()}": ${parsed}`);
  return `${normaliseDomain(parsed.host)}${parsed.path}`;
}

/** The page or the path (its folder, ending in `/`) of a request, as an allow names it. */
export function scopedValue(host: string, path: string, scope: AllowScope): { kind: RuleKind; value: string; match: UrlMatch | null } {
  if (scope === 'site') return { kind: 'domain', value: host, match: null };
  if (scope === 'page') return { kind: 'url', value: `${host}${path}`, match: 'page' };
  return { kind: 'url', value: `${host}${path.slice(0, path.lastIndexOf('/') + 1) || '/'}`, match: 'path' };
}

function checkInput(input: PolicyRuleInput): PolicyRuleInput {
  if (input.action !== 'allow' && input.action !== 'block') throw new StoreError('LACHAN_BAD_RULE', 'action: allow or block');
  if (input.kind !== 'domain' && input.kind !== 'keyword' && input.kind !== 'url') throw new StoreError('LACHAN_BAD_RULE', 'kind: domain, url or keyword');
  if (input.kind === 'url' && input.action !== 'allow') throw new StoreError('LACHAN_BAD_RULE', 'a page or path rule is an allow');
  if (input.kind === 'url' && input.match !== 'page' && input.match !== 'path') throw new StoreError('LACHAN_BAD_RULE', 'match: page or path');
  if ((input.profile === null) === (input.category === null)) throw new StoreError('LACHAN_BAD_RULE', 'a rule names a profile or a category (one of them)');
  for (const [field, name] of [
    ['profile', input.profile],
    ['category', input.category],
  ] as const) {
    if (name !== null && !NAME_RE.test(name)) throw new StoreError('LACHAN_BAD_RULE', `${field}: "${name}" is not a profile or category name`);
  }
  if (input.action === 'allow' && (input.kind === 'keyword' || input.profile === null)) {
    throw new StoreError('LACHAN_BAD_RULE', 'an allow rule is a site, page or path for a profile');
  }
  let value: string;
  if (input.kind === 'domain') {
    value = normaliseDomain(input.value);
  } else if (input.kind === 'url') {
    value = normaliseUrl(input.value);
  } else {
    value = input.value.normalize('NFC').trim().replace(/\s+/g, ' ');
    if (value === '' || value.length > MAX_KEYWORD) throw new StoreError('LACHAN_BAD_RULE', `a keyword is 1–${MAX_KEYWORD} characters`);
  }
  const match = input.kind === 'url' ? input.match! : null;
  const keywords = input.action === 'allow' && (input.keywords ?? true);
  return { ...input, value, match, keywords, note: input.note.trim().slice(0, MAX_NOTE) };
}

function toRule(row: RuleRow): PolicyRule {
  return {
    id: row.id,
    action: row.action,
    kind: row.kind,
    value: row.value,
    match: row.match,
    keywords: row.keywords === 1,
    profile: row.profile,
    category: row.category,
    school: row.school,
    note: row.note,
    reviewSeq: row.review_seq,
    createdBy: row.created_by,
    createdAt: row.created_at,
  };
}

/** One line a person reads in the version history (Vietnamese, for the dashboard). */
export function describeRule(rule: PolicyRuleInput): string {
  const verb = rule.action === 'allow' ? 'Cho phép' : 'Chặn';
  const what = rule.kind === 'keyword' ? `từ khóa "${rule.value}"` : `${SCOPE_WORDS[scopeOf(rule)]} ${rule.value}`;
  const target = rule.profile !== null ? `nhóm ${rule.profile}` : `danh mục ${rule.category}`;
  const where = rule.school === null ? 'mọi trường' : `trường ${rule.school}`;
  const keywords = rule.action !== 'allow' ? '' : rule.keywords === false ? ' (không xét từ khóa)' : ' (từ khóa vẫn chặn)';
  return `${verb} ${what}${keywords} — ${target}, ${where}`;
}

/** How much a domain or url rule covers. */
export function scopeOf(rule: Pick<PolicyRuleInput, 'kind' | 'match'>): AllowScope {
  return rule.kind === 'url' ? (rule.match ?? 'page') : 'site';
}

/** Vietnamese for the three scopes of an allow, as the dashboard and history show them. */
export const SCOPE_WORDS: Readonly<Record<AllowScope, string>> = { page: 'trang', path: 'thư mục', site: 'cả trang web' };

export class DistrictPolicy {
  readonly #db: SqlConnection;
  readonly #audit: AuditSink;
  readonly #q;
  readonly #signed = new Map<string, SignedOverlay>();

  constructor(db: SqlConnection, audit: AuditSink) {
    this.#db = db;
    this.#audit = audit;
    this.#q = {
      insert: db.prepare<unknown[], { id: number }>(
        'INSERT INTO policy_rules (action, kind, value, match, keywords, profile, category, school, note, review_seq, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id',
      ),
      same: db.prepare<[string, string, string, string | null, number, string | null, string | null, string | null], RuleRow>(
        'SELECT * FROM policy_rules WHERE removed_at IS NULL AND action = ? AND kind = ? AND value = ? AND match IS NOT DISTINCT FROM ? AND keywords = ? AND profile IS NOT DISTINCT FROM ? AND category IS NOT DISTINCT FROM ? AND school IS NOT DISTINCT FROM ?',
      ),
      rule: db.prepare<[number], RuleRow & { removed_at: number | null }>('SELECT * FROM policy_rules WHERE id = ?'),
      remove: db.prepare('UPDATE policy_rules SET removed_at = ?, removed_by = ? WHERE id = ? AND removed_at IS NULL'),
      live: db.prepare<[], RuleRow>('SELECT * FROM policy_rules WHERE removed_at IS NULL ORDER BY id'),
      liveFor: db.prepare<[string], RuleRow>('SELECT * FROM policy_rules WHERE removed_at IS NULL AND (school IS NULL OR school = ?) ORDER BY id'),
      version: db.prepare<[], { version: number | null }>('SELECT max(version) AS version FROM policy_versions'),
      addVersion: db.prepare<[number, string, string], { version: number }>(
        'INSERT INTO policy_versions (at, actor, summary) VALUES (?, ?, ?) RETURNING version',
      ),
      versions: db.prepare<[number], PolicyVersion>('SELECT version, at, actor, summary FROM policy_versions ORDER BY version DESC LIMIT ?'),
      school: db.prepare<[string], { id: string }>('SELECT id FROM schools WHERE id = ? AND revoked_at IS NULL'),
      contact: db.prepare(
        'INSERT INTO school_contact (school, last_at) VALUES (?, ?) ON CONFLICT (school) DO UPDATE SET last_at = CASE WHEN excluded.last_at > school_contact.last_at THEN excluded.last_at ELSE school_contact.last_at END',
      ),
    };
  }

  /** The version gateways see now (0 before the first change). */
  version(): number {
    return this.#q.version.get()?.version ?? 0;
  }

  rules(): PolicyRule[] {
    return this.#q.live.all().map(toRule);
  }

  rule(id: number): PolicyRule | null {
    const row = this.#q.rule.get(id);
    return row === undefined || row.removed_at !== null ? null : toRule(row);
  }

  versions(limit = 100): PolicyVersion[] {
    return this.#q.versions.all(limit);
  }

  /**
   * Adds a rule and makes a new version, in one transaction with its audit entry. An
   * identical live rule is returned as it is (two students asking for the same page make
   * one rule, not two versions).
   */
  addRule(actor: string, input: PolicyRuleInput): { rule: PolicyRule; created: boolean } {
    const checked = checkInput(input);
    return this.#db.transaction(() => {
      const keywords = checked.keywords === true ? 1 : 0;
      const existing = this.#q.same.get(
        checked.action,
        checked.kind,
        checked.value,
        checked.match ?? null,
        keywords,
        checked.profile,
        checked.category,
        checked.school,
      );
      if (existing !== undefined) return { rule: toRule(existing), created: false };
      if (checked.school !== null && this.#q.school.get(checked.school) === undefined) {
        throw new StoreError('LACHAN_BAD_RULE', `no active school with id ${checked.school}`);
      }
      const now = Date.now();
      const inserted = this.#q.insert.get(
        checked.action,
        checked.kind,
        checked.value,
        checked.match ?? null,
        keywords,
        checked.profile,
        checked.category,
        checked.school,
        checked.note,
        checked.reviewSeq ?? null,
        actor,
        now,
      );
      const rule = this.rule(Number(inserted!.id))!;
      const version = this.#q.addVersion.get(now, actor, describeRule(rule))!.version;
      this.#audit(actor, 'policy.rule.add', `policy-rule:${rule.id}`, null, { ...rule, version });
      return { rule, created: true };
    })();
  }

  /** Removes a live rule (kept as history) and makes a new version; false when there is no such live rule. */
  removeRule(actor: string, id: number): boolean {
    return this.#db.transaction(() => {
      const rule = this.rule(id);
      if (rule === null) return false;
      const now = Date.now();
      this.#q.remove.run(now, actor, id);
      const version = this.#q.addVersion.get(now, actor, `Bỏ: ${describeRule(rule)}`)!.version;
      this.#audit(actor, 'policy.rule.remove', `policy-rule:${id}`, rule, { removed: true, version });
      return true;
    })();
  }

  /** The overlay one school's gateway applies: the district-wide rules and its own. */
  overlayFor(school: string): PolicyOverlay {
    const profiles: Record<string, { allow_domains: string[]; block_domains: string[]; block_keywords: string[]; allow_urls: OverlayAllowUrl[] }> = {};
    const categories: Record<string, { block_domains: string[]; block_keywords: string[] }> = {};
    for (const row of this.#q.liveFor.all(school)) {
      if (row.profile !== null) {
        const lists = (profiles[row.profile] ??= { allow_domains: [], block_domains: [], block_keywords: [], allow_urls: [] });
        if (row.kind === 'keyword') lists.block_keywords.push(row.value);
        else if (row.action === 'block') lists.block_domains.push(row.value);
        // A site allow that switches keywords off keeps its older, trusted form.
        else if (row.kind === 'domain' && row.keywords === 0) lists.allow_domains.push(row.value);
        else lists.allow_urls.push({ scope: scopeOf(row), url: row.value, keywords: row.keywords === 1 });
      } else if (row.category !== null) {
        const lists = (categories[row.category] ??= { block_domains: [], block_keywords: [] });
        (row.kind === 'keyword' ? lists.block_keywords : lists.block_domains).push(row.value);
      }
    }
    // The school is inside the signed bytes: an overlay made for one school (with its own
    // allow rules) cannot be replayed to another.
    const overlay = { version: this.version(), school, profiles, categories };
    return overlay;
  }

  /**
   * The overlay for a school, serialised once and signed, cached until the next version.
   * Also counts as the school's contact: its gateway asks every minute, so the dashboard's
   * "silent schools" sees a gateway that is up but has nothing to report.
   */
  signedOverlayFor(school: string, signer: PolicySigner): SignedOverlay {
    this.#q.contact.run(school, Date.now());
    const version = this.version();
    const cached = this.#signed.get(school);
    if (cached !== undefined && cached.version === version) return cached;
    const body = Buffer.from(JSON.stringify(this.overlayFor(school)));
    const etag = `"v${version}-${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`;
    const signed = { version, body, signature: signer.sign(body), etag };
    this.#signed.set(school, signed);
    return signed;
  }
}
