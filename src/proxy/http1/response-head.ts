import { badResponse, type OriginError } from '../origin-error.js';

/**
 * Parses one HTTP/1 response head, strictly where it matters for a proxy (response
 * splitting and smuggling): a status line that is not `HTTP/1.0` or `HTTP/1.1` and three
 * digits, a field name that is not a token, a control character or a bare CR or LF, a
 * folded line, Content-Length together with Transfer-Encoding, Content-Length values
 * that differ, a transfer coding other than chunked: each is an OriginError, returned,
 * never thrown.
 */

/** How the body of a response is delimited (numbers: tests and properties compare them). */
export const Framing = { None: 0, Fixed: 1, Chunked: 2, UntilClose: 3 } as const;
export type Framing = (typeof Framing)[keyof typeof Framing];

/** The parsed response head: only what framing and reuse need, besides the fields passed on. */
export interface ResponseHead {
  status: number;
  /** Name, value, name, value…; Content-Length once, in one spelling. */
  fields: string[];
  framing: Framing;
  length: number;
  keepAlive: boolean;
}

/** A control character other than HTAB, CR and LF, or DEL (CR and LF are checked line by line). */
export const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** `HTTP/1.0` or `HTTP/1.1`, a space, a code 100–999, then the end or a space before the reason. */
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: |$)/;
const CLOSE_TOKEN = /(?:^|[\s,])close(?:$|[\s,])/i;
const KEEP_ALIVE_TOKEN = /(?:^|[\s,])keep-alive(?:$|[\s,])/i;
const DIGITS = /^\d{1,15}$/;

/** `text` from `start`, without the spaces and tabs (HTTP's OWS, nothing else) at either end. */
function trimOptionalWhitespace(text: string, start: number): string {
  let end = text.length;
  while (start < end && (text.charCodeAt(start) === 0x20 || text.charCodeAt(start) === 0x09)) start++;
  while (end > start && (text.charCodeAt(end - 1) === 0x20 || text.charCodeAt(end - 1) === 0x09)) end--;
  return text.slice(start, end);
}

/**
 * Parses a response head (without its final blank line) for a request of the given
 * kind. Returns an OriginError for anything a strict HTTP/1.1 parser refuses.
 */
export function parseResponseHead(text: string, isHead: boolean): ResponseHead | OriginError {
  if (CONTROL.test(text)) return badResponse('control character in the response head');
  const lines = text.split('\r\n');
  const statusLine = lines[0]!;
  if (statusLine.indexOf('\n') !== -1 || statusLine.indexOf('\r') !== -1) return badResponse('bare CR or LF in the response head');
  const statusMatch = STATUS_LINE.exec(statusLine);
  if (statusMatch === null) return badResponse('not an HTTP/1.x status line with a three-digit code');
  const status = Number(statusMatch[2]);
  const http10 = statusMatch[1] === '0';
  const fields: string[] = [];
  let length = -1;
  let transferEncoding: string | null = null;
  let connection: string | null = null;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    // A CR or LF left after splitting on CRLF is a bare one: response splitting.
    if (line.indexOf('\n') !== -1 || line.indexOf('\r') !== -1) return badResponse('bare CR or LF in the response head');
    const colon = line.indexOf(':');
    if (colon <= 0) return badResponse('field line without a name');
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return badResponse('field name is not a token (folded or malformed line)');
    const value = trimOptionalWhitespace(line, colon + 1);
    // Only fields starting c or t matter for framing: skip the lower-casing for the rest.
    const first = name.charCodeAt(0) | 0x20;
    if (first === 0x63 || first === 0x74) {
      const lower = name.toLowerCase();
      if (lower === 'content-length') {
        for (const part of value.split(',')) {
          const item = trimOptionalWhitespace(part, 0);
          if (!DIGITS.test(item)) return badResponse('malformed Content-Length');
          const n = Number(item);
          if (length !== -1 && n !== length) return badResponse('Content-Length values differ');
          length = n;
        }
        // Passed on once, in one spelling (below): `5, 5` or two fields would be read differently by different clients.
        continue;
      } else if (lower === 'transfer-encoding') {
        transferEncoding = transferEncoding === null ? value : `${transferEncoding}, ${value}`;
      } else if (lower === 'connection') {
        connection = connection === null ? value : `${connection}, ${value}`;
      }
    }
    fields.push(name, value);
  }
  if (transferEncoding !== null && length !== -1) return badResponse('both Content-Length and Transfer-Encoding');
  if (length !== -1) fields.push('Content-Length', String(length));
  let keepAlive = !http10;
  if (connection !== null) {
    if (CLOSE_TOKEN.test(connection)) keepAlive = false;
    else if (http10 && KEEP_ALIVE_TOKEN.test(connection)) keepAlive = true;
  }
  let framing: Framing;
  if (isHead || status < 200 || status === 204 || status === 304) framing = Framing.None;
  else if (transferEncoding !== null) {
    // Only chunked is taken off: the client's response is re-framed without Transfer-Encoding,
    // so any other coding (gzip, chunked; or gzip alone, read until close) would reach it undeclared.
    if (trimOptionalWhitespace(transferEncoding, 0).toLowerCase() !== 'chunked') return badResponse('a transfer coding other than chunked');
    framing = Framing.Chunked;
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing; do not reuse.
    if (http10) keepAlive = false;
  } else if (length !== -1) framing = length === 0 ? Framing.None : Framing.Fixed;
  else framing = Framing.UntilClose;
  if (framing === Framing.UntilClose) keepAlive = false;
  return { status, fields, framing, length, keepAlive };
}
