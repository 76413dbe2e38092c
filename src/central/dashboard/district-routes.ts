import type { IncomingMessage, ServerResponse } from 'node:http';
import { SHIPPED_CATEGORIES, SHIPPED_PROFILES } from '../../util/labels.js';
import type { Principal, Session } from '../accounts.js';
import { readBody } from '../body.js';
import type { District } from '../district.js';
import type { PolicyRuleInput } from '../district-policy.js';
import { ALLOW_SCOPES, type AllowScope } from '../../rules/overlay.js';
import { HttpError, sendJson } from '../http.js';
import { ReviewError, type ReviewDecision, type Scope } from '../reviews.js';
import { StoreError, type CentralStore } from '../store.js';
import { policyPage, reviewsPage } from './district-pages.js';
import { errorPage } from './pages.js';
import { FORM_LIMITS, redirect, sameSecret, sendHtml } from './respond.js';

/**
 * The dashboard side of the district's work: the review queue and the policy overlay,
 * as pages (plain HTML forms that post and come back with a 303) and as JSON for
 * scripts (the admin bearer token, or a session with its CSRF token in `x-csrf-token`).
 *
 *   GET  /reviews, /policy                         pages (session)
 *   GET  /api/v1/reviews?status=open|decided|all   the queue (school-it: its school)
 *   POST /api/v1/reviews/{seq}                     action=approve (profile, scope=school|all,
 *                                                    match=page|path|site (page), keywords=on|off (on))
 *                                                  | reject (reason) | block (category, scope)
 *   GET  /api/v1/district-policy                   version, live rules, history, public key
 *   POST /api/v1/district-policy/rules             admin: action, kind, value, profile|category, school, note
 *   POST /api/v1/district-policy/rules/{id}/remove admin
 */
export interface DistrictRoutesDeps {
  readonly district: District;
  readonly store: CentralStore;
  /** The session behind a request's cookie, or null. */
  readonly session: (request: IncomingMessage) => Session | null;
}

type Reader = (request: IncomingMessage) => Principal;

/** A submitted form or JSON object, read the same way. */
interface Fields {
  get(name: string): string | null;
}

const REVIEW_ACTION = /^\/api\/v1\/reviews\/(\d{1,12})$/;
const REMOVE_RULE = /^\/api\/v1\/district-policy\/rules\/(\d{1,12})\/remove$/;

function names(shipped: readonly string[], seen: readonly string[]): string[] {
  return [...new Set([...shipped, ...seen])];
}

function listStatus(value: string | null): 'open' | 'decided' | 'all' {
  if (value === null || value === '' || value === 'open') return 'open';
  if (value === 'decided' || value === 'all') return value;
  throw new HttpError(400, 'bad_request', 'status: open, decided or all');
}

function scopeOf(fields: Fields): Scope {
  const scope = fields.get('scope') ?? 'school';
  if (scope !== 'school' && scope !== 'all') throw new HttpError(400, 'bad_request', 'scope: school or all');
  return scope;
}

/** How much an approval opens; the narrowest (the page) unless said. */
function matchOf(fields: Fields): AllowScope {
  const match = fields.get('match') || 'page';
  if (!ALLOW_SCOPES.includes(match as AllowScope)) throw new HttpError(400, 'bad_request', 'match: page, path or site');
  return match as AllowScope;
}

/** Whether keyword rules still apply inside an allow: yes unless said `off` (`false` in JSON). */
function keywordsOf(fields: Fields): boolean {
  const keywords = fields.get('keywords') || 'on';
  if (keywords === 'on' || keywords === 'true') return true;
  if (keywords === 'off' || keywords === 'false') return false;
  throw new HttpError(400, 'bad_request', 'keywords: on or off');
}

function decisionOf(fields: Fields): ReviewDecision {
  const action = fields.get('action');
  if (action === 'approve') {
    const profile = fields.get('profile') ?? '';
    if (profile === '') throw new HttpError(400, 'bad_request', 'profile: which profile may open the page');
    return { action, profile, scope: scopeOf(fields), match: matchOf(fields), keywords: keywordsOf(fields), note: fields.get('note') ?? undefined };
  }
  if (action === 'reject') return { action, reason: fields.get('reason') ?? '' };
  if (action === 'block') {
    const category = fields.get('category') ?? '';
    if (category === '') throw new HttpError(400, 'bad_request', 'category: which category the page belongs to');
    return { action, category, scope: scopeOf(fields), note: fields.get('note') ?? undefined };
  }
  throw new HttpError(400, 'bad_request', 'action: approve, reject or block');
}

