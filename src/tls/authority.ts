import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { LRUCache } from 'lru-cache';
import { TlsError } from './errors.js';
import { certificateSubjectFor, type CertificateSubject } from './host.js';
import {
  derToPem,
  encodeExtension,
  encodeName,
  encodeTbs,
  keyIdentifier,
  octetString,
  randomSerial,
  signTbs,
  signatureAlgorithmFor,
  subjectNameDer,
  wrapExtensions,
} from './x509.js';

/** A leaf certificate issued for one host, with the shared leaf key. */
export interface IssuedLeaf {
  /** Canonical name the certificate carries (CN and SAN). */
  readonly host: string;
  readonly certPem: string;
  /** PKCS#8 PEM of the leaf key shared by all leaves of this process. Never log it. */
  readonly keyPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export type LeafKeyType = 'ec' | 'rsa';

export interface CertificateAuthorityOptions {
  /**
   * Key type of the leaves. `ec` (P-256, default) makes every intercepted handshake
   * cost an ECDSA signature instead of an RSA-2048 one, about 10× less CPU on the
   * gateway; every browser since 2013 accepts it. `rsa` for very old clients.
   */
  readonly leafKeyType?: LeafKeyType;
  /** Leaf lifetime from issuance, in days; at most 397 (browser limit), never beyond the CA. */
  readonly leafValidityDays?: number;
  /** Issued secure contexts kept in memory (LRU). */
  readonly cacheSize?: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const MAX_LEAF_DAYS = 397;
const DEFAULT_LEAF_DAYS = 365;
const DEFAULT_CACHE_SIZE = 2000;
/** A cached context is dropped this long before its certificate expires. */
const EXPIRY_MARGIN_MS = DAY_MS;

/**
 * The school CA in memory: issues leaf certificates per host and keeps their TLS
 * contexts in an LRU cache. One leaf key serves every host (as mitmproxy does), so
 * issuing is one signature, never a key generation.
 *
 *     const ca = await loadCa('certs');                // null when no CA exists
 *     const context = await ca.secureContextFor('example.com');
 */
export class CertificateAuthority {
  /** The CA certificate, PEM (what devices install). */
  readonly certPem: string;
  readonly certificate: X509Certificate;
  private readonly caKey: KeyObject;
  private readonly signatureAlgorithm: Buffer;
  private readonly issuerName: Buffer;
  private readonly leafKeyPem: string;
  private readonly leafSpki: Buffer;
  /** Extensions every leaf carries (all but subjectAltName), DER, encoded once. */
  private readonly commonExtensions: readonly Buffer[];
  private readonly leafValidityMs: number;
  private readonly caNotBefore: number;
  private readonly caNotAfter: number;
  private readonly contexts: LRUCache<string, SecureContext>;
  /** First requests in flight per host: concurrent callers share one issuance. */
  private readonly pending = new Map<string, Promise<SecureContext>>();

  private constructor(certPem: string, certificate: X509Certificate, caKey: KeyObject, leafKey: KeyObject, options: CertificateAuthorityOptions) {
    this.certPem = certPem;
    this.certificate = certificate;
    this.caKey = caKey;
    this.signatureAlgorithm = signatureAlgorithmFor(caKey);
    this.issuerName = subjectNameDer(certificate.raw);
    this.caNotBefore = Date.parse(certificate.validFrom);
    this.caNotAfter = Date.parse(certificate.validTo);
    this.leafKeyPem = leafKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    this.leafSpki = createPublicKey(leafKey).export({ type: 'spki', format: 'der' });
    const days = Math.max(1, Math.min(Math.floor(options.leafValidityDays ?? DEFAULT_LEAF_DAYS), MAX_LEAF_DAYS));
    this.leafValidityMs = days * DAY_MS;
    const caSpki = certificate.publicKey.export({ type: 'spki', format: 'der' });
    const rsaLeaf = leafKey.asymmetricKeyType === 'rsa';
    this.commonExtensions = [
      encodeExtension({ name: 'basicConstraints', cA: false }),
      // keyEncipherment only applies to RSA key transport; RFC 5480 §3 forbids it for EC keys.
      encodeExtension({ name: 'keyUsage', digitalSignature: true, keyEncipherment: rsaLeaf, critical: true }),
      encodeExtension({ name: 'extKeyUsage', serverAuth: true }),
      encodeExtension({ name: 'subjectKeyIdentifier', value: octetString(keyIdentifier(this.leafSpki)) }),
      encodeExtension({ name: 'authorityKeyIdentifier', keyIdentifier: keyIdentifier(caSpki).toString('binary') }),
    ];
    this.contexts = new LRUCache<string, SecureContext>({
      max: options.cacheSize ?? DEFAULT_CACHE_SIZE,
      ttl: this.leafValidityMs,
    });
  }

