/**
 * The collector's HTTP API (node:http; put a TLS reverse proxy in front of it on the
 * internet).
 *
 *   POST /api/v1/events      a school's batch. `Authorization: Bearer <school token>`;
 *                            body `{"school":ID,"events":[WireEvent…]}` as JSON, optionally
 *                            `Content-Encoding: gzip`. 200 `{"acked":[ids],"stored":n,
 *                            "duplicates":m}` acknowledges every id stored now or held
 *                            already; 400 malformed (the message names the field), 401 bad
 *                            token, 403 token of another school, 413 body over 2 MiB or
 *                            inflating past 16 MiB, 415 other encodings, 429 too many
 *                            requests (with Retry-After).
 *   GET  /api/v1/events      dashboard: events newest first. Bearer <data>/admin-token.
 *                            Query: school, profile, category, host, from, to (ms or ISO),
 *                            limit (1–1000, default 100), cursor (from nextCursor).
 *   GET  /api/v1/stats       dashboard: byCategoryDay, bySchool, topHosts, total. Bearer
 *                            admin token. Query: school, profile, category, from, to
 *                            (YYYY-MM-DD, Vietnam days; default the last 30), top (hosts).
 *   GET  /api/v1/events.csv  the same filters as /api/v1/events, every match as CSV (UTF-8 with BOM).
 *   GET  /api/v1/policy      a school's gateway fetches the district policy overlay for its
 *                            school: `Authorization: Bearer <school token>`; 200 with the
 *                            overlay JSON (src/rules/overlay.ts), `X-Lachan-Signature` (Ed25519
 *                            over the exact body, base64) and an ETag; 304 on If-None-Match.
 *   POST /api/v1/reviews     a school's review and report requests (src/events/review-wire.ts),
 *                            same authentication, encoding and statuses as events.
 *   POST /api/v1/alerts/ingest  a school's safeguarding alerts (docs/safeguarding.md), same
 *                            token; 200 {"accepted":n}, 400 {"error","code"} with nothing stored.
 *   GET  /healthz            200 {"ok":true}, no token.
 *
 * Any request may be answered 503 `database_busy` with Retry-After: a lock another database
 * session holds did not come free in time (PostgreSQL's lock_timeout, storage/pg-sync.ts;
 * SQLite's busy timeout, storage/sqlite.ts: a second process writing the file); nothing was
 * changed. A dashboard page gets the same as a page (dashboard/routes.ts). On PostgreSQL, 503
 * `database_timeout` with Retry-After: a statement on the synchronous connection did not
 * answer within its timeout (storage/pg-sync.ts; it may have taken effect).
 *
 * Reads accept the admin bearer token or a dashboard session cookie (dashboard/routes.ts:
 * /login, /logout, the pages, /api/v1/dashboard/*, /api/v1/users, /api/v1/audit). A
 * school-it user's reads are limited to its school here, in the query; asking for
 * another school is 403.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { validateReviewBatch, type WireReviewAck } from '../events/review-wire.js';
import { BatchError, validateBatch, type WireAck } from '../events/wire.js';
import type { District } from './district.js';
import { BodyError, lingerOnClose, readBody } from './body.js';
import type { Principal } from './accounts.js';
import type { Dashboard } from './dashboard/routes.js';
import { databaseBusy, databaseTimedOut, HttpError, sendJson } from './http.js';
import { dayNumber, dayToIso, isoToDay } from './days.js';
import { RateLimiter } from '../util/rate-limit.js';
import { handleErasures } from './erasures.js';
import { StoreError, type CentralStore, type EventFilter, type School } from './store.js';
import { bearerToken } from './tokens.js';
import { sendListsOverview, type ListsMirror } from './lists-mirror.js';
import { type AdminTokenCheck, fixedAdminToken } from './admin-token.js';
import { listsPage } from './lists-page.js';
import { vnDateTimeSeconds } from './dashboard/vn-time.js';
import { AlertBatchError, type AlertChange, isAlertsPath, validateAlertBatch, type WireAlert } from './alerts.js';

/** What the collector needs of a logger (pino fits). */
export interface CollectorLogger {
  debug(object: object, message?: string): void;
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

export interface CollectorOptions {
  readonly store: CentralStore;
  /** Bearer token for the dashboard API (GET /api/v1/events, /api/v1/stats); on PostgreSQL the one the database holds (admin-token-pg.ts). */
  readonly adminToken: string | AdminTokenCheck;
  readonly logger: CollectorLogger;
  /** Ingest requests a second per school (default 20, bursts of twice that). */
  readonly rateLimit?: number;
  /** Failed authentications a minute per address before 429 (default 30). */
  readonly authFailuresPerMinute?: number;
  readonly maxBodyBytes?: number;
  readonly maxInflatedBytes?: number;
  /** Login, sessions and the dashboard pages; without it only the bearer token reads. */
  readonly dashboard?: Dashboard;
  /** The district policy overlay and review queue; without it /api/v1/policy and /api/v1/reviews are 404. */
  readonly district?: District;
  /** The mirror of subscribed lists (lists-mirror.ts); without it /api/v1/lists/… and /lists are 404. */
  readonly lists?: ListsMirror;
  /** Tells schools' contacts of new and escalated alerts (alert-delivery.ts); never awaited. */
  readonly alertDelivery?: { notify(changes: readonly AlertChange[]): void };
}

/** The admin bearer token acts as an admin with no school limit. */
const ADMIN_TOKEN_PRINCIPAL: Principal = { name: 'admin-token', role: 'admin', school: null };
const CSV_MAX_ROWS = 200_000;

export const DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024;
export const DEFAULT_MAX_INFLATED_BYTES = 16 * 1024 * 1024;

export function createCollectorServer(options: CollectorOptions): Server {
  const { store, logger } = options;
  const admin = typeof options.adminToken === 'string' ? fixedAdminToken(options.adminToken) : options.adminToken;
  const perSchool = new RateLimiter(options.rateLimit ?? 20);
  const authFailures = new RateLimiter((options.authFailuresPerMinute ?? 30) / 60, options.authFailuresPerMinute ?? 30);
  const limits = {
    maxBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    maxInflatedBytes: options.maxInflatedBytes ?? DEFAULT_MAX_INFLATED_BYTES,
  };

  function refuseAuth(request: IncomingMessage): never {
    const address = request.socket.remoteAddress ?? 'unknown';
    const wait = authFailures.take(address);
    if (wait > 0) throw new HttpError(429, 'too_many_requests', 'too many failed authentications', { 'retry-after': String(wait) });
    throw new HttpError(401, 'unauthorized', 'missing or invalid bearer token', { 'www-authenticate': 'Bearer' });
  }

  /** The admin bearer token, or a dashboard session; 401 otherwise. */
  function reader(request: IncomingMessage): Principal {
    const token = bearerToken(request.headers.authorization);
    if (token !== null) {
      if (admin.accepts(token)) return ADMIN_TOKEN_PRINCIPAL;
      refuseAuth(request);
    }
    const principal = options.dashboard?.principal(request) ?? null;
    if (principal === null) refuseAuth(request);
    if (principal.role === 'tu-van' && !isAlertsPath(request.url)) throw new HttpError(403, 'forbidden', 'a counsellor reads safeguarding alerts only');
    return principal;
  }

  /**
   * The school a query is limited to: a school-it user's own, whatever the query asks
   * (another school is refused outright, so a crafted link fails loudly).
   */
  function scopedSchool(who: Principal, requested: string | null): string | undefined {
    if (who.school === null) return requested ?? undefined;
    if (requested !== null && requested !== who.school) throw new HttpError(403, 'forbidden', 'school: outside your school');
    return who.school;
  }

  function eventFilter(who: Principal, q: URLSearchParams): EventFilter {
    return {
      school: scopedSchool(who, q.get('school')),
      profile: q.get('profile') || undefined,
      category: q.get('category') || undefined,
      host: q.get('host') || undefined,
      from: timeParam(q, 'from'),
      to: timeParam(q, 'to'),
    };
  }

  /** The school whose bearer token the request carries, within its request rate; 401 or 429 otherwise. */
  async function schoolOf(request: IncomingMessage): Promise<School> {
    const token = bearerToken(request.headers.authorization);
    const school = token === null ? null : await store.authenticate(token);
    if (school === null) refuseAuth(request);
    const wait = perSchool.take(school.id);
    if (wait > 0) throw new HttpError(429, 'too_many_requests', 'slow down', { 'retry-after': String(wait) });
    return school;
  }

  async function jsonBody(request: IncomingMessage): Promise<unknown> {
    const body = await readBody(request, limits);
    try {
      return JSON.parse(body.toString('utf8'));
    } catch {
      throw new HttpError(400, 'bad_batch', 'body is not JSON');
    }
  }

  function districtOrMissing(url: URL): District {
    if (options.district === undefined) throw new HttpError(404, 'not_found', `no such endpoint: ${url.pathname}`);
    return options.district;
  }

  async function ingest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const school = await schoolOf(request);
    const parsed = await jsonBody(request);
    const now = Date.now();
    const batch = validateBatch(parsed, now);
    if (batch.school !== school.id) throw new HttpError(403, 'wrong_school', `school: the token belongs to ${school.id}, not ${batch.school}`);
    const result = await store.ingest(school.id, batch.events, now);
    logger.debug({ school: school.id, received: batch.events.length, stored: result.stored, duplicates: result.duplicates }, 'ingest');
    const ack: WireAck = { acked: result.acked, stored: result.stored, duplicates: result.duplicates };
    sendJson(response, 200, ack);
  }

