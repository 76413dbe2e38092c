import type { IncomingMessage, ServerResponse } from 'node:http';
import { DEFAULT_ORGANISATION, type Organisation } from '../rules/organisation.js';
import { RateLimiter } from '../util/rate-limit.js';
import { reportPage, reportThanksPage, reviewThanksPage, REPORT_PATH, REVIEW_PATH } from './pages.js';
import type { ReviewRecorder } from './ports.js';
import { errorAnswer, sendAnswer, sendHtml } from './responder.js';
import { parseTypedTarget } from './target.js';

/**
 * The two things a student or teacher can send from the gateway's own pages, with no
 * login: "review this block" (the block page's form) and "report this page
 * that was not blocked". Both are stored in the local event database, where the
 * shipper picks them up for the district's review queue.
 *
 * They are answered on any host under `/__lachan__/` (the block page is shown under
 * the blocked site's address, so its form posts there) and on the proxy's own port
 * under `/lachan/` (a page saved, or a device set to reach the gateway directly).
 */
export const ORIGIN_FORM_REVIEW_PATH = '/lachan/review';
export const ORIGIN_FORM_REPORT_PATH = '/lachan/report';

/** A form is a few fields; anything larger is not one of ours. */
const MAX_FORM_BODY = 4096;
const MAX_URL_LENGTH = 2000;
const MAX_NOTE_LENGTH = 500;
/**
 * Per client: five submissions, then one every two minutes. A child asking about a
 * few blocked pages is served; a script filling the district's queue is not.
 */
const REQUESTS_BURST = 5;
const REQUESTS_PER_SECOND = 1 / 120;

export type StudentRequestKind = 'review' | 'report';

export interface StudentRequestsOptions {
  /** Where the forms are stored (the gateway's event log); null: nowhere, and they are refused. */
  readonly recorder: ReviewRecorder | null;
  /** Called after a request was stored, so the shipper can send it without waiting for its idle tick. */
  readonly onRecorded?: () => void;
  readonly limiter?: RateLimiter;
  /** The organisation of the rules in force (school, office, hotline), read per page. */
  readonly organisation?: () => Organisation;
}

/** Which form a path names, or null; `originForm`: the request was addressed to the proxy itself. */
export function studentRequestKind(path: string, originForm: boolean): StudentRequestKind | null {
  if (path === REVIEW_PATH || (originForm && path === ORIGIN_FORM_REVIEW_PATH)) return 'review';
  if (path === REPORT_PATH || (originForm && path === ORIGIN_FORM_REPORT_PATH)) return 'report';
  return null;
}

export class StudentRequests {
  readonly #recorder: ReviewRecorder | null;
  readonly #onRecorded: () => void;
  readonly #limiter: RateLimiter;
  readonly #organisation: () => Organisation;

  constructor(options: StudentRequestsOptions) {
    this.#recorder = options.recorder;
    this.#onRecorded = options.onRecorded ?? (() => undefined);
    this.#limiter = options.limiter ?? new RateLimiter(REQUESTS_PER_SECOND, REQUESTS_BURST);
    this.#organisation = options.organisation ?? (() => DEFAULT_ORGANISATION);
  }

  /**
   * Answers one request for a form path. `profile` is what the proxy decided for this
   * client: a form field cannot claim another age group. `formAction` is where the
   * report form posts back (the same path the request used).
   */
  async serve(req: IncomingMessage, res: ServerResponse, kind: StudentRequestKind, profile: string, clientAddress: string, formAction: string): Promise<void> {
    const organisation = this.#organisation();
    if (kind === 'report' && (req.method === 'GET' || req.method === 'HEAD')) {
      const url = new URLSearchParams((req.url ?? '').split('?')[1] ?? '').get('url') ?? '';
      return sendHtml(res, 200, reportPage({ url: url.slice(0, MAX_URL_LENGTH), action: formAction, organisation }), req.method === 'HEAD');
    }
    if (req.method !== 'POST') return sendError(res, 'bad-request');
    const body = await readForm(req);
    if (body === null) return sendError(res, 'bad-request');
    if (this.#recorder === null) return sendError(res, 'bad-request');
    const form = new URLSearchParams(body);
    const note = (form.get('note') ?? '').trim().slice(0, MAX_NOTE_LENGTH);

    let record: { host: string; path: string; category: string | null; eventRef: string };
    if (kind === 'review') {
      const host = form.get('host') ?? '';
      if (host === '') return sendError(res, 'bad-request');
      record = { host, path: '/', category: form.get('category') || null, eventRef: form.get('ref') ?? '' };
    } else {
      const typed = (form.get('url') ?? '').trim();
      const category = form.get('category') || null;
      const page = parseReportedUrl(typed);
      if (page === null) {
        const error = typed === '' ? 'Hãy nhập địa chỉ trang web.' : 'Địa chỉ này không phải một trang web (ví dụ đúng: https://vi-du.vn/trang).';
        return sendHtml(
          res,
          400,
          reportPage({ url: typed.slice(0, MAX_URL_LENGTH), category: category ?? '', note, error, action: formAction, organisation }),
          false,
        );
      }
      record = { ...page, category, eventRef: '' };
    }

    // Counted only once the form is valid: a child who mistyped a URL is not locked out.
    const wait = this.#limiter.take(clientAddress);
    if (wait > 0) return sendError(res, 'too-many-requests', { 'retry-after': String(wait) });
    const stored = this.#recorder.recordReviewRequest({ kind, ...record, profile, note, clientAddress });
    if (stored === null) return sendError(res, 'bad-request');
    this.#onRecorded();
    const thanks = kind === 'review' ? reviewThanksPage({ reference: record.eventRef, host: record.host, organisation }) : reportThanksPage(organisation);
    return sendHtml(res, 200, thanks, false);
  }
}

/** The host and path (no query, no fragment) of what a person typed; a missing scheme means http. */
export function parseReportedUrl(typed: string): { host: string; path: string } | null {
  if (typed === '' || typed.length > MAX_URL_LENGTH) return null;
  // The proxy's own reading of a URL: the report names the site as events would.
  const target = parseTypedTarget(typed);
  if (target === null) return null;
  // A name needs a dot (or is an address): "abc" alone is a typo, not a site.
  if (!target.host.includes('.') && !target.host.startsWith('[')) return null;
  return { host: target.host, path: target.path };
}

/** A small urlencoded form's body; null past MAX_FORM_BODY or on a broken connection. */
export async function readForm(req: IncomingMessage): Promise<string | null> {
  let body = '';
  try {
    for await (const chunk of req) {
      body += String(chunk);
      if (body.length > MAX_FORM_BODY) return null;
    }
  } catch {
    return null;
  }
  return body;
}

function sendError(res: ServerResponse, kind: 'bad-request' | 'too-many-requests', extra: Record<string, string> = {}): void {
  sendAnswer(res, errorAnswer(kind, null), extra);
}