function ruleInputOf(fields: Fields): PolicyRuleInput {
  const action = fields.get('action');
  const kind = fields.get('kind') ?? 'domain';
  if (action !== 'allow' && action !== 'block') throw new HttpError(400, 'bad_request', 'action: allow or block');
  if (kind !== 'domain' && kind !== 'keyword' && kind !== 'page' && kind !== 'path')
    throw new HttpError(400, 'bad_request', 'kind: domain, page, path or keyword');
  return {
    action,
    ...(kind === 'page' || kind === 'path' ? { kind: 'url' as const, match: kind } : { kind }),
    keywords: keywordsOf(fields),
    value: fields.get('value') ?? '',
    profile: fields.get('profile') || null,
    category: fields.get('category') || null,
    school: fields.get('school') || null,
    note: fields.get('note') ?? '',
  };
}

/** Vietnamese for the errors a person meets on a form (the JSON API keeps the English message). */
function formMessage(error: unknown): { status: number; message: string } {
  if (error instanceof ReviewError) {
    const text: Record<string, string> = {
      not_found: 'Không tìm thấy đề nghị này.',
      already_decided: 'Đề nghị này đã được xử lý rồi.',
      forbidden: 'Bạn không có quyền xử lý đề nghị này (cán bộ CNTT trường chỉ xử lý cho trường mình).',
      bad_request: error.message.startsWith('reason') ? 'Hãy ghi lý do từ chối.' : error.message,
    };
    return { status: error.status, message: text[error.code] ?? error.message };
  }
  if (error instanceof HttpError) return { status: error.status, message: error.status === 403 ? 'Bạn không có quyền thực hiện thao tác này.' : error.message };
  if (error instanceof StoreError) return { status: 400, message: `Không hợp lệ: ${error.message}` };
  throw error;
}

