import { lookup, Resolver as DnsResolver } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { canonicalAddress, DestinationGuard } from './addresses.js';

/** Why a destination may not be dialled; mapped to pages by the proxy. */
export type ResolveErrorCode = 'LACHAN_DNS_FAILED' | 'LACHAN_FORBIDDEN_DESTINATION';

export class ResolveError extends Error {
  constructor(
    readonly code: ResolveErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ResolveError';
  }
}

export interface Destination {
  readonly address: string;
  readonly family: 4 | 6;
  /** True when the name came from --hosts-file: the school meant it, local or not. */
  readonly fromHostsFile: boolean;
}

/**
 * Parses /etc/hosts format: `ADDRESS NAME [ALIAS…]`, `#` comments. Later lines do not
 * override earlier ones, as in glibc. Addresses are kept in canonical form (an
 * IPv4-mapped address as its IPv4 address): the address dialled is the one written.
 */
export function parseHostsFile(text: string): Map<string, Destination> {
  const map = new Map<string, Destination>();
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.replace(/#.*/, '').trim();
    if (line === '') continue;
    const [address, ...names] = line.split(/\s+/);
    const parsed = address === undefined || isIP(address) === 0 ? null : canonicalAddress(address);
    if (parsed === null) continue;
    const destination: Destination = { address: parsed.text, family: parsed.family, fromHostsFile: true };
    for (const name of names) {
      const key = name.toLowerCase().replace(/\.$/, '');
      if (!map.has(key)) map.set(key, destination);
    }
  }
  return map;
}

const DNS_CACHE_MS = 60_000;
/** TTLs are honoured within these bounds: a zero TTL would mean a query per request. */
const DNS_MIN_TTL_MS = 5_000;
const DNS_MAX_TTL_MS = 60 * 60_000;
const DNS_NEGATIVE_CACHE_MS = 5_000;
const DNS_CACHE_LIMIT = 10_000;
const OWN_ADDRESSES_MAX_AGE_MS = 60_000;

interface CachedAnswer {
  readonly expires: number;
  readonly destination: Destination | null;
  readonly error: string | null;
}

/**
 * Resolves request hosts to the one address the proxy dials, so that the address
 * checked is the address connected to (no DNS rebinding between check and connect).
 * Loopback, link-local, unspecified and the gateway's own addresses are refused,
 * in every spelling and every IPv6 form that carries them (see addresses.ts), unless
 * the hosts file names them on purpose (as squid's to_localhost).
 */
export class Resolver {
  private readonly hosts: ReadonlyMap<string, Destination>;
  private readonly cache = new Map<string, CachedAnswer>();
  private readonly inFlight = new Map<string, Promise<Destination>>();
  private guard: DestinationGuard;
  /** When the interfaces' addresses were last read (null: fixed addresses were given). */
  private ownReadAt: number | null;
  /** Short timeouts: a gateway on a slow link falls back to the system resolver rather than hang. */
  private readonly dns = new DnsResolver({ timeout: 1500, tries: 2 });

  /** `dnsServers`: `ADDRESS` or `ADDRESS:PORT` to ask instead of the system's (the school's own resolver). */
  /** `ownAddresses`: the gateway's addresses (default: those of its network interfaces, read again every minute). */
  constructor(hostsFile: string | null, dnsServers: readonly string[] = [], ownAddresses: Iterable<string> | null = null) {
    this.hosts = hostsFile === null ? new Map() : parseHostsFile(readFileSync(hostsFile, 'utf8'));
    if (dnsServers.length > 0) this.dns.setServers([...dnsServers]);
    this.guard = new DestinationGuard(ownAddresses ?? interfaceAddresses());
    this.ownReadAt = ownAddresses === null ? Date.now() : null;
  }

