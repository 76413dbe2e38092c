import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';

/**
 * Reads a secret file, creating it first with `generate()` when absent. The file is
 * created mode 0600 under a temporary name and linked into place, so a concurrent
 * reader never sees it half-written and two processes starting together agree on one
 * secret (link() fails for the loser, who then reads the winner's).
 */
export function loadOrCreateSecretFile(file: string, generate: () => string): string {
  if (!existsSync(file)) {
    const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    const fd = openSync(temporary, 'wx', 0o600);
    try {
      writeSync(fd, `${generate()}\n`);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(temporary, file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      unlinkSync(temporary);
    }
  }
  return readFileSync(file, 'utf8').trim();
}
