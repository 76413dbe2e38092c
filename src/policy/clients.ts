import ipaddr from 'ipaddr.js';

/** One `clients:` entry of policy.yaml, already validated. */
export interface ClientRule {
  readonly cidr: string;
  readonly profile: string;
}

type ParsedRange = readonly [ipaddr.IPv4 | ipaddr.IPv6, number];

interface CompiledClientRule {
  readonly range: ParsedRange;
  readonly profile: string;
}

/** Error thrown by {@link parseCidr} for a malformed range; the loader turns it into FILE:LINE. */
export class CidrError extends Error {
  readonly code = 'LACHAN_BAD_CIDR';
}

/** Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address (a /32 or /128). */
export function parseCidr(text: string): ParsedRange {
  try {
    if (text.includes('/')) return ipaddr.parseCIDR(text);
    const address = ipaddr.parse(text);
    return [address, address.kind() === 'ipv4' ? 32 : 128];
  } catch {
    throw new CidrError(`malformed CIDR "${text}"`);
  }
}

/**
 * Maps a client address to its profile: the most specific matching range wins
 * (a /24 inside a /16 overrides it), otherwise the default profile. Client addresses
 * are few per school, so answers are memoised in a small bounded map.
 */
export class ClientMap {
  private readonly rules: readonly CompiledClientRule[];
  private readonly memo = new Map<string, string>();
  private static readonly MEMO_LIMIT = 65_536;

  constructor(rules: readonly ClientRule[], private readonly defaultProfile: string) {
    this.rules = rules
      .map((rule) => ({ range: parseCidr(rule.cidr), profile: rule.profile }))
      // Longest prefix first so the first hit is the most specific.
      .sort((a, b) => b.range[1] - a.range[1]);
  }

  profileFor(address: string): string {
    const known = this.memo.get(address);
    if (known !== undefined) return known;
    const profile = this.resolve(address);
    if (this.memo.size >= ClientMap.MEMO_LIMIT) this.memo.clear();
    this.memo.set(address, profile);
    return profile;
  }

  private resolve(address: string): string {
    let parsed: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      parsed = ipaddr.process(address.startsWith('[') ? address.slice(1, -1) : address);
    } catch {
      return this.defaultProfile;
    }
    for (const rule of this.rules) {
      const [network] = rule.range;
      if (network.kind() === parsed.kind() && parsed.match(rule.range as [typeof parsed, number])) return rule.profile;
    }
    return this.defaultProfile;
  }
}
