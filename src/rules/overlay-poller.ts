import { readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { loadPinnedKey, verifyOverlay, type PolicyOverlay } from './overlay.js';
import { OVERLAY_FILE, readStoredOverlay } from './overlay-stored.js';

export interface OverlayPollerLogger {
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
}

export interface OverlayPollerOptions {
  readonly centralUrl: string;
  /** This gateway's school: an overlay signed for another school is refused. */
  readonly schoolId: string;
  readonly tokenFile: string;
  /** The collector's Ed25519 public key (PEM), pinned at enrolment. */
  readonly keyFile: string;
  readonly dataDir: string;
  readonly intervalMs: number;
  /** Called after a new overlay verified and was stored; the caller reloads the rules. */
  readonly onOverlay: (overlay: PolicyOverlay) => void;
  readonly logger: OverlayPollerLogger;
}

/**
 * Polls `GET <central>/api/v1/policy` (with the ETag, so an unchanged policy costs a
 * 304), verifies the signature against the pinned key, stores the overlay atomically
 * and hands it on. A refused or unreachable answer leaves the last good overlay in force.
 */
export function startOverlayPoller(options: OverlayPollerOptions): { stop(): void; pollNow(): Promise<void> } {
  const key = loadPinnedKey(options.keyFile);
  const url = new URL('api/v1/policy', options.centralUrl.endsWith('/') ? options.centralUrl : `${options.centralUrl}/`);
  let etag: string | null = null;
  let version = readStoredOverlay(options.dataDir)?.version ?? -1;
  let running: Promise<void> | null = null;

  const poll = async (): Promise<void> => {
    const token = readFileSync(options.tokenFile, 'utf8').trim();
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (etag !== null) headers['if-none-match'] = etag;
    const response = await request(url, { method: 'GET', headers, headersTimeout: 15_000, bodyTimeout: 15_000 });
    const body = Buffer.from(await response.body.arrayBuffer());
    if (response.statusCode === 304) return;
    if (response.statusCode !== 200) {
      options.logger.warn({ status: response.statusCode }, 'district policy not fetched; the last good overlay stays');
      return;
    }
    const signature = response.headers['x-lachan-signature'];
    let overlay: PolicyOverlay;
    try {
      overlay = verifyOverlay(body, Array.isArray(signature) ? signature[0] : signature, key);
    } catch (error) {
      options.logger.warn({ err: (error as Error).message }, 'district policy refused; the last good overlay stays');
      return;
    }
    if (overlay.school !== undefined && overlay.school !== options.schoolId) {
      options.logger.warn({ school: overlay.school }, 'district policy refused: it was signed for another school; the last good overlay stays');
      return;
    }
    // An older version, even correctly signed, is a replay that could undo a block the district added.
    if (overlay.version < version) {
      options.logger.warn(
        { version: overlay.version, held: version },
        `district policy refused: version ${overlay.version} is older than the one in force (delete ${OVERLAY_FILE} in the data folder if the collector was rebuilt)`,
      );
      return;
    }
    const tag = response.headers.etag;
    etag = typeof tag === 'string' ? tag : null;
    if (overlay.version === version) return;
    await mkdir(options.dataDir, { recursive: true });
    const file = path.join(options.dataDir, OVERLAY_FILE);
    await writeFile(`${file}.tmp`, body, { mode: 0o644 });
    await rename(`${file}.tmp`, file);
    version = overlay.version;
    options.logger.info({ version }, 'district policy overlay applied');
    options.onOverlay(overlay);
  };

  const tick = (): Promise<void> => {
    running ??= poll()
      .catch((error: Error) => options.logger.warn({ err: error.message }, 'district collector unreachable; the last good overlay stays'))
      .finally(() => {
        running = null;
      });
    return running;
  };
  const timer = setInterval(() => void tick(), options.intervalMs);
  timer.unref();
  void tick();
  return {
    stop: () => clearInterval(timer),
    pollNow: tick,
  };
}
