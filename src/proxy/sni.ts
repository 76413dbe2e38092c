/**
 * Reads the server name (SNI) from the first bytes of a TLS connection, without
 * terminating it: transparent HTTPS decides on this name and then dials the address
 * the proxy itself resolves for it, so a forged SNI gains nothing.
 */

export type ClientHelloResult =
  | { readonly kind: 'sni'; readonly serverName: string }
  | { readonly kind: 'no-sni' }
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'not-tls' };

const HANDSHAKE = 0x16;
const CLIENT_HELLO = 0x01;
const SERVER_NAME_EXTENSION = 0x0000;
const HOST_NAME = 0x00;
/** A ClientHello larger than this (post-quantum key shares make them ~1.8 KB) is refused. */
export const MAX_CLIENT_HELLO_BYTES = 16 * 1024;

/** Parses a ClientHello spread over one or more TLS records at the start of `data`. */
export function parseClientHello(data: Buffer): ClientHelloResult {
  if (data.length === 0) return { kind: 'incomplete' };
  if (data[0] !== HANDSHAKE) return { kind: 'not-tls' };
  // Reassemble the handshake message from consecutive handshake records.
  const fragments: Buffer[] = [];
  let offset = 0;
  let collected = 0;
  let needed = -1;
  while (needed < 0 || collected < needed) {
    if (offset + 5 > data.length) return { kind: 'incomplete' };
    if (data[offset] !== HANDSHAKE) return { kind: 'not-tls' };
    const length = data.readUInt16BE(offset + 3);
    if (length === 0 || length > MAX_CLIENT_HELLO_BYTES) return { kind: 'not-tls' };
    if (offset + 5 + length > data.length) return { kind: 'incomplete' };
    fragments.push(data.subarray(offset + 5, offset + 5 + length));
    collected += length;
    offset += 5 + length;
    if (needed < 0) {
      const first = fragments[0]!;
      if (first.length < 4) return { kind: 'incomplete' };
      if (first[0] !== CLIENT_HELLO) return { kind: 'not-tls' };
      needed = 4 + ((first[1]! << 16) | (first[2]! << 8) | first[3]!);
      if (needed > MAX_CLIENT_HELLO_BYTES) return { kind: 'not-tls' };
    }
  }
  const hello = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments);
  return readServerName(hello.subarray(4, needed));
}

function readServerName(body: Buffer): ClientHelloResult {
  let p = 2 + 32; // version, random
  if (p + 1 > body.length) return { kind: 'not-tls' };
  p += 1 + body[p]!; // session id
  if (p + 2 > body.length) return { kind: 'not-tls' };
  p += 2 + body.readUInt16BE(p); // cipher suites
  if (p + 1 > body.length) return { kind: 'not-tls' };
  p += 1 + body[p]!; // compression methods
  if (p + 2 > body.length) return { kind: 'no-sni' };
  const end = Math.min(body.length, p + 2 + body.readUInt16BE(p));
  p += 2;
  while (p + 4 <= end) {
    const type = body.readUInt16BE(p);
    const length = body.readUInt16BE(p + 2);
    p += 4;
    if (p + length > end) return { kind: 'not-tls' };
    if (type === SERVER_NAME_EXTENSION) {
      let q = p + 2;
      const listEnd = Math.min(p + length, q + body.readUInt16BE(p));
      while (q + 3 <= listEnd) {
        const nameType = body[q]!;
        const nameLength = body.readUInt16BE(q + 1);
        q += 3;
        if (q + nameLength > listEnd) return { kind: 'not-tls' };
        if (nameType === HOST_NAME) {
          const name = body.toString('latin1', q, q + nameLength);
          return /^[\x21-\x7e]+$/.test(name) ? { kind: 'sni', serverName: name.toLowerCase() } : { kind: 'not-tls' };
        }
        q += nameLength;
      }
      return { kind: 'no-sni' };
    }
    p += length;
  }
  return { kind: 'no-sni' };
}
