import ipaddr from 'ipaddr.js';

/**
 * When the HTTPS of a device range may be intercepted with the school CA:
 * `learned` only for devices that have shown they trust it (the default: a device
 * without the CA installed never sees a certificate warning), `always` for every
 * device (IT staff installed the CA on the whole range), `never` for none.
 */
export type InterceptMode = 'always' | 'learned' | 'never';
export const INTERCEPT_MODES: readonly InterceptMode[] = ['always', 'learned', 'never'];
export const DEFAULT_INTERCEPT_MODE: InterceptMode = 'learned';

/** One `clients:` entry of policy.yaml, already validated. */
export interface ClientRule {
  readonly cidr: string;
  readonly profile: string;
  /** Absent: the policy's default mode. */
  readonly intercept?: InterceptMode;
}

type ParsedRange = readonly [ipaddr.IPv4 | ipaddr.IPv6, number];

interface CompiledClientRule {
  readonly range: ParsedRange;
  readonly profile: string;
  readonly intercept: InterceptMode;
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

/** The client range an address falls in, as policy.yaml wrote it; `cidr` null for the default. */
export interface ClientRange {
  readonly cidr: string | null;
  readonly profile: string;
  readonly intercept: InterceptMode;
}

interface CompiledClientRule extends ClientRange {
  readonly range: ParsedRange;
}

/**
 * Maps a client address to its range (profile and interception mode): the most
 * specific matching range wins (a /24 inside a /16 overrides it), otherwise the
 * defaults. Client addresses are few per school, so answers are memoised in a small
 * bounded map.
 */
export class ClientMap {
  private readonly rules: readonly CompiledClientRule[];
  private readonly fallback: ClientRange;
  private readonly memo = new Map<string, ClientRange>();
  private static readonly MEMO_LIMIT = 65_536;

  constructor(rules: readonly ClientRule[], defaultProfile: string, defaultIntercept: InterceptMode = DEFAULT_INTERCEPT_MODE) {
    this.fallback = { cidr: null, profile: defaultProfile, intercept: defaultIntercept };
    this.rules = rules
      .map((rule) => ({ cidr: rule.cidr, range: parseCidr(rule.cidr), profile: rule.profile, intercept: rule.intercept ?? defaultIntercept }))
      // Longest prefix first so the first hit is the most specific.
      .sort((a, b) => b.range[1] - a.range[1]);
  }

  profileFor(address: string): string {
    return this.rangeFor(address).profile;
  }

  rangeFor(address: string): ClientRange {
    const known = this.memo.get(address);
    if (known !== undefined) return known;
    const range = this.resolve(address);
    if (this.memo.size >= ClientMap.MEMO_LIMIT) this.memo.clear();
    this.memo.set(address, range);
    return range;
  }

  private resolve(address: string): ClientRange {
    let parsed: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      parsed = ipaddr.process(address.startsWith('[') ? address.slice(1, -1) : address);
    } catch {
      return this.fallback;
    }
    for (const rule of this.rules) {
      const [network] = rule.range;
      if (network.kind() === parsed.kind() && parsed.match(rule.range as [typeof parsed, number])) return rule;
    }
    return this.fallback;
  }
}
