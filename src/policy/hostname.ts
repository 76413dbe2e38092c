/**
 * Host names in the one form the matchers compare: what WHATWG `new URL().hostname`
 * yields for a request (lower case, punycode, IPv4 normalised to dotted decimal from
 * every notation the parser accepts, IPv6 in brackets). Rule entries are brought to
 * the same form once, at load.
 *
 * The engine expects request hosts in exactly that form: callers pass
 * `new URL(...).hostname` (or the host of a CONNECT parsed the same way) and never a
 * raw Host header. The matchers tolerate one trailing dot (`example.com.`), which
 * URL.hostname keeps.
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
  if (isCleanAscii(text)) return needsNumericCanonicalisation(text, 0, text.length) ? slowCanonical(text) : text;
  return slowCanonical(text);
}

/**
 * True when `text.slice(start, end)` (clean ASCII) is one the URL parser reads as IPv4
 * in a form other than the dotted quad it writes: WHATWG's "ends in a number" hosts
 * (`2130706433`, `0x7f.1`, `010.0.0.1` are 127.0.0.1, 127.0.0.1 and 8.0.0.1). Such a
 * rule must be brought to the dotted quad requests carry, or refused when it is not
 * an address (`example.123`).
 */
export function needsNumericCanonicalisation(text: string, start: number, end: number): boolean {
  const last = text.charCodeAt(end - 1);
  const digitEnd = last >= 0x30 && last <= 0x39;
  const labelStart = text.lastIndexOf('.', end - 1) + 1;
  const from = Math.max(labelStart, start);
  if (!digitEnd && !((text.charCodeAt(from) === 0x30 && text.charCodeAt(from + 1) === 0x78) /* 0x */)) return false;
  if (!isNumericLabel(text, from, end)) return false;
  return !isDottedQuad(text, start, end);
}

/** A decimal label, or `0x` followed by hex digits: what the IPv4 parser takes as a number. */
function isNumericLabel(text: string, start: number, end: number): boolean {
  if (end - start >= 2 && text.charCodeAt(start) === 0x30 && text.charCodeAt(start + 1) === 0x78) {
    for (let i = start + 2; i < end; i++) {
      const c = text.charCodeAt(i);
      if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
    }
    return true;
  }
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** Four decimal parts 0–255 without leading zeros: IPv4 exactly as URL.hostname writes it. */
function isDottedQuad(text: string, start: number, end: number): boolean {
  let parts = 0;
  let value = 0;
  let digits = 0;
  for (let i = start; i <= end; i++) {
    const c = i < end ? text.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (digits === 0 || value > 255 || ++parts > 4) return false;
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits === 1 && value === 0) return false;
      value = value * 10 + (c - 0x30);
      if (++digits > 3) return false;
    } else {
      return false;
    }
  }
  return parts === 4;
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
  // IPv6, bracketed or bare: compared in URL.hostname's compressed, bracketed form.
  if (text.includes(':')) return ipv6Canonical(text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text);
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

function ipv6Canonical(bare: string): string | null {
  if (!/^[0-9a-fA-F:.]+$/.test(bare)) return null;
  try {
    return new URL(`http://[${bare}]/`).hostname;
  } catch {
    return null;
  }
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
