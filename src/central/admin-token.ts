import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { loadOrCreateSecretFile } from '../events/secret-file.js';

export const ADMIN_TOKEN_FILE = 'admin-token';

/** `<dataDir>/admin-token` (0600), created on first use: the dashboard API's bearer token. */
export function loadOrCreateAdminToken(dataDir: string): string {
  return loadOrCreateSecretFile(path.join(dataDir, ADMIN_TOKEN_FILE), () => `lca_${randomBytes(32).toString('base64url')}`);
}
