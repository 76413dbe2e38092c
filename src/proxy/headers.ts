import type { IncomingHttpHeaders } from 'node:http';

/** RFC 9110 §7.6.1 hop-by-hop fields, plus the proxy's own credentials. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
]);

export const VIA = '1.1 lachan';

/**
 * The field names a `Connection` header lists beyond `keep-alive` and `close` (which
 * are hop-by-hop anyway), lower-cased; null when it lists none, as nearly every
 * request and response does, so the common case allocates nothing.
 */
function connectionTokens(value: string | string[] | undefined): Set<string> | null {
  if (value === undefined) return null;
  const text = Array.isArray(value) ? value.join(',') : value;
  if (onlyKeepAliveOrClose(text)) return null;
  const tokens = new Set<string>();
  for (const token of text.split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '' && name !== 'keep-alive' && name !== 'close') tokens.add(name);
  }
  return tokens.size === 0 ? null : tokens;
}

function onlyKeepAliveOrClose(text: string): boolean {
  // Exact spellings first: what browsers, servers and curl send.
  if (text === 'keep-alive' || text === 'close' || text === 'Keep-Alive' || text === 'Close') return true;
  const lower = text.trim().toLowerCase();
  return lower === 'keep-alive' || lower === 'close';
}

/**
 * Request headers for the origin: hop-by-hop fields dropped, `Host` set to the
 * request target's authority (never what the client claimed), `Via` added, and no
 * X-Forwarded-For: the client's address stays on the gateway.
 */
export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, authority: string): Record<string, string | string[]> {
  const listed = connectionTokens(incoming.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in incoming) {
    if (HOP_BY_HOP.has(name) || name === 'host' || name === 'via' || name === 'x-forwarded-for' || listed?.has(name)) continue;
    const value = incoming[name];
    if (value !== undefined) out[name] = value;
  }
  out.host = authority;
  out.via = incoming.via === undefined ? VIA : `${String(incoming.via)}, ${VIA}`;
  return out;
}

/**
 * The same rules as `upstreamRequestHeaders`, on the raw `[name, value, …]` list Node
 * keeps (`req.rawHeaders`), giving the flat array undici takes: the forwarding path
 * never makes Node build its parsed header object. Repeated fields stay repeated.
 */
export function upstreamRequestRawHeaders(raw: readonly string[], authority: string): string[] {
  let connection: string | null = null;
  let via: string | null = null;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower === 'connection') connection = connection === null ? raw[i + 1]! : `${connection},${raw[i + 1]!}`;
    else if (lower === 'via') via = via === null ? raw[i + 1]! : `${via}, ${raw[i + 1]!}`;
    else if (!HOP_BY_HOP.has(lower) && lower !== 'host' && lower !== 'x-forwarded-for') out.push(name, raw[i + 1]!);
  }
  const listed = connection === null ? null : connectionTokens(connection);
  if (listed !== null) dropListed(out, listed);
  out.push('host', authority, 'via', via === null ? VIA : `${via}, ${VIA}`);
  return out;
}

function latin1(field: Buffer | string): string {
  return typeof field === 'string' ? field : field.toString('latin1');
}

/** Removes from a flat raw header list every field a `Connection` header named. */
function dropListed(flat: string[], listed: ReadonlySet<string>): void {
  for (let i = flat.length - 2; i >= 0; i -= 2) if (listed.has(flat[i]!.toLowerCase())) flat.splice(i, 2);
}

/** Replaces every field called `name` (any case) in a flat raw header list with one value. */
export function setRawHeader(flat: string[], name: string, value: string): void {
  const lower = name.toLowerCase();
  for (let i = flat.length - 2; i >= 0; i -= 2) if (flat[i]!.toLowerCase() === lower) flat.splice(i, 2);
  flat.push(name, value);
}

/** Whether a request announces a body (RFC 9112 §6.3): a non-zero Content-Length or any Transfer-Encoding. */
export function rawRequestHasBody(raw: readonly string[]): boolean {
  let length: string | null = null;
  let chunked = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    // Cheap first-letter filter: most fields start with neither c nor t.
    const first = name.charCodeAt(0) | 0x20;
    if (first !== 0x63 && first !== 0x74) continue;
    const lower = name.toLowerCase();
    if (lower === 'content-length') length = raw[i + 1]!.trim();
    else if (lower === 'transfer-encoding') chunked = true;
  }
  return length !== null ? length !== '0' : chunked;
}

/**
 * Response headers for the client from the raw `[name, value, …]` list an upstream
 * client gives (undici: latin1 buffers; the origin client: strings), as the flat array
 * `writeHead` takes: hop-by-hop fields (and those `Connection` lists) dropped, `Via`
 * added. Works on the raw form so the hot path builds no header object.
 */
export function clientResponseRawHeaders(raw: readonly (Buffer | string)[]): string[] {
  const flat: string[] = [];
  let listed: Set<string> | null = null;
  let via: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = latin1(raw[i]!);
    const lower = name.toLowerCase();
    if (lower === 'connection') {
      listed = connectionTokens(latin1(raw[i + 1]!));
      continue;
    }
    if (HOP_BY_HOP.has(lower)) continue;
    if (lower === 'via') {
      via = via === null ? latin1(raw[i + 1]!) : `${via}, ${latin1(raw[i + 1]!)}`;
      continue;
    }
    flat.push(name, latin1(raw[i + 1]!));
  }
  if (listed !== null) dropListed(flat, listed);
  flat.push('via', via === null ? VIA : `${via}, ${VIA}`);
  return flat;
}
