import type { SqlConnection } from '../storage/sql.js';
import type { ReviewKind, WireReviewRequest } from '../events/review-wire.js';
import type { Principal } from './accounts.js';
import type { AllowScope } from '../rules/overlay.js';
import { scopedValue, type AuditSink, type DistrictPolicy, type PolicyRule } from './district-policy.js';
import { StoreError } from './store.js';

/**
 * The review queue: requests gateways forward from block pages ("please review this
 * block") and report forms ("this page should be blocked"), and what the district did
 * with each. A decision that changes the policy goes through DistrictPolicy, in the same
 * transaction, so a request is never marked approved without its rule.
 */
export type ReviewStatus = 'open' | 'approved' | 'rejected' | 'blocked';

export interface ReviewRequestRow {
  readonly seq: number;
  readonly school: string;
  readonly schoolName: string | null;
  readonly id: string;
  readonly kind: ReviewKind;
  readonly time: number;
  readonly receivedAt: number;
  readonly host: string;
  readonly path: string;
  readonly category: string | null;
  readonly profile: string;
  readonly eventId: string | null;
  readonly reference: string | null;
  readonly note: string;
  readonly status: ReviewStatus;
  readonly decidedBy: string | null;
  readonly decidedAt: number | null;
  readonly decisionNote: string | null;
  readonly ruleId: number | null;
  /**
   * How many requests this row stands for: identical open requests (same school, kind,
   * page and profile: a class asking for one lesson) show once and are decided together.
   */
  readonly count: number;
  /** The distinct notes of those requests, newest first. */
  readonly notes: readonly string[];
}

export type Scope = 'school' | 'all';

/**
 * approve: allow for a profile the page asked about, its path or the whole site (`match`,
 * the page when not said), with keyword rules still applying to the rest of the URL
 * unless `keywords` is false; reject: with a reason; block: the reported host in a category.
 */
export type ReviewDecision =
  | {
      readonly action: 'approve';
      readonly profile: string;
      readonly scope: Scope;
      readonly match?: AllowScope;
      readonly keywords?: boolean;
      readonly note?: string;
    }
  | { readonly action: 'reject'; readonly reason: string }
  | { readonly action: 'block'; readonly category: string; readonly scope: Scope; readonly note?: string };

export interface ReviewListFilter {
  readonly status: 'open' | 'decided' | 'all';
  /** Limit to one school (school-it users always are). */
  readonly school: string | null;
  readonly limit: number;
}

export class ReviewError extends StoreError {
  readonly status: number;
  constructor(status: number, code: string, message: string) {
    super(code, message);
    this.status = status;
  }
}

interface Row {
  seq: number;
  school: string;
  school_name: string | null;
  id: string;
  kind: ReviewKind;
  time: number;
  received_at: number;
  host: string;
  path: string;
  category: string | null;
  profile: string;
  event_id: string | null;
  reference: string | null;
  note: string;
  status: ReviewStatus;
  decided_by: string | null;
  decided_at: number | null;
  decision_note: string | null;
  rule_id: number | null;
}

function toRequest(row: Row): ReviewRequestRow {
  return {
    seq: row.seq,
    school: row.school,
    schoolName: row.school_name,
    id: row.id,
    kind: row.kind,
    time: row.time,
    receivedAt: row.received_at,
    host: row.host,
    path: row.path,
    category: row.category,
    profile: row.profile,
    eventId: row.event_id,
    reference: row.reference,
    note: row.note,
    status: row.status,
    decidedBy: row.decided_by,
    decidedAt: row.decided_at,
    decisionNote: row.decision_note,
    ruleId: row.rule_id,
    count: 1,
    notes: row.note === '' ? [] : [row.note],
  };
}

/** Folds identical open requests (already newest first) into their newest one. */
function mergeIdentical(requests: readonly ReviewRequestRow[]): ReviewRequestRow[] {
  const merged = new Map<string, ReviewRequestRow>();
  const out: ReviewRequestRow[] = [];
  for (const r of requests) {
    if (r.status !== 'open') {
      out.push(r);
      continue;
    }
    const key = [r.school, r.kind, r.host, r.path, r.profile].join('\n');
    const first = merged.get(key);
    if (first === undefined) {
      const row = { ...r };
      merged.set(key, row);
      out.push(row);
      continue;
    }
    const notes = first.notes.includes(r.note) || r.note === '' ? first.notes : [...first.notes, r.note];
    const updated = { ...first, count: first.count + 1, notes };
    merged.set(key, updated);
    out[out.indexOf(first)] = updated;
  }
  return out;
}

