import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';

/** HTTP helpers the dashboard's pages and forms share. */

export const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  // Everything is served from here: no CDN, no inline script, no framing.
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** Bodies of dashboard forms and JSON calls. */
export const FORM_LIMITS = { maxBytes: 16 * 1024, maxInflatedBytes: 16 * 1024 };

export function cookies(request: IncomingMessage): Map<string, string> {
  const jar = new Map<string, string>();
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) jar.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return jar;
}

/** Over TLS (directly, or through a reverse proxy that says so) cookies carry Secure. */
export function overTls(request: IncomingMessage): boolean {
  return (request.socket as TLSSocket).encrypted === true || request.headers['x-forwarded-proto'] === 'https';
}

export function cookie(request: IncomingMessage, name: string, value: string, maxAgeSeconds: number, path = '/'): string {
  return `${name}=${value}; Path=${path}; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Strict${overTls(request) ? '; Secure' : ''}`;
}

/** Constant-time comparison of a presented secret (CSRF token) with the expected one. */
export function sameSecret(a: string | undefined | null, b: string): boolean {
  if (typeof a !== 'string') return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Whether the request is a browser's navigation or form (a page answers it), not a script's JSON call. */
export function wantsPage(request: IncomingMessage): boolean {
  return /\btext\/html\b/.test(String(request.headers.accept ?? ''));
}

export function sendHtml(response: ServerResponse, status: number, html: string, headers: Record<string, string | string[]> = {}): void {
  response.writeHead(status, { ...PAGE_HEADERS, 'content-length': Buffer.byteLength(html), ...headers });
  response.end(html);
}

export function redirect(response: ServerResponse, location: string, headers: Record<string, string | string[]> = {}): void {
  response.writeHead(303, { location, 'cache-control': 'no-store', 'content-length': 0, ...headers });
  response.end();
}
