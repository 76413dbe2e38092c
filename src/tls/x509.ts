import forge from 'node-forge';
import { createHash, randomBytes, sign, type KeyObject } from 'node:crypto';

/**
 * Certificate assembly: node-forge builds the ASN.1 (names, extensions, TBSCertificate),
 * node:crypto signs it. forge's own RSA signing runs in pure JS and costs tens of
 * milliseconds per certificate; OpenSSL's costs about one, off the event loop.
 */

const { asn1, pki } = forge;
type Asn1 = forge.asn1.Asn1;

/** forge exports this but @types/node-forge does not declare it. */
const extensionToAsn1 = (pki as unknown as { certificateExtensionToAsn1(extension: unknown): Asn1 }).certificateExtensionToAsn1;

const OID_SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

export interface NameAttribute {
  /** forge short name (`CN`, `O`, `OU`, `C`) */
  readonly shortName: 'CN' | 'O' | 'OU' | 'C' | 'L';
  readonly value: string;
}

const ATTRIBUTE_OIDS: Record<NameAttribute['shortName'], string> = {
  CN: '2.5.4.3',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  C: '2.5.4.6',
  L: '2.5.4.7',
};

/** DER of an X.501 Name; text attributes as UTF8String so Vietnamese names survive. */
export function encodeName(attributes: readonly NameAttribute[]): Buffer {
  const rdns = attributes.map(({ shortName, value }) => {
    // countryName is PrintableString by definition (RFC 5280 §A.1).
    const type = shortName === 'C' ? asn1.Type.PRINTABLESTRING : asn1.Type.UTF8;
    const bytes = shortName === 'C' ? value : forge.util.encodeUtf8(value);
    return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
        asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(ATTRIBUTE_OIDS[shortName]).getBytes()),
        asn1.create(asn1.Class.UNIVERSAL, type, false, bytes),
      ]),
    ]);
  });
  return toBuffer(asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, rdns));
}

/** Extensions in forge's object form (`{ name: 'basicConstraints', cA: true, critical: true }`). */
export type ExtensionSpec = Record<string, unknown> & { readonly name: string };

/**
 * DER of one Extension. forge fills in the value from its object form (key usage
 * bits, SAN entries, …). Extensions common to every leaf are encoded once and their
 * bytes spliced into each certificate, which keeps per-host work small.
 */
export function encodeExtension(extension: ExtensionSpec): Buffer {
  const holder = pki.createCertificate();
  holder.setExtensions([{ ...extension }]);
  return toBuffer(extensionToAsn1(holder.extensions[0]));
}

/** The `[3] EXPLICIT Extensions` element of a TBSCertificate. */
export function wrapExtensions(extensions: readonly Buffer[]): Buffer {
  return derElement(0xa3, derElement(0x30, Buffer.concat(extensions)));
}

/** An OCTET STRING holding raw bytes, in forge's form (for SKI values forge cannot compute). */
export function octetString(bytes: Buffer): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes.toString('binary'));
}

/** SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1). */
export function keyIdentifier(spkiDer: Buffer): Buffer {
  // SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
  const outer = readElement(spkiDer, 0);
  const algorithm = readElement(spkiDer, outer.contentStart);
  const key = readElement(spkiDer, algorithm.end);
  if (outer.tag !== 0x30 || algorithm.tag !== 0x30 || key.tag !== 0x03) throw new Error('not a SubjectPublicKeyInfo');
  // The first content byte of a BIT STRING counts unused bits; the key follows it.
  return createHash('sha1')
    .update(spkiDer.subarray(key.contentStart + 1, key.end))
    .digest();
}

interface DerElement {
  readonly tag: number;
  readonly contentStart: number;
  readonly end: number;
}

function readElement(der: Buffer, offset: number): DerElement {
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let contentStart = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[contentStart + i]!;
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > der.length) throw new Error('truncated DER');
  return { tag, contentStart, end };
}

/** A random positive serial of 16 bytes (CA/B Forum asks for ≥ 64 bits of entropy). */
export function randomSerial(): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive, and no leading zero byte to strip
  return serial;
}

