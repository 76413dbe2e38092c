import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** RFC 9110 §7.6.1 hop-by-hop fields, plus the proxy's own credentials. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect',
]);

export const VIA = '1.1 lachan';

function connectionTokens(value: string | string[] | undefined): Set<string> | null {
  if (value === undefined) return null;
  const text = Array.isArray(value) ? value.join(',') : value;
  const tokens = new Set<string>();
  for (const token of text.split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '') tokens.add(name);
  }
  return tokens;
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

/** Response headers for the client: hop-by-hop fields dropped, `Via` added. */
export function clientResponseHeaders(upstream: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const listed = connectionTokens(upstream.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in upstream) {
    if (HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    const value = upstream[name];
    if (value !== undefined) out[name] = value;
  }
  out.via = upstream.via === undefined ? VIA : `${String(upstream.via)}, ${VIA}`;
  return out;
}