export function createDistrictRoutes(
  deps: DistrictRoutesDeps,
): (request: IncomingMessage, response: ServerResponse, url: URL, reader: Reader) => Promise<boolean> {
  const { district, store } = deps;

  /**
   * Authenticates a state-changing request and reads its fields. Cookie-borne requests
   * carry the CSRF token (form field or header); a bearer token cannot be forged
   * cross-site, so it needs none.
   */
  async function mutation(request: IncomingMessage, reader: Reader): Promise<{ who: Principal; fields: Fields; isForm: boolean }> {
    const who = reader(request);
    const type = String(request.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim()
      .toLowerCase();
    const isForm = type === 'application/x-www-form-urlencoded';
    const text = (await readBody(request, FORM_LIMITS)).toString('utf8');
    let fields: Fields;
    if (isForm) {
      fields = new URLSearchParams(text);
    } else {
      let parsed: unknown;
      try {
        parsed = text === '' ? {} : JSON.parse(text);
      } catch {
        throw new HttpError(400, 'bad_request', 'body: a form or a JSON object');
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new HttpError(400, 'bad_request', 'body: a JSON object');
      const record = parsed as Record<string, unknown>;
      fields = {
        get: (name) =>
          typeof record[name] === 'string'
            ? (record[name] as string)
            : typeof record[name] === 'number' || typeof record[name] === 'boolean'
              ? String(record[name])
              : null,
      };
    }
    if (request.headers.authorization === undefined) {
      const current = deps.session(request);
      if (current === null) throw new HttpError(401, 'unauthorized', 'log in first');
      const token = (request.headers['x-csrf-token'] as string | undefined) ?? fields.get('csrf');
      if (!sameSecret(token, current.csrf)) throw new HttpError(403, 'csrf', 'missing or wrong CSRF token');
    }
    return { who, fields, isForm };
  }

  /** Runs a change; a form gets a 303 back to its page (or a Vietnamese error page), a script gets JSON. */
  async function change(
    request: IncomingMessage,
    response: ServerResponse,
    reader: Reader,
    page: string,
    run: (who: Principal, fields: Fields) => { notice: string; body: unknown },
  ): Promise<void> {
    const { who, fields, isForm } = await mutation(request, reader);
    let result: { notice: string; body: unknown };
    try {
      result = run(who, fields);
    } catch (error) {
      if (!isForm) {
        if (error instanceof ReviewError) throw new HttpError(error.status, error.code, error.message);
        throw error;
      }
      const { status, message } = formMessage(error);
      return sendHtml(response, status, errorPage(status, message, page));
    }
    if (isForm) return redirect(response, `${page}${page.includes('?') ? '&' : '?'}done=${result.notice}`);
    sendJson(response, 200, result.body);
  }

  function requireAdmin(who: Principal): void {
    if (who.role !== 'admin') throw new HttpError(403, 'forbidden', 'admins only');
  }

  function choices(): { profiles: string[]; categories: string[] } {
    const seen = district.reviews.knownNames();
    return { profiles: names(SHIPPED_PROFILES, seen.profiles), categories: names(SHIPPED_CATEGORIES, seen.categories) };
  }

  return async (request, response, url, reader) => {
    const method = request.method ?? 'GET';
    const path = url.pathname;

    if (path === '/reviews' || path === '/policy') {
      if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'GET', { allow: 'GET' });
      const current = deps.session(request);
      if (current === null) {
        redirect(response, '/login');
        return true;
      }
      const { user, csrf } = current;
      const notice = url.searchParams.get('done');
      if (path === '/reviews') {
        const status = listStatus(url.searchParams.get('status'));
        const requests = district.reviews.list({ status, school: user.school, limit: 500 });
        sendHtml(response, 200, reviewsPage({ user, csrf, status, requests, openCount: district.reviews.openCount(user.school), ...choices(), notice }));
      } else {
        sendHtml(
          response,
          200,
          policyPage({
            user,
            csrf,
            version: district.policy.version(),
            rules: district.policy.rules().filter((r) => user.school === null || r.school === null || r.school === user.school),
            versions: district.policy.versions(50),
            schools: await store.listSchools(),
            ...choices(),
            publicKeyPem: district.signer.publicKeyPem,
            fingerprint: district.signer.fingerprint,
            notice,
          }),
        );
      }
      return true;
    }

    if (path === '/api/v1/reviews' && method === 'GET') {
      const who = reader(request);
      const requested = url.searchParams.get('school');
      if (who.school !== null && requested !== null && requested !== who.school) throw new HttpError(403, 'forbidden', 'school: outside your school');
      const status = listStatus(url.searchParams.get('status'));
      sendJson(response, 200, { requests: district.reviews.list({ status, school: who.school ?? requested, limit: 1000 }) });
      return true;
    }

    const review = REVIEW_ACTION.exec(path);
    if (review !== null) {
      if (method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'POST', { allow: 'POST' });
      const seq = Number(review[1]);
      await change(request, response, reader, '/reviews', (who, fields) => {
        const decided = district.reviews.decide(who, seq, decisionOf(fields));
        return { notice: decided.request.status, body: decided };
      });
      return true;
    }

    if (path === '/api/v1/district-policy') {
      if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'GET', { allow: 'GET' });
      const who = reader(request);
      sendJson(response, 200, {
        version: district.policy.version(),
        rules: district.policy.rules().filter((r) => who.school === null || r.school === null || r.school === who.school),
        versions: district.policy.versions(100),
        publicKey: district.signer.publicKeyPem,
        fingerprint: district.signer.fingerprint,
      });
      return true;
    }

    if (path === '/api/v1/district-policy/rules') {
      if (method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'POST', { allow: 'POST' });
      await change(request, response, reader, '/policy', (who, fields) => {
        requireAdmin(who);
        const added = district.policy.addRule(who.name, ruleInputOf(fields));
        return { notice: added.created ? 'added' : 'exists', body: { ...added, version: district.policy.version() } };
      });
      return true;
    }

    const remove = REMOVE_RULE.exec(path);
    if (remove !== null) {
      if (method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'POST', { allow: 'POST' });
      const id = Number(remove[1]);
      await change(request, response, reader, '/policy', (who) => {
        requireAdmin(who);
        if (!district.policy.removeRule(who.name, id)) throw new HttpError(404, 'not_found', `no live rule ${id}`);
        return { notice: 'removed', body: { removed: id, version: district.policy.version() } };
      });
      return true;
    }
    return false;
  };
}
