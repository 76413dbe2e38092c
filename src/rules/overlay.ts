import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * The district's policy overlay (issue: policy distribution): allow and block lists
 * per profile, edited once at the collector for every school, signed there with the
 * collector's Ed25519 key, and applied by each gateway on top of its local rules. The
 * gateway pins the collector's public key at enrolment, so neither a man in the middle
 * nor a compromised link can loosen a school's filter.
 */
export interface ProfileOverlay {
  readonly allow_domains?: readonly string[];
  readonly block_domains?: readonly string[];
  readonly block_keywords?: readonly string[];
}

export interface PolicyOverlay {
  /** Increases with every change at the collector. */
  readonly version: number;
  readonly profiles: Readonly<Record<string, ProfileOverlay>>;
}

export class OverlayError extends Error {
  constructor(readonly code: 'LACHAN_OVERLAY_SIGNATURE' | 'LACHAN_OVERLAY_INVALID', message: string) {
    super(message);
    this.name = 'OverlayError';
  }
}

export function loadPinnedKey(file: string): KeyObject {
  const key = createPublicKey(readFileSync(file));
  if (key.asymmetricKeyType !== 'ed25519') throw new OverlayError('LACHAN_OVERLAY_INVALID', `${file} is not an Ed25519 public key`);
  return key;
}

/** Verifies the signature over the exact bytes received, then parses; throws OverlayError. */
export function verifyOverlay(body: Buffer, signatureBase64: string | undefined, key: KeyObject): PolicyOverlay {
  if (signatureBase64 === undefined || signatureBase64 === '') throw new OverlayError('LACHAN_OVERLAY_SIGNATURE', 'policy overlay is not signed');
  const signature = Buffer.from(signatureBase64, 'base64');
  if (!verify(null, body, key, signature)) throw new OverlayError('LACHAN_OVERLAY_SIGNATURE', 'policy overlay signature does not verify with the pinned collector key');
  return parseOverlay(body.toString('utf8'));
}

const LISTS = ['allow_domains', 'block_domains', 'block_keywords'] as const;

export function parseOverlay(text: string): PolicyOverlay {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new OverlayError('LACHAN_OVERLAY_INVALID', 'policy overlay is not JSON');
  }
  const overlay = value as { version?: unknown; profiles?: unknown };
  if (typeof overlay !== 'object' || overlay === null || !Number.isInteger(overlay.version) || typeof overlay.profiles !== 'object' || overlay.profiles === null) {
    throw new OverlayError('LACHAN_OVERLAY_INVALID', 'policy overlay needs an integer "version" and a "profiles" object');
  }
  for (const [profile, lists] of Object.entries(overlay.profiles as Record<string, unknown>)) {
    if (typeof lists !== 'object' || lists === null) throw new OverlayError('LACHAN_OVERLAY_INVALID', `overlay profile "${profile}" is not an object`);
    for (const name of LISTS) {
      const list = (lists as Record<string, unknown>)[name];
      if (list !== undefined && (!Array.isArray(list) || !list.every((entry) => typeof entry === 'string'))) {
        throw new OverlayError('LACHAN_OVERLAY_INVALID', `overlay ${profile}.${name} must be a list of text`);
      }
    }
  }
  return value as PolicyOverlay;
}

/** How decisions from the overlay name their source (`lachan check` shows it). */
export function overlaySourceName(overlay: PolicyOverlay): string {
  return `district-overlay:v${overlay.version}`;
}