const SELECT = 'SELECT r.*, s.name AS school_name FROM review_requests r LEFT JOIN schools s ON s.id = r.school';

export class ReviewQueue {
  readonly #db: SqlConnection;
  readonly #policy: DistrictPolicy;
  readonly #audit: AuditSink;
  readonly #q;

  constructor(db: SqlConnection, policy: DistrictPolicy, audit: AuditSink) {
    this.#db = db;
    this.#policy = policy;
    this.#audit = audit;
    this.#q = {
      insert: db.prepare(
        `INSERT INTO review_requests (school, id, kind, time, received_at, host, path, category, profile, event_id, reference, note, client)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (school, id) DO NOTHING`,
      ),
      get: db.prepare<[number], Row>(`${SELECT} WHERE r.seq = ?`),
      open: db.prepare<[number], Row>(`${SELECT} WHERE r.status = 'open' ORDER BY r.time DESC, r.seq DESC LIMIT ?`),
      openSchool: db.prepare<[string, number], Row>(`${SELECT} WHERE r.status = 'open' AND r.school = ? ORDER BY r.time DESC, r.seq DESC LIMIT ?`),
      decided: db.prepare<[number], Row>(`${SELECT} WHERE r.status <> 'open' ORDER BY r.decided_at DESC, r.seq DESC LIMIT ?`),
      decidedSchool: db.prepare<[string, number], Row>(`${SELECT} WHERE r.status <> 'open' AND r.school = ? ORDER BY r.decided_at DESC, r.seq DESC LIMIT ?`),
      all: db.prepare<[number], Row>(`${SELECT} ORDER BY r.time DESC, r.seq DESC LIMIT ?`),
      allSchool: db.prepare<[string, number], Row>(`${SELECT} WHERE r.school = ? ORDER BY r.time DESC, r.seq DESC LIMIT ?`),
      openCount: db.prepare<[], { n: number }>(
        "SELECT count(*) AS n FROM (SELECT DISTINCT school, kind, host, path, profile FROM review_requests WHERE status = 'open') AS requests",
      ),
      openCountSchool: db.prepare<[string], { n: number }>(
        "SELECT count(*) AS n FROM (SELECT DISTINCT kind, host, path, profile FROM review_requests WHERE status = 'open' AND school = ?) AS requests",
      ),
      decideIdentical: db.prepare(
        "UPDATE review_requests SET status = ?, decided_by = ?, decided_at = ?, decision_note = ?, rule_id = ? WHERE status = 'open' AND school = ? AND kind = ? AND host = ? AND path = ? AND profile = ?",
      ),
      expire: db.prepare("DELETE FROM review_requests WHERE status <> 'open' AND decided_at < ?"),
      decide: db.prepare(
        "UPDATE review_requests SET status = ?, decided_by = ?, decided_at = ?, decision_note = ?, rule_id = ? WHERE seq = ? AND status = 'open'",
      ),
      profiles: db.prepare<[], { profile: string }>(
        'SELECT DISTINCT profile FROM review_requests UNION SELECT DISTINCT profile FROM policy_rules WHERE profile IS NOT NULL ORDER BY 1',
      ),
      categories: db.prepare<[], { category: string }>(
        'SELECT DISTINCT category FROM review_requests WHERE category IS NOT NULL UNION SELECT DISTINCT category FROM policy_rules WHERE category IS NOT NULL ORDER BY 1',
      ),
    };
  }

  /** Stores each request once per (school, id); acknowledges every id stored now or held already. */
  ingest(school: string, requests: readonly WireReviewRequest[], receivedAt: number): { acked: string[]; stored: number } {
    return this.#db.transaction(() => {
      let stored = 0;
      for (const r of requests) {
        stored += this.#q.insert.run(
          school,
          r.id,
          r.kind,
          r.time,
          receivedAt,
          r.host,
          r.path,
          r.category,
          r.profile,
          r.event,
          r.reference,
          r.note,
          r.client,
        ).changes;
      }
      return { acked: requests.map((r) => r.id), stored };
    })();
  }

  /** Deletes decided requests older than `before` (the rules they made stay); an open one waits however old. */
  expire(before: number): number {
    return this.#q.expire.run(before).changes;
  }

  get(seq: number): ReviewRequestRow | null {
    const row = this.#q.get.get(seq);
    return row === undefined ? null : toRequest(row);
  }

  list(filter: ReviewListFilter): ReviewRequestRow[] {
    const { school, limit } = filter;
    const rows =
      filter.status === 'open'
        ? school === null
          ? this.#q.open.all(limit)
          : this.#q.openSchool.all(school, limit)
        : filter.status === 'decided'
          ? school === null
            ? this.#q.decided.all(limit)
            : this.#q.decidedSchool.all(school, limit)
          : school === null
            ? this.#q.all.all(limit)
            : this.#q.allSchool.all(school, limit);
    return mergeIdentical(rows.map(toRequest));
  }

  openCount(school: string | null): number {
    return (school === null ? this.#q.openCount.get() : this.#q.openCountSchool.get(school))?.n ?? 0;
  }

  /** Profile and category names seen in requests and rules (for the dashboard's choices). */
  knownNames(): { profiles: string[]; categories: string[] } {
    return { profiles: this.#q.profiles.all().map((r) => r.profile), categories: this.#q.categories.all().map((r) => r.category) };
  }

  /**
   * Decides an open request. A school-it user may decide only its school's requests,
   * and only for its school; a viewer decides nothing. Returns the request as decided
   * and the rule it made, if any.
   */
  decide(who: Principal, seq: number, decision: ReviewDecision): { request: ReviewRequestRow; rule: PolicyRule | null } {
    if (who.role === 'viewer') throw new ReviewError(403, 'forbidden', 'viewers cannot decide requests');
    return this.#db.transaction(() => {
      const request = this.get(seq);
      if (request === null) throw new ReviewError(404, 'not_found', `no review request ${seq}`);
      if (who.school !== null && request.school !== who.school) throw new ReviewError(403, 'forbidden', 'school: outside your school');
      if (request.status !== 'open') throw new ReviewError(409, 'already_decided', `request ${seq} was already decided (${request.status})`);
      if (who.school !== null && decision.action !== 'reject' && decision.scope === 'all') {
        throw new ReviewError(403, 'forbidden', "scope: a school's IT staff decide for their school only");
      }
      let rule: PolicyRule | null = null;
      let status: ReviewStatus;
      let note: string;
      if (decision.action === 'reject') {
        note = decision.reason.trim();
        if (note === '') throw new ReviewError(400, 'bad_request', 'reason: say why the request is rejected');
        status = 'rejected';
      } else if (decision.action === 'approve') {
        if (request.kind !== 'review') throw new ReviewError(400, 'bad_request', 'a report asks for a block: block it or reject it');
        note = decision.note?.trim() ?? '';
        rule = this.#policy.addRule(who.name, {
          action: 'allow',
          ...scopedValue(request.host, request.path, decision.match ?? 'page'),
          keywords: decision.keywords ?? true,
          profile: decision.profile,
          category: null,
          school: decision.scope === 'school' ? request.school : null,
          note: note || `Đề nghị #${seq}`,
          reviewSeq: seq,
        }).rule;
        status = 'approved';
      } else {
        note = decision.note?.trim() ?? '';
        rule = this.#policy.addRule(who.name, {
          action: 'block',
          kind: 'domain',
          value: request.host,
          profile: null,
          category: decision.category,
          school: decision.scope === 'school' ? request.school : null,
          note: note || `Báo cáo #${seq}`,
          reviewSeq: seq,
        }).rule;
        status = 'blocked';
      }
      const now = Date.now();
      this.#q.decide.run(status, who.name, now, note === '' ? null : note, rule?.id ?? null, seq);
      // The same page asked again by others at the school is answered by this decision too.
      const identical = this.#q.decideIdentical.run(
        status,
        who.name,
        now,
        note === '' ? null : note,
        rule?.id ?? null,
        request.school,
        request.kind,
        request.host,
        request.path,
        request.profile,
      ).changes;
      const decided = this.get(seq)!;
      this.#audit(
        who.name,
        `review.${decision.action}`,
        `review:${seq}`,
        { status: request.status },
        { status, note: decided.decisionNote, rule: rule?.id ?? null, ...(identical > 0 ? { identical } : {}) },
      );
      return { request: decided, rule };
    })();
  }
}
