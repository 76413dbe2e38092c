import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AccountStore, isRole, type Principal, type Session } from '../accounts.js';
import { readBody } from '../body.js';
import { databaseBusy, databaseTimedOut, HttpError, sendJson } from '../http.js';
import { DUMMY_HASH, verifyPassword } from '../passwords.js';
import type { CentralStore } from '../store.js';
import { StoreError } from '../store.js';
import { APP_CSS, APP_JS } from './assets.js';
import { auditPage, errorPage, loginPage, logsPage, overviewPage, usersPage } from './pages.js';
import type { DashboardQueries } from './queries.js';
import type { District } from '../district.js';
import { createDistrictRoutes } from './district-routes.js';
import { createAlertRoutes } from './alert-routes.js';
import { DEFAULT_ORGANISATION, type Organisation } from '../../rules/organisation.js';
import { REPORT_DOWNLOAD_PATH, sendYearlyReport } from '../../report/download.js';
import { cookie, cookies, FORM_LIMITS, redirect, sameSecret, sendHtml, wantsPage } from './respond.js';
import { isAlertsPath } from '../alerts.js';

/** A wait as a person reads it: "45 giây", "4 phút". */
function waitText(ms: number): string {
  const seconds = Math.ceil(ms / 1000);
  return seconds < 60 ? `${seconds} giây` : `${Math.ceil(seconds / 60)} phút`;
}

/** What the collector server asks of the dashboard. */
export interface Dashboard {
  /** The user of the request's session cookie, or null. */
  principal(request: IncomingMessage): Principal | null;
  /** Serves the request if it is the dashboard's; `reader` authenticates API reads (bearer or session). */
  handle(request: IncomingMessage, response: ServerResponse, url: URL, reader: (request: IncomingMessage) => Principal): Promise<boolean>;
}

export const SESSION_COOKIE = 'lachan_session';
const USER_CHANGE = /^\/api\/v1\/users\/([^/]{1,200})\/(disable|enable|delete|password)$/;
/** Vietnamese for the refusals an administrator meets on the users page. */
const USER_ERRORS: Readonly<Record<string, string>> = {
  LACHAN_NO_USER: 'Không có tài khoản này.',
  LACHAN_LAST_ADMIN: 'Không thể khóa hoặc xóa quản trị viên cuối cùng còn hoạt động.',
  LACHAN_WEAK_PASSWORD: 'Mật khẩu mới phải có ít nhất 10 ký tự.',
};
const LOGIN_CSRF_COOKIE = 'lachan_login_csrf';
/** A page whose data a lock held elsewhere kept back (the 503 of http.ts, databaseBusy). */
const BUSY_MESSAGE = 'Cơ sở dữ liệu đang bận: một phiên làm việc khác đang giữ phần dữ liệu này. Chưa có gì bị thay đổi; hãy thử lại sau ít giây.';
/** A page whose statement the database did not answer in time (databaseTimedOut): it may have been done. */
const TIMEOUT_MESSAGE = 'Cơ sở dữ liệu không trả lời kịp. Thao tác có thể đã được thực hiện hoặc chưa: hãy kiểm tra lại sau một phút rồi mới thử lại.';
/**
 * Where a login comes from: the peer, or behind one of `trusted` reverse proxies the
 * address it appended last to X-Forwarded-For (what a client wrote before it is not
 * believed). Without this every login behind a proxy would share one throttle.
 */
