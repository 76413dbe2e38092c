import ipaddr from 'ipaddr.js';

/**
 * One place where IP addresses are read and compared. Every check on a destination
 * works on the parsed address, never on its spelling: `::ffff:192.0.2.2`,
 * `0:0:0:0:0:ffff:c000:0202`, `64:ff9b::c000:202` and `2002:c000:0202::` all name
 * (or lead to) 192.0.2.2, and are refused exactly when 192.0.2.2 is.
 */
export interface CanonicalAddress {
  /** The address to dial: dotted quad, or IPv6 in its compressed form (RFC 5952); an IPv4-mapped IPv6 address is its IPv4 address. */
  readonly text: string;
  readonly family: 4 | 6;
  /** Every IPv4 address this one carries (an IPv4 address carries itself): the IPv4-compatible, NAT64, SIIT, 6to4 and Teredo forms lead there. */
  readonly ipv4: readonly string[];
}

/** Ranges no destination may be in: the gateway itself and what only the gateway can reach. */
const FORBIDDEN_RANGES: ReadonlySet<string> = new Set(['loopback', 'linkLocal', 'unspecified', 'broadcast']);

/**
 * Parses an IPv4 or IPv6 address in any form a resolver, URL parser or socket would
 * accept (shortened IPv4 forms and leading zeros read as inet_aton reads them, an
 * IPv4 tail in IPv6, a zone id, which is dropped). Null when `text` is no address.
 */
export function canonicalAddress(text: string): CanonicalAddress | null {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (bare.indexOf(':') === -1) {
    if (!ipaddr.IPv4.isValid(bare)) return null;
    const v4 = ipaddr.IPv4.parse(bare).toString();
    return { text: v4, family: 4, ipv4: [v4] };
  }
  const bytes = ipv6Bytes(bare);
  if (bytes === null) return null;
  if (isZero(bytes, 0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) {
    const v4 = quad(bytes, 12);
    return { text: v4, family: 4, ipv4: [v4] };
  }
  return { text: ipaddr.fromByteArray(bytes).toString(), family: 6, ipv4: embeddedIpv4(bytes) };
}

/** The IPv4 addresses an IPv6 address leads to through a translator or tunnel. */
function embeddedIpv4(bytes: readonly number[]): string[] {
  // IPv4-compatible (::a.b.c.d, deprecated) and SIIT (::ffff:0:a.b.c.d).
  if (isZero(bytes, 0, 12) || (isZero(bytes, 0, 8) && bytes[8] === 0xff && bytes[9] === 0xff && isZero(bytes, 10, 12))) return [quad(bytes, 12)];
  // NAT64, well-known prefix 64:ff9b::/96 and local-use 64:ff9b:1::/48 (read as /96, its common length).
  if (bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b) return [quad(bytes, 12)];
  // 6to4: 2002:AABB:CCDD::/48.
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return [quad(bytes, 2)];
  // Teredo: 2001:0::/32, the server's address, then the client's with every bit flipped.
  if (bytes[0] === 0x20 && bytes[1] === 0x01 && bytes[2] === 0 && bytes[3] === 0) {
    return [
      quad(bytes, 4),
      quad(
        bytes.slice(12).map((b) => b ^ 0xff),
        0,
      ),
    ];
  }
  return [];
}

/** The 16 bytes of an IPv6 address; an IPv4 tail (`::ffff:1.2.3.4`) is read as its own two groups (ipaddr.js would make any such address IPv4-mapped). */
function ipv6Bytes(text: string): number[] | null {
  const zone = text.indexOf('%');
  let address = zone === -1 ? text : text.slice(0, zone);
  const lastColon = address.lastIndexOf(':');
  const tail = address.slice(lastColon + 1);
  if (tail.indexOf('.') !== -1) {
    if (!ipaddr.IPv4.isValidFourPartDecimal(tail)) return null;
    const [a, b, c, d] = ipaddr.IPv4.parse(tail).octets as [number, number, number, number];
    address = `${address.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  if (!ipaddr.IPv6.isValid(address)) return null;
  return ipaddr.IPv6.parse(address).toByteArray();
}

function isZero(bytes: readonly number[], from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (bytes[i] !== 0) return false;
  return true;
}

function quad(bytes: readonly number[], at: number): string {
  return `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}`;
}

/**
 * Decides whether a destination is the gateway or only reachable from it: loopback,
 * link-local, unspecified, broadcast, or one of the gateway's own addresses, in
 * whatever form, directly or through an IPv4 address it carries.
 */
export class DestinationGuard {
  private readonly own: ReadonlySet<string>;

  /** `ownAddresses`: the gateway's interface addresses, in any spelling. */
  constructor(ownAddresses: Iterable<string>) {
    const own = new Set<string>();
    for (const text of ownAddresses) {
      const parsed = canonicalAddress(text);
      if (parsed !== null) own.add(parsed.text);
    }
    this.own = own;
  }

  refuses(address: CanonicalAddress): boolean {
    if (this.own.has(address.text) || FORBIDDEN_RANGES.has(ipaddr.parse(address.text).range())) return true;
    for (const v4 of address.ipv4) {
      if (v4 !== address.text && (this.own.has(v4) || FORBIDDEN_RANGES.has(ipaddr.IPv4.parse(v4).range()))) return true;
    }
    return false;
  }
}

/** Whether two spellings name the same address (false when either is no address). */
export function sameAddress(a: string, b: string): boolean {
  const left = canonicalAddress(a);
  return left !== null && left.text === canonicalAddress(b)?.text;
}
