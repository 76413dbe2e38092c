/*
 * The district overlay a gateway keeps in its data folder, read without the poller that
 * fetches it (and its HTTP client): `lachan check` reads it on every run.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseOverlay, type PolicyOverlay } from './overlay.js';

/** Where a gateway keeps the last overlay that verified: used offline and after restarts. */
export const OVERLAY_FILE = 'policy-overlay.json';

/** The stored overlay, or null when there is none or it cannot be read (it was verified before it was written). */
export function readStoredOverlay(dataDir: string): PolicyOverlay | null {
  try {
    return parseOverlay(readFileSync(path.join(dataDir, OVERLAY_FILE), 'utf8'));
  } catch {
    return null;
  }
}