  /** `host` as URL.hostname writes it (IPv6 in brackets). */
  async resolve(host: string): Promise<Destination> {
    const bare = host.startsWith('[') ? host.slice(1, -1) : host.endsWith('.') ? host.slice(0, -1) : host;
    const mapped = this.hosts.get(bare);
    if (mapped !== undefined) return mapped;

    // Any spelling a socket would take for an address (`127.1`, `0x7f.0.0.1`) is one, not a name.
    if (canonicalAddress(bare) !== null) return this.vet({ address: bare, family: 4, fromHostsFile: false }, host);

    const now = Date.now();
    const cached = this.cache.get(bare);
    if (cached !== undefined && cached.expires > now) {
      if (cached.destination === null) throw new ResolveError('LACHAN_DNS_FAILED', cached.error ?? `cannot resolve ${host}`);
      return this.vet(cached.destination, host);
    }
    // Concurrent first requests for a name share one lookup (libuv has few resolver threads).
    let pending = this.inFlight.get(bare);
    if (pending === undefined) {
      pending = this.lookupAndRemember(bare, host, now).finally(() => this.inFlight.delete(bare));
      this.inFlight.set(bare, pending);
    }
    return this.vet(await pending, host);
  }

  private async lookupAndRemember(bare: string, host: string, now: number): Promise<Destination> {
    let answer: { destination: Destination; ttlMs: number };
    try {
      answer = await this.query(bare);
    } catch (error) {
      const message = `cannot resolve ${host}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`;
      this.remember(bare, { expires: now + DNS_NEGATIVE_CACHE_MS, destination: null, error: message });
      throw new ResolveError('LACHAN_DNS_FAILED', message);
    }
    this.remember(bare, { expires: now + answer.ttlMs, destination: answer.destination, error: null });
    return answer.destination;
  }

  /**
   * Asks DNS directly, so the answer comes with its TTL (A first, then AAAA); names
   * DNS does not know (the system's /etc/hosts, mDNS) go through getaddrinfo, cached
   * for a minute.
   */
  private async query(name: string): Promise<{ destination: Destination; ttlMs: number }> {
    for (const family of [4, 6] as const) {
      try {
        const records = family === 4 ? await this.dns.resolve4(name, { ttl: true }) : await this.dns.resolve6(name, { ttl: true });
        const first = records[0];
        if (first !== undefined) {
          const ttlMs = Math.min(DNS_MAX_TTL_MS, Math.max(DNS_MIN_TTL_MS, first.ttl * 1000));
          return { destination: { address: first.address, family, fromHostsFile: false }, ttlMs };
        }
      } catch {
        // no such record, or no answer: try the next family, then the system resolver
      }
    }
    const system = await lookup(name, { verbatim: false });
    return { destination: { address: system.address, family: system.family === 6 ? 6 : 4, fromHostsFile: false }, ttlMs: DNS_CACHE_MS };
  }

  private remember(name: string, answer: CachedAnswer): void {
    if (this.cache.size >= DNS_CACHE_LIMIT) this.cache.clear();
    this.cache.set(name, answer);
  }

  /** The destination to dial, in canonical form, once it is known not to be the gateway or local. */
  private vet(destination: Destination, host: string): Destination {
    const parsed = canonicalAddress(destination.address);
    // A gateway's address can change under it (DHCP, a new uplink): the new one is protected within a minute.
    if (this.ownReadAt !== null && Date.now() - this.ownReadAt > OWN_ADDRESSES_MAX_AGE_MS) {
      this.guard = new DestinationGuard(interfaceAddresses());
      this.ownReadAt = Date.now();
    }
    if (parsed === null || this.guard.refuses(parsed)) {
      throw new ResolveError('LACHAN_FORBIDDEN_DESTINATION', `${host} resolves to ${destination.address}, which is the gateway or a local address`);
    }
    return parsed.text === destination.address && parsed.family === destination.family
      ? destination
      : { address: parsed.text, family: parsed.family, fromHostsFile: false };
  }
}

/** Whether an address is loopback, link-local or unspecified, in any form (the gateway's own addresses aside). */
export function isForbiddenAddress(address: string): boolean {
  const parsed = canonicalAddress(address);
  return parsed === null || NO_OWN_ADDRESSES.refuses(parsed);
}

const NO_OWN_ADDRESSES = new DestinationGuard([]);

function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((entry) => entry.address));
}
