import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * The district's policy overlay (issue: policy distribution): allow and block lists
 * per profile, edited once at the collector for every school, signed there with the
 * collector's Ed25519 key, and applied by each gateway on top of its local rules. The
 * gateway pins the collector's public key at enrolment, so neither a man in the middle
 * nor a compromised link can loosen a school's filter.
 */
/** How much of a site an allow opens: one page (host and path, any query), a path and what is under it, or the whole site. */
export type AllowScope = 'page' | 'path' | 'site';
export const ALLOW_SCOPES: readonly AllowScope[] = ['page', 'path', 'site'];

/**
 * An allow the district scoped explicitly. `url` is `host/path` for a page or path and
 * the host for a site. `keywords`: keyword rules still apply to the part of the URL the
 * allow does not name (for a page its query, for a path what follows it, for a site the
 * whole path), so opening one article does not open searches on the same site.
 */
export interface OverlayAllowUrl {
  readonly scope: AllowScope;
  readonly url: string;
  readonly keywords: boolean;
}

export interface ProfileOverlay {
  /** Whole sites, trusted: no keyword rule applies there (the older form of an allow). */
  readonly allow_domains?: readonly string[];
  readonly block_domains?: readonly string[];
  readonly block_keywords?: readonly string[];
  /** Scoped allows; their source lines follow the three lists above. */
  readonly allow_urls?: readonly OverlayAllowUrl[];
}

/** Rules the district adds to a category (e.g. a reported page blocked as `gambling`): they apply wherever a profile blocks that category. */
export interface CategoryOverlay {
  readonly block_domains?: readonly string[];
  readonly block_keywords?: readonly string[];
}

export interface PolicyOverlay {
  /** Increases with every change at the collector. */
  readonly version: number;
  /**
   * The school the collector signed this for. Inside the signed bytes, so that one
   * school's overlay (which may allow more) cannot be replayed to another.
   */
  readonly school?: string;
  readonly profiles: Readonly<Record<string, ProfileOverlay>>;
  readonly categories?: Readonly<Record<string, CategoryOverlay>>;
}

export class OverlayError extends Error {
  constructor(
    readonly code: 'LACHAN_OVERLAY_SIGNATURE' | 'LACHAN_OVERLAY_INVALID',
    message: string,
  ) {
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
  if (!verify(null, body, key, signature))
    throw new OverlayError('LACHAN_OVERLAY_SIGNATURE', 'policy overlay signature does not verify with the pinned collector key');
  return parseOverlay(body.toString('utf8'));
}

const LISTS = ['allow_domains', 'block_domains', 'block_keywords'] as const;
const CATEGORY_LISTS = ['block_domains', 'block_keywords'] as const;

function checkLists(owner: string, lists: unknown, names: readonly string[]): void {
  if (typeof lists !== 'object' || lists === null || Array.isArray(lists))
    throw new OverlayError('LACHAN_OVERLAY_INVALID', `overlay ${owner} is not an object`);
  for (const name of names) {
    const list = (lists as Record<string, unknown>)[name];
    if (list !== undefined && (!Array.isArray(list) || !list.every((entry) => typeof entry === 'string'))) {
      throw new OverlayError('LACHAN_OVERLAY_INVALID', `overlay ${owner}.${name} must be a list of text`);
    }
  }
}

function checkAllowUrls(owner: string, lists: unknown): void {
  const list = (lists as Record<string, unknown>)['allow_urls'];
  if (list === undefined) return;
  const valid = (entry: unknown): boolean => {
    if (typeof entry !== 'object' || entry === null) return false;
    const { scope, url, keywords } = entry as Record<string, unknown>;
    return ALLOW_SCOPES.includes(scope as AllowScope) && typeof url === 'string' && typeof keywords === 'boolean';
  };
  if (!Array.isArray(list) || !list.every(valid)) {
    throw new OverlayError('LACHAN_OVERLAY_INVALID', `overlay ${owner}.allow_urls must be a list of {scope: page|path|site, url, keywords: true|false}`);
  }
}

/** How many source lines a profile's lists take (allow_urls last, so older lines keep their numbers). */
export function overlayLineCount(lists: ProfileOverlay): number {
  return (lists.allow_domains?.length ?? 0) + (lists.block_domains?.length ?? 0) + (lists.block_keywords?.length ?? 0) + (lists.allow_urls?.length ?? 0);
}

export function parseOverlay(text: string): PolicyOverlay {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new OverlayError('LACHAN_OVERLAY_INVALID', 'policy overlay is not JSON');
  }
  const overlay = value as { version?: unknown; school?: unknown; profiles?: unknown; categories?: unknown };
  if (
    typeof overlay !== 'object' ||
    overlay === null ||
    !Number.isInteger(overlay.version) ||
    typeof overlay.profiles !== 'object' ||
    overlay.profiles === null
  ) {
    throw new OverlayError('LACHAN_OVERLAY_INVALID', 'policy overlay needs an integer "version" and a "profiles" object');
  }
  if (overlay.school !== undefined && typeof overlay.school !== 'string') throw new OverlayError('LACHAN_OVERLAY_INVALID', 'overlay "school" must be text');
  for (const [profile, lists] of Object.entries(overlay.profiles as Record<string, unknown>)) {
    checkLists(`profile "${profile}"`, lists, LISTS);
    checkAllowUrls(`profile "${profile}"`, lists);
  }
  if (overlay.categories !== undefined) {
    if (typeof overlay.categories !== 'object' || overlay.categories === null || Array.isArray(overlay.categories)) {
      throw new OverlayError('LACHAN_OVERLAY_INVALID', 'overlay "categories" must be an object');
    }
    for (const [category, lists] of Object.entries(overlay.categories as Record<string, unknown>)) checkLists(`category "${category}"`, lists, CATEGORY_LISTS);
  }
  return value as PolicyOverlay;
}

/** How decisions from the overlay name their source (`lachan check` shows it). */
export function overlaySourceName(overlay: PolicyOverlay): string {
  return `district-overlay:v${overlay.version}`;
}