  /** A gateway's alerts (docs/safeguarding.md §1): all stored, or none with a 400 naming why. */
  async function ingestAlerts(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const school = await schoolOf(request);
    let alerts: WireAlert[];
    try {
      alerts = validateAlertBatch(await jsonBody(request));
    } catch (error) {
      if (error instanceof AlertBatchError || (error instanceof HttpError && error.status === 400)) {
        return sendJson(response, 400, { error: error.message, code: error.code });
      }
      throw error;
    }
    const changes = await store.alerts.ingest(school.id, alerts, Date.now());
    const fresh = changes.filter((c) => c.outcome === 'new').length;
    if (fresh > 0) logger.info({ school: school.id, alerts: fresh }, 'safeguarding alerts received');
    options.alertDelivery?.notify(changes);
    sendJson(response, 200, { accepted: alerts.length });
  }

  async function ingestReviews(district: District, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const school = await schoolOf(request);
    const batch = validateReviewBatch(await jsonBody(request));
    if (batch.school !== school.id) throw new HttpError(403, 'wrong_school', `school: the token belongs to ${school.id}, not ${batch.school}`);
    const result = district.reviews.ingest(school.id, batch.requests, Date.now());
    if (result.stored > 0) logger.info({ school: school.id, stored: result.stored }, 'review requests received');
    const ack: WireReviewAck = { acked: result.acked };
    sendJson(response, 200, ack);
  }