export interface TbsFields {
  readonly serial: Buffer;
  /** DER Name of the issuer, copied byte for byte from the CA's subject. */
  readonly issuer: Buffer;
  readonly subject: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** DER SubjectPublicKeyInfo of the certified key. */
  readonly subjectPublicKeyInfo: Buffer;
  /** DER of the `[3]` extensions element (wrapExtensions). */
  readonly extensions: Buffer;
}

/** Signature algorithm used by a signing key: RSA → sha256WithRSAEncryption, EC → ecdsa-with-SHA256. */
export function signatureAlgorithmFor(key: KeyObject): Buffer {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') {
    return toBuffer(
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
        asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(OID_SHA256_WITH_RSA).getBytes()),
        asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''),
      ]),
    );
  }
  if (type === 'ec') {
    return toBuffer(
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
        asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(OID_ECDSA_WITH_SHA256).getBytes()),
      ]),
    );
  }
  throw new Error(`unsupported CA key type ${String(type)} (use RSA or ECDSA)`);
}

/** DER TBSCertificate (RFC 5280 §4.1), version 3. */
export function encodeTbs(fields: TbsFields, signatureAlgorithm: Buffer): Buffer {
  const version = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);
  const serial = derElement(0x02, fields.serial);
  const validity = derElement(0x30, Buffer.concat([encodeTime(fields.notBefore), encodeTime(fields.notAfter)]));
  return derElement(
    0x30,
    Buffer.concat([version, serial, signatureAlgorithm, fields.issuer, validity, fields.subject, fields.subjectPublicKeyInfo, fields.extensions]),
  );
}

/** Signs a TBSCertificate in libuv's thread pool and returns the certificate's DER. */
export function signTbs(tbs: Buffer, signatureAlgorithm: Buffer, key: KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    sign('sha256', tbs, key, (error, signature) => {
      if (error) reject(error);
      else resolve(assembleCertificate(tbs, signatureAlgorithm, signature));
    });
  });
}

export function signTbsSync(tbs: Buffer, signatureAlgorithm: Buffer, key: KeyObject): Buffer {
  return assembleCertificate(tbs, signatureAlgorithm, sign('sha256', tbs, key));
}

function assembleCertificate(tbs: Buffer, signatureAlgorithm: Buffer, signature: Buffer): Buffer {
  const bits = derElement(0x03, Buffer.concat([Buffer.from([0]), signature]));
  return derElement(0x30, Buffer.concat([tbs, signatureAlgorithm, bits]));
}

export function derToPem(der: Buffer, label = 'CERTIFICATE'): string {
  const base64 = der.toString('base64');
  let body = '';
  for (let i = 0; i < base64.length; i += 64) body += `${base64.slice(i, i + 64)}\n`;
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

/** Subject Name of a certificate as DER, byte for byte, so a leaf's issuer equals it exactly. */
export function subjectNameDer(certificateDer: Buffer): Buffer {
  const certificate = asn1.fromDer(certificateDer.toString('binary'));
  const tbs = (certificate.value as Asn1[])[0]!.value as Asn1[];
  // TBSCertificate: [0] version?, serial, signature, issuer, validity, subject, …
  const offset = tbs[0]!.tagClass === asn1.Class.CONTEXT_SPECIFIC ? 1 : 0;
  return toBuffer(tbs[4 + offset]!);
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
function encodeTime(date: Date): Buffer {
  const iso = date.toISOString(); // 2026-11-28T15:47:18.123Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  const year = date.getUTCFullYear();
  if (year >= 1950 && year < 2050) return derElement(0x17, Buffer.from(`${digits.slice(2)}Z`, 'ascii'));
  return derElement(0x18, Buffer.from(`${digits}Z`, 'ascii'));
}

export function derElement(tag: number, content: Buffer): Buffer {
  const length = content.length;
  let header: Buffer;
  if (length < 0x80) header = Buffer.from([tag, length]);
  else if (length < 0x100) header = Buffer.from([tag, 0x81, length]);
  else if (length < 0x10000) header = Buffer.from([tag, 0x82, length >> 8, length & 0xff]);
  else header = Buffer.from([tag, 0x83, length >> 16, (length >> 8) & 0xff, length & 0xff]);
  return Buffer.concat([header, content]);
}

function toBuffer(node: Asn1): Buffer {
  return Buffer.from(asn1.toDer(node).getBytes(), 'binary');
}