export function loginSource(request: IncomingMessage, trusted: ReadonlySet<string>): string {
  const peer = (request.socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
  if (!trusted.has(peer)) return peer;
  const forwarded = String(request.headers['x-forwarded-for'] ?? '')
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  return forwarded.at(-1) ?? peer;
}

/**
 * `handle`, with a page for a page or form whose statement gave up waiting for a lock
 * another session holds or did not answer in time; a script's call gets the server's JSON
 * 503 (server.ts).
 */
function busyAsPage(handle: Dashboard['handle']): Dashboard['handle'] {
  return async (request, response, url, reader) => {
    try {
      return await handle(request, response, url, reader);
    } catch (error) {
      const busy = databaseBusy(error);
      const unavailable = busy ?? databaseTimedOut(error);
      if (unavailable === null || !wantsPage(request) || response.headersSent) throw error;
      const message = busy !== null ? BUSY_MESSAGE : TIMEOUT_MESSAGE;
      sendHtml(response, 503, errorPage(503, message, request.method === 'GET' ? `${url.pathname}${url.search}` : '/'), unavailable.headers);
      return true;
    }
  };
}

export function createDashboard(options: {
  store: CentralStore;
  accounts: AccountStore;
  queries: DashboardQueries;
  district?: District;
  organisation?: Organisation;
  trustedProxies?: readonly string[];
}): Dashboard {
  const trustedProxies = new Set(options.trustedProxies ?? []);
  const { store, accounts, queries } = options;
  const organisation = options.organisation ?? DEFAULT_ORGANISATION;
  const districtRoutes =
    options.district === undefined
      ? null
      : createDistrictRoutes({ district: options.district, store, session: (request) => session(request)?.session ?? null });

  const alertRoutes = createAlertRoutes({ alerts: store.alerts, accounts, session: (request) => session(request)?.session ?? null });

  function session(request: IncomingMessage): { id: string; session: Session } | null {
    const id = cookies(request).get(SESSION_COOKIE);
    if (id === undefined || !/^[A-Za-z0-9_-]{43}$/.test(id)) return null;
    const found = accounts.session(id);
    return found === null ? null : { id, session: found };
  }

  async function form(request: IncomingMessage): Promise<URLSearchParams> {
    return new URLSearchParams((await readBody(request, FORM_LIMITS)).toString('utf8'));
  }

  async function login(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const fields = await form(request);
    // Double submit: the hidden field must repeat the cookie set with the form.
    const expected = cookies(request).get(LOGIN_CSRF_COOKIE);
    if (expected === undefined || !sameSecret(fields.get('csrf'), expected)) {
      return sendHtml(response, 403, errorPage(403, 'Phiên đăng nhập không hợp lệ. Hãy tải lại trang đăng nhập.'));
    }
    const name = (fields.get('name') ?? '').trim();
    const password = fields.get('password') ?? '';
    const retry = (status: number, message: string) => sendHtml(response, status, loginPage(expected, message, name, organisation.office.name));
    // Throttled by where the guesses come from, not by account: the real user elsewhere is never locked out.
    const address = loginSource(request, trustedProxies);
    const tooMany = (wait: number) =>
      sendHtml(response, 429, loginPage(expected, `Đăng nhập sai nhiều lần từ máy này. Hãy thử lại sau ${waitText(wait)}.`, name, organisation.office.name), {
        'retry-after': String(Math.ceil(wait / 1000)),
      });
    const waiting = accounts.throttle.waitFor(address, name);
    if (waiting > 0) return tooMany(waiting);
    const user = accounts.user(name);
    const ok = await verifyPassword(password, user?.passwordHash ?? DUMMY_HASH);
    if (!ok || user === null || user.disabledAt !== null) {
      const wait = accounts.throttle.failed(address, name);
      return wait > 0 ? tooMany(wait) : retry(401, 'Sai tên đăng nhập hoặc mật khẩu.');
    }
    accounts.throttle.succeeded(address, name);
    const created = accounts.createSession(user.name);
    redirect(response, '/', {
      'set-cookie': [
        cookie(request, SESSION_COOKIE, created.id, Math.floor((created.expiresAt - Date.now()) / 1000)),
        cookie(request, LOGIN_CSRF_COOKIE, '', 0),
      ],
    });
  }

  /** A state-changing request from a session must carry its CSRF token (header or form field). */
  function checkCsrf(current: Session, token: string | null | undefined): void {
    if (!sameSecret(token, current.csrf)) throw new HttpError(403, 'csrf', 'missing or wrong CSRF token');
  }

  function requireAdmin(who: Principal): void {
    if (who.role !== 'admin') throw new HttpError(403, 'forbidden', 'admins only');
  }

  async function addUser(request: IncomingMessage, response: ServerResponse, reader: (r: IncomingMessage) => Principal): Promise<void> {
    const who = reader(request);
    // Cookie-borne requests need the CSRF token; a bearer token cannot be forged cross-site.
    if (request.headers.authorization === undefined) {
      const current = session(request);
      if (current === null) throw new HttpError(401, 'unauthorized', 'log in first');
      checkCsrf(current.session, request.headers['x-csrf-token'] as string | undefined);
    }
    requireAdmin(who);
    const body = JSON.parse((await readBody(request, FORM_LIMITS)).toString('utf8') || '{}') as Record<string, unknown>;
    const { name, role, school, password } = body;
    if (
      typeof name !== 'string' ||
      typeof role !== 'string' ||
      !isRole(role) ||
      typeof password !== 'string' ||
      (school !== undefined && school !== null && typeof school !== 'string')
    ) {
      throw new HttpError(400, 'bad_request', 'name, role (admin|school-it|viewer|tu-van), password and optionally school');
    }
    try {
      await accounts.addUser(who.name, name, role, (school as string | null | undefined) ?? null, password);
    } catch (error) {
      if (error instanceof StoreError) throw new HttpError(400, 'bad_request', error.message);
      throw error;
    }
    sendJson(response, 201, { name, role, school: school ?? null });
  }

  /**
   * An administrator disables, enables, deletes an account or sets its password: from
   * the users page (a form with its CSRF field, answered with a 303 back to the page) or
   * as JSON (CSRF header for a session, none for the bearer token).
   */
  async function changeUser(
    request: IncomingMessage,
    response: ServerResponse,
    reader: (r: IncomingMessage) => Principal,
    name: string,
    action: string,
  ): Promise<void> {
    const who = reader(request);
    const isForm =
      String(request.headers['content-type'] ?? '')
        .split(';')[0]!
        .trim()
        .toLowerCase() === 'application/x-www-form-urlencoded';
    const text = (await readBody(request, FORM_LIMITS)).toString('utf8');
    let fields: URLSearchParams;
    try {
      fields = isForm
        ? new URLSearchParams(text)
        : new URLSearchParams(Object.entries(JSON.parse(text || '{}') as Record<string, string>).map(([k, v]): [string, string] => [k, String(v)]));
    } catch {
      throw new HttpError(400, 'bad_request', 'a form or a JSON object');
    }
    if (request.headers.authorization === undefined) {
      const current = session(request);
      if (current === null) throw new HttpError(401, 'unauthorized', 'log in first');
      checkCsrf(current.session, isForm ? fields.get('csrf') : (request.headers['x-csrf-token'] as string | undefined));
    }
    requireAdmin(who);
    try {
      if (action === 'disable' || action === 'enable') accounts.setDisabled(who.name, name, action === 'disable');
      else if (action === 'delete') accounts.deleteUser(who.name, name);
      else await accounts.resetPassword(who.name, name, fields.get('password') ?? '');
    } catch (error) {
      if (!(error instanceof StoreError)) throw error;
      const status = error.code === 'LACHAN_NO_USER' ? 404 : 400;
      if (isForm) return sendHtml(response, status, errorPage(status, USER_ERRORS[error.code] ?? error.message, '/users'));
      throw new HttpError(status, 'bad_request', error.message);
    }
    if (isForm) return redirect(response, `/users?done=${action}`);
    sendJson(response, 200, { name, action });
  }

  async function topHosts(who: Principal, url: URL, response: ServerResponse): Promise<void> {
    const q = url.searchParams;
    const requested = q.get('school');
    if (who.school !== null && requested !== null && requested !== who.school) throw new HttpError(403, 'forbidden', 'school: outside your school');
    const school = who.school ?? requested ?? null;
    const days = Math.min(366, Math.max(1, Number(q.get('days') ?? 30) || 30));
    const today = new Date(Date.now() + 7 * 3_600_000);
    const iso = (d: Date) => d.toISOString().slice(0, 10);
    const stats = await store.stats({
      school: school ?? undefined,
      fromDay: iso(new Date(today.getTime() - (days - 1) * 86_400_000)),
      toDay: iso(today),
      topHosts: 200,
    });
    const perCategory = Number(q.get('per') ?? 5) || 5;
    const byCategory = new Map<string, { host: string; count: number; rule: string | null; source: string | null }[]>();
    for (const h of stats.topHosts) {
      const key = h.category ?? '';
      const list = byCategory.get(key) ?? [];
      if (list.length >= perCategory) continue;
      list.push({ host: h.host, count: h.count, ...queries.hostRule(h.host, h.category, school) });
      byCategory.set(key, list);
    }
    sendJson(response, 200, {
      fromDay: stats.fromDay,
      toDay: stats.toDay,
      categories: [...byCategory].map(([category, hosts]) => ({ category: category === '' ? null : category, hosts })),
    });
  }

  const dashboard: Dashboard = {
    principal(request) {
      return session(request)?.session.user ?? null;
    },

    async handle(request, response, url, reader) {
      const method = request.method ?? 'GET';
      const path = url.pathname;
      if (method === 'GET' && path === '/assets/app.js') {
        response.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
        response.end(APP_JS);
        return true;
      }
      if (method === 'GET' && path === '/assets/app.css') {
        response.writeHead(200, { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
        response.end(APP_CSS);
        return true;
      }
      // A counsellor has the alert queue and nothing else: not the block log, not the reviews.
      if (!isAlertsPath(path) && path !== '/login' && path !== '/logout' && session(request)?.session.user.role === 'tu-van') {
        if (path === '/' && method === 'GET') redirect(response, '/alerts');
        else if (path.startsWith('/api/')) throw new HttpError(403, 'forbidden', 'a counsellor reads safeguarding alerts only');
        else sendHtml(response, 403, errorPage(403, 'Tài khoản tư vấn học đường chỉ xem trang Cảnh báo.', '/alerts'));
        return true;
      }
      if (await alertRoutes(request, response, url, reader)) return true;
      if (path === '/login') {
        if (method === 'POST') {
          await login(request, response);
          return true;
        }
        if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'GET or POST', { allow: 'GET, POST' });
        if (session(request) !== null) {
          redirect(response, '/');
          return true;
        }
        const csrf = randomBytes(24).toString('base64url');
        sendHtml(response, 200, loginPage(csrf, null, '', organisation.office.name), {
          'set-cookie': cookie(request, LOGIN_CSRF_COOKIE, csrf, 3600, '/login'),
        });
        return true;
      }
      if (path === '/logout') {
        if (method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'POST', { allow: 'POST' });
        const current = session(request);
        if (current === null) {
          redirect(response, '/login');
          return true;
        }
        checkCsrf(current.session, (await form(request)).get('csrf'));
        accounts.endSession(current.id);
        redirect(response, '/login', { 'set-cookie': cookie(request, SESSION_COOKIE, '', 0) });
        return true;
      }
      if (path === '/' || path === '/logs' || path === '/users' || path === '/audit') {
        if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'GET', { allow: 'GET' });
        const current = session(request);
        if (current === null) {
          redirect(response, '/login');
          return true;
        }
        const { user, csrf } = current.session;
        if (path === '/') sendHtml(response, 200, overviewPage(user, csrf));
        else if (path === '/logs') sendHtml(response, 200, logsPage(user, csrf));
        else if (user.role !== 'admin') sendHtml(response, 403, errorPage(403, 'Trang này chỉ dành cho quản trị viên.'));
        else if (path === '/users')
          sendHtml(
            response,
            200,
            usersPage(user, csrf, accounts.users(), new Map((await store.listSchools()).map((s) => [s.id, s.name])), url.searchParams.get('done')),
          );
        else sendHtml(response, 200, auditPage(user, csrf, accounts.auditLog(), new Map((await store.listSchools()).map((s) => [s.id, s.name]))));
        return true;
      }
      if (path === '/api/v1/dashboard/schools') {
        if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'GET', { allow: 'GET' });
        const who = reader(request);
        sendJson(response, 200, { schools: queries.schools(who.school) });
        return true;
      }
      if (path === '/api/v1/dashboard/top-hosts') {
        if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'GET', { allow: 'GET' });
        await topHosts(reader(request), url, response);
        return true;
      }
      if (path === '/api/v1/users') {
        if (method === 'POST') {
          await addUser(request, response, reader);
          return true;
        }
        if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'GET or POST', { allow: 'GET, POST' });
        const who = reader(request);
        requireAdmin(who);
        sendJson(response, 200, {
          users: accounts.users().map((u) => ({ name: u.name, role: u.role, school: u.school, createdAt: u.createdAt, disabledAt: u.disabledAt })),
        });
        return true;
      }
      const userChangePath = USER_CHANGE.exec(path);
      if (userChangePath !== null) {
        if (method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'POST', { allow: 'POST' });
        await changeUser(request, response, reader, decodeURIComponent(userChangePath[1]!), userChangePath[2]!);
        return true;
      }
      if (path === '/api/v1/audit') {
        if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'GET', { allow: 'GET' });
        const who = reader(request);
        requireAdmin(who);
        sendJson(response, 200, { entries: accounts.auditLog() });
        return true;
      }
      if (path === REPORT_DOWNLOAD_PATH) {
        if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'GET', { allow: 'GET' });
        await sendYearlyReport(response, reader(request), url, store, organisation);
        return true;
      }
      if (districtRoutes !== null) return districtRoutes(request, response, url, reader);
      return false;
    },
  };
  return { ...dashboard, handle: busyAsPage(dashboard.handle) };
}
