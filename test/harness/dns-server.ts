import { createSocket } from 'node:dgram';
import ipaddr from 'ipaddr.js';

export interface DnsZone {
  /** Name (lower case, no trailing dot) → its A and AAAA answers. */
  readonly [name: string]: { readonly a?: readonly string[]; readonly aaaa?: readonly string[] };
}

export interface RunningDnsServer {
  /** `127.0.0.1:PORT`, for `--dns-server`. */
  readonly address: string;
  close(): Promise<void>;
}

const TYPE_A = 1;
const TYPE_AAAA = 28;

/**
 * A real DNS server on loopback UDP that answers A and AAAA questions from `zone`
 * (TTL 60 s), with an empty answer for a known name without records of the asked type
 * and NXDOMAIN for unknown names: enough for the proxy's resolver to be asked for real.
 */
export async function startDnsServer(zone: DnsZone): Promise<RunningDnsServer> {
  const server = createSocket('udp4');
  server.on('message', (query, peer) => {
    let end = 12;
    const labels: string[] = [];
    while (query[end] !== 0 && end < query.length) {
      const length = query[end]!;
      labels.push(query.toString('latin1', end + 1, end + 1 + length));
      end += length + 1;
    }
    const type = query.readUInt16BE(end + 1);
    const question = query.subarray(12, end + 5);
    const records = zone[labels.join('.').toLowerCase()];
    const addresses = records === undefined ? [] : type === TYPE_A ? (records.a ?? []) : type === TYPE_AAAA ? (records.aaaa ?? []) : [];
    const header = Buffer.alloc(12);
    query.copy(header, 0, 0, 2);
    header.writeUInt16BE(records === undefined ? 0x8183 : 0x8180, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(addresses.length, 6);
    const answers = addresses.map((text) => {
      const bytes = Buffer.from(ipaddr.parse(text).toByteArray());
      const fixed = Buffer.alloc(12);
      fixed.writeUInt16BE(0xc00c, 0); // the question's name
      fixed.writeUInt16BE(type, 2);
      fixed.writeUInt16BE(1, 4);
      fixed.writeUInt32BE(60, 6);
      fixed.writeUInt16BE(bytes.length, 10);
      return Buffer.concat([fixed, bytes]);
    });
    server.send(Buffer.concat([header, question, ...answers]), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