  /** The school's overlay, signed; 304 when the gateway holds this version already. */
  async function policy(district: District, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const school = await schoolOf(request);
    const signed = district.policy.signedOverlayFor(school.id, district.signer);
    const headers = { etag: signed.etag, 'cache-control': 'no-cache', 'x-lachan-policy-version': String(signed.version) };
    if (request.headers['if-none-match'] === signed.etag) {
      response.writeHead(304, headers);
      return void response.end();
    }
    response.writeHead(200, {
      ...headers,
      'content-type': 'application/json; charset=utf-8',
      'content-length': signed.body.length,
      'x-lachan-signature': signed.signature,
    });
    response.end(signed.body);
  }

  /** A school's list download, or the overview of every school's list versions (JSON or the dashboard page). */
  async function lists(mirror: ListsMirror, request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const name = /^\/api\/v1\/lists\/([^/]+)$/.exec(url.pathname);
    if (name !== null) return mirror.serve(request, response, decodeURIComponent(name[1]!), url.searchParams.get('since'), (await schoolOf(request)).id);
    if (url.pathname === '/lists' && options.dashboard?.principal(request) == null) {
      response.writeHead(303, { location: '/login' });
      return void response.end();
    }
    const who = reader(request);
    const schools = (await store.listSchools()).filter((s) => s.revokedAt === null && (who.school === null || s.id === who.school));
    if (url.pathname === '/api/v1/lists')
      return sendListsOverview(
        mirror,
        response,
        schools.map((s) => s.id),
      );
    if (url.pathname !== '/lists') throw new HttpError(404, 'not_found', `no such endpoint: ${url.pathname}`);
    const overview = await mirror.overview(schools.map((s) => s.id));
    const html = listsPage(
      overview.lists,
      schools.map((s) => ({ id: s.id, name: s.name, lists: overview.schools.get(s.id) ?? [] })),
    );
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(html) });
    response.end(html);
  }

  async function listEvents(who: Principal, url: URL, response: ServerResponse): Promise<void> {
    const q = url.searchParams;
    const filter = eventFilter(who, q);
    const limit = intParam(q, 'limit', 100, 1, 1000);
    const page = await store.queryEvents(filter, { cursor: q.get('cursor') ?? undefined, limit });
    sendJson(response, 200, page);
  }

  /** The filtered events as CSV, with a BOM so Excel reads the UTF-8 (Vietnamese) right. */
  async function exportCsv(who: Principal, url: URL, response: ServerResponse): Promise<void> {
    const filter = eventFilter(who, url.searchParams);
    response.writeHead(200, {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': 'attachment; filename="lachan-events.csv"',
      'cache-control': 'no-store',
    });
    // Times in Vietnam time, as every page shows them (dd/mm/yyyy HH:mm:ss).
    response.write('\uFEFFtime (Asia/Ho_Chi_Minh),school,profile,category,reason,rule,source,host,path,method,client\r\n');
    let cursor: string | undefined;
    let rows = 0;
    do {
      const page = await store.queryEvents(filter, { cursor, limit: 2_000 });
      let chunk = '';
      for (const e of page.events) {
        chunk += `${[vnDateTimeSeconds(e.time), e.school, e.profile, e.category, e.reason, e.rule, e.source, e.host, e.path, e.method, e.client].map(csvField).join(',')}\r\n`;
      }
      rows += page.events.length;
      if (!response.write(chunk)) await new Promise((resolve) => response.once('drain', resolve));
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined && rows < CSV_MAX_ROWS);
    response.end();
  }

  async function stats(who: Principal, url: URL, response: ServerResponse): Promise<void> {
    const q = url.searchParams;
    const today = dayNumber(Date.now());
    const toDay = q.get('to') ?? dayToIso(today);
    const fromDay = q.get('from') ?? dayToIso((isoToDay(toDay) ?? today) - 29);
    const result = await store.stats({
      school: scopedSchool(who, q.get('school')),
      profile: q.get('profile') || undefined,
      category: q.get('category') || undefined,
      fromDay,
      toDay,
      topHosts: intParam(q, 'top', 20, 1, 1000),
    });
    sendJson(response, 200, result);
  }

  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://collector.invalid');
    const method = request.method ?? 'GET';
    if (url.pathname === '/api/v1/events') {
      if (method === 'POST') return ingest(request, response);
      if (method === 'GET') return listEvents(reader(request), url, response);
      throw new HttpError(405, 'method_not_allowed', 'GET or POST', { allow: 'GET, POST' });
    }
    if (url.pathname === '/api/v1/stats') {
      if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'GET', { allow: 'GET' });
      return stats(reader(request), url, response);
    }
    if (url.pathname === '/api/v1/events.csv') {
      if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'GET', { allow: 'GET' });
      return exportCsv(reader(request), url, response);
    }
    if (url.pathname === '/api/v1/policy') {
      if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'GET', { allow: 'GET' });
      return policy(districtOrMissing(url), request, response);
    }
    if (url.pathname === '/api/v1/alerts/ingest') {
      if (method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'POST', { allow: 'POST' });
      return ingestAlerts(request, response);
    }
    if (url.pathname === '/api/v1/reviews' && method === 'POST') return ingestReviews(districtOrMissing(url), request, response);
    if (url.pathname === '/api/v1/erasures' && method === 'POST') {
      const school = await schoolOf(request);
      return handleErasures(store, school.id, await jsonBody(request), response, (id, result) =>
        logger.info(
          { school: id, erased: result.events, anonymised: result.reviews, alertsAnonymised: result.alerts, requests: result.acked.length },
          'erasures',
        ),
      );
    }
    if (options.lists !== undefined && method === 'GET' && (url.pathname.startsWith('/api/v1/lists') || url.pathname === '/lists'))
      return lists(options.lists, request, response, url);
    if (url.pathname === '/healthz') return sendJson(response, 200, { ok: true });
    if (options.dashboard !== undefined && (await options.dashboard.handle(request, response, url, reader))) return;
    throw new HttpError(404, 'not_found', `no such endpoint: ${url.pathname}`);
  }

  const server = createServer((request, response) => {
    route(request, response).catch((error: unknown) => {
      const failure = describeFailure(error);
      if (failure.status === 500) logger.error({ err: error, url: request.url }, 'request failed');
      // Said in the log too: a lock that keeps failing requests is the operator's to find (pg_locks; on SQLite, `fuser central.db`).
      else if (failure.code === 'database_busy') logger.warn({ err: error, url: request.url }, 'a lock did not come free in time');
      else if (failure.code === 'database_timeout') logger.warn({ err: error, url: request.url }, 'the database did not answer in time');
      if (response.headersSent) return void response.destroy();
      // A body refused before or while reading is not kept for keep-alive: the connection
      // closes, after reading what the client is still sending.
      const unread = !request.complete;
      if (unread) lingerOnClose(request);
      sendJson(
        response,
        failure.status,
        { error: failure.code, message: failure.message },
        unread ? { ...failure.headers, connection: 'close' } : failure.headers,
      );
    });
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;
  return server;
}

function describeFailure(error: unknown): { status: number; code: string; message: string; headers: Record<string, string> } {
  if (error instanceof HttpError) return error;
  if (error instanceof BodyError) return { status: error.status, code: error.status === 413 ? 'too_large' : 'bad_body', message: error.message, headers: {} };
  if (error instanceof BatchError) return { status: 400, code: 'bad_batch', message: error.message, headers: {} };
  if (error instanceof StoreError) return { status: 400, code: 'bad_request', message: error.message, headers: {} };
  const unavailable = databaseBusy(error) ?? databaseTimedOut(error);
  if (unavailable !== null) return unavailable;
  return { status: 500, code: 'internal', message: 'internal error', headers: {} };
}

function timeParam(q: URLSearchParams, name: string): number | undefined {
  const value = q.get(name);
  if (value === null) return undefined;
  const time = /^\d{1,16}$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(time)) throw new HttpError(400, 'bad_request', `${name}: milliseconds or an ISO date`);
  return time;
}

function intParam(q: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const value = q.get(name);
  if (value === null) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new HttpError(400, 'bad_request', `${name}: an integer from ${min} to ${max}`);
  return n;
}

function csvField(value: string | null): string {
  if (value === null) return '';
  // A leading = + - @ would run as a formula in a spreadsheet.
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}
