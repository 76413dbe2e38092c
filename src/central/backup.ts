import { renameSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';

export type BackupErrorCode = 'NO_DATABASE' | 'BACKUP_FAILED';

export class BackupError extends Error {
  constructor(
    readonly code: BackupErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'BackupError';
  }
}

/**
 * A consistent copy of a live SQLite database, taken with SQLite's online backup API
 * while the collector keeps writing (pages changed during the copy are copied again).
 * The copy is written beside the target and renamed into place, so the target is
 * always either the previous backup or a complete new one, never half of one.
 */
export async function backupSqliteFile(databaseFile: string, target: string): Promise<{ pages: number }> {
  let source: Database.Database;
  try {
    source = new Database(databaseFile, { readonly: true, fileMustExist: true });
  } catch (error) {
    throw new BackupError('NO_DATABASE', (error as Error).message);
  }
  const partial = `${target}.partial`;
  try {
    const { totalPages } = await source.backup(partial);
    renameSync(partial, target);
    return { pages: totalPages };
  } catch (error) {
    rmSync(partial, { force: true });
    throw new BackupError('BACKUP_FAILED', (error as Error).message);
  } finally {
    source.close();
  }
}
