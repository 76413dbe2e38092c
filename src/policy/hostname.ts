/**
 * Host names in the one form the matchers compare: what WHATWG `new URL().hostname`
 * yields for a request (lower case, punycode, IPv4 normalised to dotted decimal from
 * every notation the parser accepts, IPv6 in brackets). Rule entries are brought to
 * the same form once, at load.
 */

const MAX_LABEL = 63;
const MAX_HOST = 253;

/**
 * Canonical form of a domain-rule entry, or null when it cannot be a host.
 * Real lists carry trailing spaces, a leading `.`, upper case, raw Unicode names and
 * `_` in labels (not LDH-valid, but served by real DNS), so all of those are accepted.
 */
export function canonicalRuleHost(raw: string): string | null {
  let start = 0;
  let end = raw.length;
  while (start < end && raw.charCodeAt(start) <= 0x20) start++;
  while (end > start && raw.charCodeAt(end - 1) <= 0x20) end--;
  if (start < end && raw.charCodeAt(start) === 0x2e /* . */) start++;
  if (end > start && raw.charCodeAt(end - 1) === 0x2e) end--;
  if (start >= end) return null;
  const text = start === 0 && end === raw.length ? raw : raw.slice(start, end);
  if (isCleanAscii(text)) return text;
  return slowCanonical(text);
}

/** Lower-case ASCII letters, digits, `-`, `_` and well-formed dots: already canonical. */
function isCleanAscii(text: string): boolean {
  if (text.length > MAX_HOST) return false;
  let labelLength = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      if (labelLength === 0) return false;
      labelLength = 0;
      continue;
    }
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f;
    if (!ok) return false;
    if (++labelLength > MAX_LABEL) return false;
  }
  return labelLength > 0;
}

function slowCanonical(text: string): string | null {
  // Characters URL's host parser would silently drop or treat as delimiters must not
  // turn a broken entry into some other valid host.
  if (/[\s/\\?#@:%[\]<>^|*"']/u.test(text)) return null;
  let host: string;
  try {
    host = new URL(`http://${text}`).hostname;
  } catch {
    return null;
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  return isCleanAscii(host) ? host : null;
}

/** True for an IPv4 dotted quad or a bracketed IPv6 address, as URL.hostname writes them. */
export function isIpLiteral(host: string): boolean {
  if (host.length === 0) return false;
  if (host.charCodeAt(0) === 0x5b /* [ */) return true;
  const last = host.charCodeAt(host.length - 1);
  // URL.hostname always writes IPv4 as four decimal parts, and no registrable name
  // ends in a digit-only label, so a final digit means IPv4 once the shape checks out.
  if (last < 0x30 || last > 0x39) return false;
  let dots = 0;
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c === 0x2e) dots++;
    else if (c < 0x30 || c > 0x39) return false;
  }
  return dots === 3;
}
