import { generateKeyPair, type KeyObject } from 'node:crypto';
import { DEFAULT_SCHOOL_NAME } from './defaults.js';
import {
  derToPem,
  encodeExtension,
  encodeName,
  encodeTbs,
  keyIdentifier,
  octetString,
  randomSerial,
  signTbsSync,
  signatureAlgorithmFor,
  wrapExtensions,
  type NameAttribute,
} from './x509.js';

/** The CA's certificate and key as written to certs/ca.crt and certs/ca.key. */
export interface CaMaterial {
  readonly certPem: string;
  /** PKCS#8 PEM. Never log it. */
  readonly keyPem: string;
}

export interface CreateCaOptions {
  /** The school, as staff and students will see it in certificate viewers: `THCS Trạm Tấu`. */
  readonly schoolName: string;
  readonly validityYears?: number;
  readonly now?: Date;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** X.520 upper bound of commonName, in characters. */
const COMMON_NAME_MAX = 64;

/**
 * Creates the school's interception CA: RSA 2048 (installable on every OS the school
 * has, old Android included), basicConstraints CA:true pathlen 0 (it signs leaves,
 * never another CA), keyUsage keyCertSign + cRLSign, both critical.
 */
export async function createCaMaterial(options: CreateCaOptions): Promise<CaMaterial> {
  const { privateKey, publicKey } = await generateRsaKeyPair();
  const now = options.now ?? new Date();
  const years = options.validityYears ?? 10;
  // Backdated a day: a device whose clock runs behind must still accept it today.
  const notBefore = new Date(now.getTime() - DAY_MS);
  const notAfter = new Date(now.getTime());
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + years);

  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const ski = keyIdentifier(spki);
  const name = encodeName(caSubject(options.schoolName));
  const extensions = wrapExtensions([
    encodeExtension({ name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true }),
    encodeExtension({ name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }),
    encodeExtension({ name: 'subjectKeyIdentifier', value: octetString(ski) }),
    encodeExtension({ name: 'authorityKeyIdentifier', keyIdentifier: ski.toString('binary') }),
  ]);
  const algorithm = signatureAlgorithmFor(privateKey);
  const tbs = encodeTbs({ serial: randomSerial(), issuer: name, subject: name, notBefore, notAfter, subjectPublicKeyInfo: spki, extensions }, algorithm);
  return {
    certPem: derToPem(signTbsSync(tbs, algorithm, privateKey)),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

/** Subject of the CA: the school's name in O and CN, so the trust store lists it by name. */
export function caSubject(schoolName: string): NameAttribute[] {
  const school = schoolName.normalize('NFC').trim() || DEFAULT_SCHOOL_NAME;
  const label = `${school} – Lá chắn CA`;
  const commonName = [...label].length <= COMMON_NAME_MAX ? label : [...school].slice(0, COMMON_NAME_MAX).join('');
  return [
    { shortName: 'C', value: 'VN' },
    { shortName: 'O', value: [...school].slice(0, COMMON_NAME_MAX).join('') },
    { shortName: 'OU', value: 'Lá chắn' },
    { shortName: 'CN', value: commonName },
  ];
}

function generateRsaKeyPair(): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  return new Promise((resolve, reject) => {
    generateKeyPair('rsa', { modulusLength: 2048, publicExponent: 0x10001 }, (error, publicKey, privateKey) => {
      if (error) reject(error);
      else resolve({ publicKey, privateKey });
    });
  });
}
