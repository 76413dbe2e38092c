import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadOrCreateSecretFile } from '../events/secret-file.js';

export const SIGNING_KEY_FILE = 'policy-signing.key';
export const SIGNING_PUBLIC_KEY_FILE = 'policy-signing.pub';

/**
 * The collector's Ed25519 key that signs the district policy overlay. Gateways pin the
 * public half at enrolment (`lachan serve --central-key`), so whoever holds this file
 * can loosen every school's filter: it is created 0600 and refused when others can read it.
 */
export interface PolicySigner {
  /** PEM (SPKI): what a gateway saves as its `--central-key` file. */
  readonly publicKeyPem: string;
  /** SHA-256 of the public key (DER), hex in groups: read aloud to check an enrolment. */
  readonly fingerprint: string;
  sign(body: Buffer): string;
}

export class SigningKeyError extends Error {
  readonly code = 'LACHAN_SIGNING_KEY';
}

/** A new Ed25519 private key, PKCS#8 PEM. */
export function newSigningKeyPem(): string {
  return generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString().trim();
}

export function loadOrCreateSigner(dataDir: string): PolicySigner {
  const file = path.join(dataDir, SIGNING_KEY_FILE);
  const pem = loadOrCreateSecretFile(file, newSigningKeyPem);
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new SigningKeyError(`${file} can be read by other users (mode ${mode.toString(8)}): run chmod 600 ${file}`);
  }
  const signer = signerFromPem(pem, file);
  // The public half next to it, for copying to gateways; rewritten so it always matches.
  writeFileSync(path.join(dataDir, SIGNING_PUBLIC_KEY_FILE), signer.publicKeyPem, { mode: 0o644 });
  return signer;
}

/** A PolicySigner from a PKCS#8 PEM Ed25519 key; `where` names it in errors. */
export function signerFromPem(pem: string, where: string): PolicySigner {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    throw new SigningKeyError(`${where} is not a PEM private key`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new SigningKeyError(`${where} is not an Ed25519 key`);
  const publicKey = createPublicKey(privateKey);
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const digest = createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
  return {
    publicKeyPem,
    fingerprint: digest.slice(0, 32).match(/.{4}/g)!.join(':'),
    sign: (body) => sign(null, body, privateKey).toString('base64'),
  };
}
