import type Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { domainToASCII } from 'node:url';
import type { PolicyOverlay } from '../rules/overlay.js';
import type { PolicySigner } from './signing-key.js';
import { StoreError } from './store.js';

/**
 * The district's policy overlay, kept at the collector: rules added in the dashboard (or
 * by approving a review), each change a new version. Gateways fetch it signed through
 * `GET /api/v1/policy` and apply it on top of their local rules (src/rules/overlay.ts is
 * the format). A rule applies to every school, or to one.
 */
export type RuleAction = 'allow' | 'block';
export type RuleKind = 'domain' | 'keyword';

export interface PolicyRuleInput {
  readonly action: RuleAction;
  readonly kind: RuleKind;
  readonly value: string;
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
  value = value.replace(/[/?#].*$/, '').replace(/:\d+$/, '').replace(/^\*?\.+/, '').replace(/\.+$/, '');
  const ascii = value === '' ? '' : domainToASCII(value);
  if (ascii === '' || ascii.length > 253 || !ascii.split('.').every((label) => LABEL_RE.test(label))) {
    throw new StoreError('LACHAN_BAD_RULE', `"${input.trim()}" is not a domain name`);
  }
  return ascii;
}

function checkInput(input: PolicyRuleInput): PolicyRuleInput {
  if (input.action !== 'allow' && input.action !== 'block') throw new StoreError('LACHAN_BAD_RULE', 'action: allow or block');
  if (input.kind !== 'domain' && input.kind !== 'keyword') throw new StoreError('LACHAN_BAD_RULE', 'kind: domain or keyword');
  if ((input.profile === null) === (input.category === null)) throw new StoreError('LACHAN_BAD_RULE', 'a rule names a profile or a category (one of them)');
  for (const [field, name] of [['profile', input.profile], ['category', input.category]] as const) {
    if (name !== null && !NAME_RE.test(name)) throw new StoreError('LACHAN_BAD_RULE', `${field}: "${name}" is not a profile or category name`);
  }
  if (input.action === 'allow' && (input.kind !== 'domain' || input.profile === null)) {
    throw new StoreError('LACHAN_BAD_RULE', 'an allow rule is a domain for a profile');
  }
  let value: string;
  if (input.kind === 'domain') {
    value = normaliseDomain(input.value);
  } else {
    value = input.value.normalize('NFC').trim().replace(/\s+/g, ' ');
    if (value === '' || value.length > MAX_KEYWORD) throw new StoreError('LACHAN_BAD_RULE', `a keyword is 1–${MAX_KEYWORD} characters`);
  }
  return { ...input, value, note: input.note.trim().slice(0, MAX_NOTE) };
}

function toRule(row: RuleRow): PolicyRule {
  return {
    id: row.id, action: row.action, kind: row.kind, value: row.value, profile: row.profile, category: row.category,
    school: row.school, note: row.note, reviewSeq: row.review_seq, createdBy: row.created_by, createdAt: row.created_at,
  };
}

/** One line a person reads in the version history (Vietnamese, for the dashboard). */
export function describeRule(rule: PolicyRuleInput): string {
  const verb = rule.action === 'allow' ? 'Cho phép' : 'Chặn';
  const what = rule.kind === 'domain' ? rule.value : `từ khóa "${rule.value}"`;
  const target = rule.profile !== null ? `nhóm ${rule.profile}` : `danh mục ${rule.category}`;
  const where = rule.school === null ? 'mọi trường' : `trường ${rule.school}`;
  return `${verb} ${what} — ${target}, ${where}`;
}

export class DistrictPolicy {
  readonly #db: Database.Database;
  readonly #audit: AuditSink;
  readonly #q;
  readonly #signed = new Map<string, SignedOverlay>();

  constructor(db: Database.Database, audit: AuditSink) {
    this.#db = db;
    this.#audit = audit;
    this.#q = {
      insert: db.prepare(
        'INSERT INTO policy_rules (action, kind, value, profile, category, school, note, review_seq, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      same: db.prepare<[string, string, string, string | null, string | null, string | null], RuleRow>(
        'SELECT * FROM policy_rules WHERE removed_at IS NULL AND action = ? AND kind = ? AND value = ? AND profile IS ? AND category IS ? AND school IS ?',
      ),
      rule: db.prepare<[number], RuleRow & { removed_at: number | null }>('SELECT * FROM policy_rules WHERE id = ?'),
      remove: db.prepare('UPDATE policy_rules SET removed_at = ?, removed_by = ? WHERE id = ? AND removed_at IS NULL'),
      live: db.prepare<[], RuleRow>('SELECT * FROM policy_rules WHERE removed_at IS NULL ORDER BY id'),
      liveFor: db.prepare<[string], RuleRow>('SELECT * FROM policy_rules WHERE removed_at IS NULL AND (school IS NULL OR school = ?) ORDER BY id'),
      version: db.prepare<[], { version: number | null }>('SELECT max(version) AS version FROM policy_versions'),
      addVersion: db.prepare('INSERT INTO policy_versions (at, actor, summary) VALUES (?, ?, ?)'),
      versions: db.prepare<[number], PolicyVersion>('SELECT version, at, actor, summary FROM policy_versions ORDER BY version DESC LIMIT ?'),
      school: db.prepare<[string], { id: string }>('SELECT id FROM schools WHERE id = ? AND revoked_at IS NULL'),
      contact: db.prepare('INSERT INTO school_contact (school, last_at) VALUES (?, ?) ON CONFLICT DO UPDATE SET last_at = max(last_at, excluded.last_at)'),
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
      const existing = this.#q.same.get(checked.action, checked.kind, checked.value, checked.profile, checked.category, checked.school);
      if (existing !== undefined) return { rule: toRule(existing), created: false };
      if (checked.school !== null && this.#q.school.get(checked.school) === undefined) {
        throw new StoreError('LACHAN_BAD_RULE', `no active school with id ${checked.school}`);
      }
      const now = Date.now();
      const info = this.#q.insert.run(checked.action, checked.kind, checked.value, checked.profile, checked.category, checked.school, checked.note, checked.reviewSeq ?? null, actor, now);
      const rule = this.rule(Number(info.lastInsertRowid))!;
      const version = Number(this.#q.addVersion.run(now, actor, describeRule(rule)).lastInsertRowid);
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
      const version = Number(this.#q.addVersion.run(now, actor, `Bỏ: ${describeRule(rule)}`).lastInsertRowid);
      this.#audit(actor, 'policy.rule.remove', `policy-rule:${id}`, rule, { removed: true, version });
      return true;
    })();
  }

  /** The overlay one school's gateway applies: the district-wide rules and its own. */
  overlayFor(school: string): PolicyOverlay {
    const profiles: Record<string, { allow_domains: string[]; block_domains: string[]; block_keywords: string[] }> = {};
    const categories: Record<string, { block_domains: string[]; block_keywords: string[] }> = {};
    for (const row of this.#q.liveFor.all(school)) {
      if (row.profile !== null) {
        const lists = (profiles[row.profile] ??= { allow_domains: [], block_domains: [], block_keywords: [] });
        if (row.kind === 'keyword') lists.block_keywords.push(row.value);
        else (row.action === 'allow' ? lists.allow_domains : lists.block_domains).push(row.value);
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