  /**
   * Builds the authority from PEM text. Checks that the certificate is a CA, that the
   * key belongs to it and that it has not expired; generates this process's leaf key.
   */
  static async fromPem(certPem: string, keyPem: string, options: CertificateAuthorityOptions = {}): Promise<CertificateAuthority> {
    let certificate: X509Certificate;
    let caKey: KeyObject;
    try {
      certificate = new X509Certificate(certPem);
    } catch (error) {
      throw new TlsError('LACHAN_CA_INVALID', `không đọc được chứng chỉ CA: ${(error as Error).message}`, { cause: error });
    }
    try {
      caKey = createPrivateKey(keyPem);
    } catch (error) {
      throw new TlsError('LACHAN_CA_INVALID', `không đọc được khoá CA: ${(error as Error).message}`, { cause: error });
    }
    if (!certificate.ca) throw new TlsError('LACHAN_CA_INVALID', 'chứng chỉ này không phải CA (thiếu basicConstraints CA:true)');
    if (!certificate.checkPrivateKey(caKey)) {
      throw new TlsError('LACHAN_CA_MISMATCH', 'khoá CA không khớp với chứng chỉ CA');
    }
    if (Date.parse(certificate.validTo) <= Date.now()) {
      throw new TlsError('LACHAN_CA_EXPIRED', `chứng chỉ CA đã hết hạn ngày ${new Date(certificate.validTo).toISOString().slice(0, 10)}`);
    }
    const leafKey = await generateLeafKey(options.leafKeyType ?? 'ec');
    return new CertificateAuthority(certPem, certificate, caKey, leafKey, options);
  }

  /** SHA-256 fingerprint of the CA certificate (`AB:CD:…`), to compare with what devices show. */
  get fingerprint256(): string {
    return this.certificate.fingerprint256;
  }

  /** Contexts currently cached. */
  get cachedCount(): number {
    return this.contexts.size;
  }

  /**
   * The TLS context to present for `host` (a name or an IP literal, as in CONNECT or
   * SNI). Cached per canonical host; concurrent first requests share one issuance.
   * Rejects with LACHAN_TLS_BAD_HOST for a host no certificate can name.
   */
  secureContextFor(host: string): Promise<SecureContext> {
    // Keys are canonical names, so a host found as written needs no canonicalising.
    const hit = this.contexts.get(host);
    if (hit !== undefined) return Promise.resolve(hit);
    let subject: CertificateSubject;
    try {
      subject = certificateSubjectFor(host);
    } catch (error) {
      return Promise.reject(error);
    }
    const cached = this.contexts.get(subject.name);
    if (cached !== undefined) return Promise.resolve(cached);
    let pending = this.pending.get(subject.name);
    if (pending === undefined) {
      pending = this.issueContext(subject);
      this.pending.set(subject.name, pending);
      const forget = () => this.pending.delete(subject.name);
      pending.then(forget, forget);
    }
    return pending;
  }

  /** The cached context for `host`, without issuing; for synchronous fast paths. */
  cachedSecureContext(host: string): SecureContext | undefined {
    const hit = this.contexts.get(host);
    if (hit !== undefined) return hit;
    let subject: CertificateSubject;
    try {
      subject = certificateSubjectFor(host);
    } catch {
      return undefined;
    }
    return this.contexts.get(subject.name);
  }

  /** Issues a fresh leaf for `host`, bypassing the cache. */
  async issue(host: string): Promise<IssuedLeaf> {
    return this.issueLeaf(certificateSubjectFor(host));
  }

  private async issueContext(subject: CertificateSubject): Promise<SecureContext> {
    const leaf = await this.issueLeaf(subject);
    // The chain includes the school CA: clients that pin it by public key (Chromium's
    // SPKI allow-list, managed devices) can only match a key they are shown.
    const context = createSecureContext({ cert: `${leaf.certPem}${this.certPem}`, key: this.leafKeyPem });
    const ttl = Math.max(1, Math.floor(leaf.notAfter.getTime() - EXPIRY_MARGIN_MS - Date.now()));
    this.contexts.set(subject.name, context, { ttl });
    return context;
  }

  private async issueLeaf(subject: CertificateSubject): Promise<IssuedLeaf> {
    const now = Date.now();
    // Backdated a day for devices whose clock runs behind, but never before the CA.
    const notBefore = new Date(Math.max(now - DAY_MS, this.caNotBefore));
    const notAfter = new Date(Math.min(now + this.leafValidityMs, this.caNotAfter));
    if (notAfter.getTime() <= now) {
      throw new TlsError('LACHAN_CA_EXPIRED', `chứng chỉ CA đã hết hạn ngày ${new Date(this.caNotAfter).toISOString().slice(0, 10)}`);
    }
    const altName = subject.kind === 'ip' ? { type: 7, ip: subject.name } : { type: 2, value: subject.name };
    const extensions = wrapExtensions([...this.commonExtensions, encodeExtension({ name: 'subjectAltName', altNames: [altName] })]);
    const tbs = encodeTbs(
      {
        serial: randomSerial(),
        issuer: this.issuerName,
        subject: encodeName([{ shortName: 'CN', value: subject.name }]),
        notBefore,
        notAfter,
        subjectPublicKeyInfo: this.leafSpki,
        extensions,
      },
      this.signatureAlgorithm,
    );
    const der = await signTbs(tbs, this.signatureAlgorithm, this.caKey);
    return { host: subject.name, certPem: derToPem(der), keyPem: this.leafKeyPem, notBefore, notAfter };
  }
}

function generateLeafKey(type: LeafKeyType): Promise<KeyObject> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, _publicKey: KeyObject, privateKey: KeyObject) => {
      if (error) reject(error);
      else resolve(privateKey);
    };
    if (type === 'rsa') generateKeyPair('rsa', { modulusLength: 2048 }, done);
    else generateKeyPair('ec', { namedCurve: 'prime256v1' }, done);
  });
}
