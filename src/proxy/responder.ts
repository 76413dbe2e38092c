import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ContentVerdict } from '../content/profile.js';
import type { Policy } from '../policy/engine.js';
import type { Decision } from '../policy/types.js';
import { organisationOf } from '../rules/loader.js';
import { VIA } from './headers.js';
import { blockPage, errorPage, examBlockPage, errorStatus, type ErrorKind } from './pages.js';

/**
 * Every page the proxy answers with (block, errors, authentication, the forms'), on
 * either kind of client connection: an HTTP response Node frames, or a raw socket
 * (CONNECT, upgrades, requests Node's parser refused) that gets a whole response and
 * is closed. An answer is built once and written by whichever fits.
 */
export interface Answer {
  readonly status: number;
  readonly html: string;
  /** Beyond type, length and caching; names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
}

const HTML = 'text/html; charset=utf-8';
const NO_HEADERS: Readonly<Record<string, string>> = {};

export function errorAnswer(kind: ErrorKind, host: string | null, headers: Readonly<Record<string, string>> = NO_HEADERS): Answer {
  return { status: errorStatus(kind), html: errorPage(kind, host), headers };
}

export const AUTH_REQUIRED: Answer = errorAnswer('auth-required', null, { 'proxy-authenticate': 'Basic realm="lachan", charset="UTF-8"' });

/** The block page for a decision (docs/contract.md §4); a CONNECT to a port not allowed gets the port page. */
export function blockAnswer(policy: Policy, decision: Decision, host: string, reference: string): Answer {
  if (decision.reason === 'port') return { status: 403, html: errorPage('port', host), headers: { 'x-lachan-block': 'port' } };
  if (decision.reason === 'exam') return { status: 403, html: examBlockPage(host, reference, organisationOf(policy)), headers: { 'x-lachan-block': 'exam' } };
  const html = blockPage({
    host,
    category: decision.category,
    profileId: decision.profile,
    profileName: policy.profile(decision.profile)?.name ?? decision.profile,
    reference,
    reason: decision.reason,
    organisation: organisationOf(policy),
  });
  return { status: 403, html, headers: { 'x-lachan-block': decision.category ?? decision.reason } };
}

/**
 * The block page for a content verdict (docs/contract.md §8): the category, and the
 * phrase that weighs most among those found (or the page's adult label); `search`
 * when the verdict fell on a search query rather than a page.
 */
export function contentBlockAnswer(policy: Policy, verdict: ContentVerdict, host: string, reference: string, search: boolean): Answer {
  const html = blockPage({
    host,
    category: verdict.category,
    profileId: verdict.profile,
    profileName: policy.profile(verdict.profile)?.name ?? verdict.profile,
    reference,
    organisation: organisationOf(policy),
    content: { phrase: tippingPhrase(verdict), search },
  });
  return { status: 403, html, headers: { 'x-lachan-block': verdict.category } };
}

/** The heaviest phrase of a verdict, as written in the rules; `meta rating` for a page's own adult label. */
export function tippingPhrase(verdict: ContentVerdict): string {
  if (verdict.reason === 'rating') return 'meta rating';
  let best = '';
  let bestWeight = -Infinity;
  for (const evidence of verdict.phrases) {
    // Evidence reads `phrase (weight)` (src/policy/phrases.ts).
    const open = evidence.lastIndexOf(' (');
    const weight = Number(evidence.slice(open + 2, -1));
    if (open > 0 && weight > bestWeight) {
      bestWeight = weight;
      best = evidence.slice(0, open);
    }
  }
  return best;
}

/** Writes an answer as the HTTP response; a response already under way can only be cut. */
export function sendAnswer(res: ServerResponse, answer: Answer, extra: Readonly<Record<string, string>> = NO_HEADERS): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(answer.status, {
    'content-type': HTML,
    'content-length': Buffer.byteLength(answer.html),
    'cache-control': 'no-store',
    via: VIA,
    ...answer.headers,
    ...extra,
  });
  // Node leaves the body out of an answer to HEAD.
  res.end(answer.html);
}

/** One of the gateway's own pages (forms, thanks), with its status; `headOnly` for HEAD. */
export function sendHtml(res: ServerResponse, status: number, html: string, headOnly: boolean, extra: Readonly<Record<string, string>> = NO_HEADERS): void {
  res.writeHead(status, { 'content-type': HTML, 'content-length': Buffer.byteLength(html), 'cache-control': 'no-store', ...extra });
  res.end(headOnly ? undefined : html);
}

/** A complete HTTP/1.1 response written on a raw socket, then closed. */
export function writeRawAnswer(socket: Duplex, answer: Answer): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = Buffer.from(answer.html);
  let head = `HTTP/1.1 ${answer.status} ${STATUS_TEXT[answer.status] ?? 'Error'}\r\nContent-Type: ${HTML}\r\nContent-Length: ${body.length}\r\nCache-Control: no-store\r\nConnection: close\r\nVia: ${VIA}\r\n`;
  for (const [name, value] of Object.entries(answer.headers)) head += `${fieldName(name)}: ${value}\r\n`;
  socket.end(Buffer.concat([Buffer.from(`${head}\r\n`), body]));
}

/** `x-lachan-block` as `X-Lachan-Block`: the spelling raw answers have always used. */
function fieldName(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_match, dash: string, letter: string) => `${dash}${letter.toUpperCase()}`);
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  407: 'Proxy Authentication Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  504: 'Gateway Timeout',
};
