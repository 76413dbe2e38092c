/**
 * Safeguarding alerts for people (docs/safeguarding.md §3):
 *
 *   GET  /api/v1/alerts                  {"alerts":[…]} newest first. Query: school, status,
 *                                        limit (1–1000, default 200).
 *   POST /api/v1/alerts/{school}/{ref}   JSON {"status":"acknowledged"|"closed","note":…};
 *                                        a session sends its CSRF token in X-CSRF-Token.
 *   GET  /alerts                         the counsellor's queue page.
 *   POST /alerts/{school}/{ref}          the page's form (csrf, status, note); 303 back.
 *
 * Administrators (and the admin token) see every school; a counsellor (`tu-van`) only
 * their own, and asking for another school is 403. Every other role is 403: a school's
 * IT staff run the filter, they do not read who searched for what. Each change of status
 * is written to the audit log (not the note's text, which stays with the alert).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccountStore, Principal, Session } from '../accounts.js';
import { ALERT_STATUSES, type AlertStatus, type AlertStore, MAX_NOTE_CHARS } from '../alerts.js';
import { readBody } from '../body.js';
import { HttpError, sendJson } from '../http.js';
import { alertsPage } from './alert-page.js';
import { errorPage } from './pages.js';
import { FORM_LIMITS, redirect, sameSecret, sendHtml } from './respond.js';

const CHANGE_PATH = /^\/(api\/v1\/)?alerts\/([^/]{1,200})\/([^/]{1,200})$/;

export type AlertRoutes = (request: IncomingMessage, response: ServerResponse, url: URL, reader: (request: IncomingMessage) => Principal) => Promise<boolean>;

export function createAlertRoutes(options: { alerts: AlertStore; accounts: AccountStore; session: (request: IncomingMessage) => Session | null }): AlertRoutes {
  const { alerts, accounts } = options;

  /** The school `who` may read: every school (or the one asked for) for an administrator, their own for a counsellor. */
  function scope(who: Principal, requested: string | null): string | undefined {
    if (who.role === 'admin' && who.school === null) return requested ?? undefined;
    if (who.role !== 'tu-van' || who.school === null) throw new HttpError(403, 'forbidden', 'alerts: administrators and the school counsellor only');
    if (requested !== null && requested !== who.school) throw new HttpError(403, 'forbidden', 'school: outside your school');
    return who.school;
  }

  async function change(who: Principal, school: string, ref: string, status: string | undefined, note: string | undefined): Promise<AlertStatus> {
    scope(who, school);
    if (status === undefined || status === 'new' || !(ALERT_STATUSES as readonly string[]).includes(status)) {
      throw new HttpError(400, 'bad_request', 'status: acknowledged or closed');
    }
    if (note !== undefined && [...note].length > MAX_NOTE_CHARS) throw new HttpError(400, 'bad_request', `note: at most ${MAX_NOTE_CHARS} characters`);
    const trimmed = note?.trim();
    const result = await alerts.setStatus(school, ref, status as AlertStatus, trimmed === undefined || trimmed === '' ? null : trimmed, Date.now());
    if (result === null) throw new HttpError(404, 'not_found', `no alert ${ref} of school ${school}`);
    accounts.audit(
      who.name,
      status === 'closed' ? 'alert.close' : 'alert.acknowledge',
      `alert:${school}/${ref}`,
      { status: result.before.status },
      { status: result.after.status, noted: result.after.note !== result.before.note },
    );
    return status as AlertStatus;
  }

  return async (request, response, url, reader) => {
    const method = request.method ?? 'GET';
    const path = url.pathname;
    if (path === '/api/v1/alerts') {
      if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'GET', { allow: 'GET' });
      const q = url.searchParams;
      const status = q.get('status');
      if (status !== null && !(ALERT_STATUSES as readonly string[]).includes(status))
        throw new HttpError(400, 'bad_request', `status: one of ${ALERT_STATUSES.join(', ')}`);
      const limit = Number(q.get('limit') ?? 200);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new HttpError(400, 'bad_request', 'limit: an integer from 1 to 1000');
      const school = scope(reader(request), q.get('school'));
      sendJson(response, 200, { alerts: await alerts.list({ school, status: (status as AlertStatus | null) ?? undefined, limit }) });
      return true;
    }
    if (path === '/alerts') {
      if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'GET', { allow: 'GET' });
      const current = options.session(request);
      if (current === null) {
        redirect(response, '/login');
        return true;
      }
      const { user, csrf } = current;
      if (!(user.role === 'admin' || (user.role === 'tu-van' && user.school !== null))) {
        sendHtml(response, 403, errorPage(403, 'Trang này chỉ dành cho cán bộ tư vấn học đường và quản trị viên.'));
        return true;
      }
      const list = await alerts.list({ school: user.school ?? undefined, limit: 500 });
      sendHtml(response, 200, alertsPage(user, csrf, list, url.searchParams.get('done')));
      return true;
    }
    const target = CHANGE_PATH.exec(path);
    if (target === null) return false;
    if (method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'POST', { allow: 'POST' });
    const school = decodeURIComponent(target[2]!);
    const ref = decodeURIComponent(target[3]!);
    const text = (await readBody(request, FORM_LIMITS)).toString('utf8');
    if (target[1] === undefined) {
      // The page's form: always a session, its CSRF token in the form.
      const current = options.session(request);
      if (current === null) {
        redirect(response, '/login');
        return true;
      }
      const fields = new URLSearchParams(text);
      if (!sameSecret(fields.get('csrf'), current.csrf)) throw new HttpError(403, 'csrf', 'missing or wrong CSRF token');
      try {
        const done = await change(current.user, school, ref, fields.get('status') ?? undefined, fields.get('note') ?? undefined);
        redirect(response, `/alerts?done=${done}`);
      } catch (error) {
        if (!(error instanceof HttpError)) throw error;
        sendHtml(response, error.status, errorPage(error.status, error.status === 403 ? 'Bạn không có quyền xử lý cảnh báo này.' : error.message, '/alerts'));
      }
      return true;
    }
    const who = reader(request);
    if (request.headers.authorization === undefined) {
      const current = options.session(request);
      if (current === null || !sameSecret(request.headers['x-csrf-token'] as string | undefined, current.csrf)) {
        throw new HttpError(403, 'csrf', 'missing or wrong CSRF token');
      }
    }
    let body: { status?: unknown; note?: unknown };
    try {
      body = JSON.parse(text || '{}') as { status?: unknown; note?: unknown };
    } catch {
      throw new HttpError(400, 'bad_request', 'a JSON object');
    }
    const status = await change(
      who,
      school,
      ref,
      typeof body.status === 'string' ? body.status : undefined,
      typeof body.note === 'string' ? body.note : undefined,
    );
    sendJson(response, 200, { ref, school, status });
    return true;
  };
}
