/**
 * The one canonical form of where a request goes, built by every way into the proxy
 * (absolute form, transparent `Host`, CONNECT authority, TLS server name, requests
 * inside an intercepted tunnel, upgrades) and by `lachan check`, so that the name a
 * request is decided on, logged under and shown on the block page is one spelling
 * whichever way it came (docs/contract.md §3: case and a trailing dot do not matter).
 *
 * Parsing is WHATWG URL's, as a browser does it: userinfo dropped, IPv4 in any notation
 * normalised, IDN to punycode, IPv6 compressed and in brackets.
 */
import { isIpLiteral } from '../policy/hostname.js';

export type Scheme = 'http' | 'https';

export interface Target {
  readonly scheme: Scheme;
  /**
   * Lower case, punycode, IPv4 normalised, IPv6 in brackets, no trailing dot: the form
   * the policy engine decides on and events record.
   */
  readonly host: string;
  readonly port: number;
  /**
   * `host[:port]` as the request spelt it after URL normalisation (a trailing dot
   * kept), for the origin's `Host` header: the origin sees what the client asked for.
   */
  readonly authority: string;
  /** The path without the query: what events record. */
  readonly path: string;
  /** The raw path with its query: what is decided and sent. */
  readonly pathAndQuery: string;
}

const SCHEME_PREFIX = /^[a-z][a-z0-9+.-]*:\/\//i;
/** A CONNECT authority: `host:port`, nothing else (no userinfo, path or spaces). */
const AUTHORITY = /^[^\s/?#@]+:\d{1,5}$/;

export function defaultPort(scheme: Scheme): number {
  return scheme === 'https' ? 443 : 80;
}

/** The host without IPv6 brackets: for DNS, SNI and certificates. */
export function bareHost(host: string): string {
  return host.charCodeAt(0) === 0x5b /* [ */ ? host.slice(1, -1) : host;
}

/**
 * The TLS server name for `host` (a target's host, or its bareHost): SNI carries names
 * only, so an address literal goes without, and its certificate is checked against the
 * address dialled.
 */
export function sniName(host: string): string | undefined {
  // No name has a colon: one means an IPv6 address without its brackets.
  return isIpLiteral(host) || host.includes(':') ? undefined : host;
}

function withoutTrailingDot(hostname: string): string {
  return hostname.charCodeAt(hostname.length - 1) === 0x2e /* . */ ? hostname.slice(0, -1) : hostname;
}

/**
 * The target of a parsed URL: `http:` and `https:`, and `ws:` / `wss:` (a WebSocket
 * upgrade goes over them); null for any other scheme or an empty host.
 */
export function targetFromUrl(url: URL): Target | null {
  const protocol = url.protocol;
  const scheme: Scheme | null = protocol === 'http:' || protocol === 'ws:' ? 'http' : protocol === 'https:' || protocol === 'wss:' ? 'https' : null;
  if (scheme === null || url.hostname === '') return null;
  const pathname = url.pathname;
  return {
    scheme,
    host: withoutTrailingDot(url.hostname),
    port: url.port === '' ? defaultPort(scheme) : Number(url.port),
    authority: url.host,
    path: pathname,
    pathAndQuery: `${pathname}${url.search}`,
  };
}

/** An absolute-form request target (`http://host/path`); null when it is not one. */
export function parseAbsoluteTarget(text: string): Target | null {
  const url = parseUrl(text);
  return url === null ? null : targetFromUrl(url);
}

/** An origin-form request (`/path`) for `authority` (a `Host` header, or an intercepted tunnel's host). */
export function parseOriginFormTarget(scheme: Scheme, authority: string, pathAndQuery: string): Target | null {
  if (pathAndQuery.charCodeAt(0) !== 0x2f /* / */) return null;
  return parseAbsoluteTarget(`${scheme}://${authority}${pathAndQuery}`);
}

/** `host:port` of a CONNECT; null when malformed or the port is out of range. */
export function parseConnectTarget(authority: string): Target | null {
  if (!AUTHORITY.test(authority)) return null;
  const port = Number(authority.slice(authority.lastIndexOf(':') + 1));
  if (port < 1 || port > 65535) return null;
  const url = parseUrl(`http://${authority}`);
  if (url === null || url.hostname === '') return null;
  const host = withoutTrailingDot(url.hostname);
  return { scheme: 'https', host, port, authority: `${host}:${port}`, path: '/', pathAndQuery: '/' };
}

/** The target a TLS ClientHello names (transparent HTTPS); null when the name is no host. */
export function serverNameTarget(serverName: string, port: number): Target | null {
  if (serverName.includes(':') || serverName.includes('/')) return null;
  return parseConnectTarget(`${serverName}:${port}`);
}

/**
 * What a person typed (`lachan check`, the report form): a URL, or a bare
 * `example.com/path`, which is taken as http.
 */
export function parseTypedTarget(text: string): Target | null {
  const url = parseUrl(SCHEME_PREFIX.test(text) ? text : `http://${text}`);
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) return null;
  return targetFromUrl(url);
}

function parseUrl(text: string): URL | null {
  try {
    return new URL(text);
  } catch {
    return null;
  }
}
