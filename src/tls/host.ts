import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { TlsError } from './errors.js';

/** What a leaf certificate is issued for: a DNS name or an IP literal (SAN type differs). */
export interface CertificateSubject {
  /** Canonical form: lower-case ASCII (punycode) name without trailing dot, or the bare IP. */
  readonly name: string;
  readonly kind: 'dns' | 'ip';
}

const DNS_LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/**
 * Canonicalises the host a client connected to (`Example.COM.`, `[::1]`, `bücher.de`)
 * into the name a certificate must carry. Throws LACHAN_TLS_BAD_HOST for anything a
 * certificate cannot name, so a hostile CONNECT target never reaches the signer.
 */
export function certificateSubjectFor(host: string): CertificateSubject {
  let name = host.trim();
  if (name.startsWith('[') && name.endsWith(']')) name = name.slice(1, -1);
  const family = isIP(name);
  if (family !== 0) {
    // Zone ids (fe80::1%eth0) never appear in certificates.
    if (name.includes('%')) throw badHost(host);
    return { name: family === 6 ? name.toLowerCase() : name, kind: 'ip' };
  }
  if (name.endsWith('.')) name = name.slice(0, -1);
  // domainToASCII lower-cases and converts Unicode labels to punycode; '' means invalid.
  const ascii = /^[\x21-\x7e]*$/.test(name) ? name.toLowerCase() : domainToASCII(name);
  if (ascii.length === 0 || ascii.length > 253) throw badHost(host);
  for (const label of ascii.split('.')) {
    if (!DNS_LABEL.test(label)) throw badHost(host);
  }
  return { name: ascii, kind: 'dns' };
}

function badHost(host: string): TlsError {
  return new TlsError('LACHAN_TLS_BAD_HOST', `không cấp được chứng chỉ cho "${host}": không phải tên máy hay địa chỉ IP`);
}
