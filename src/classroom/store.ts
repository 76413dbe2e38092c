import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The classroom's live state on disk (docs/classroom.md): the exams and teachers'
 * overrides in force, in `DATA/classroom.json`. Every process of the gateway reads it;
 * a change is a read-modify-write under a lock file, written to a temporary file and
 * renamed into place, so a reader never sees half a file and two workers changing it
 * at once do not lose each other's entry.
 */
export const CLASSROOM_FILE = 'classroom.json';
const LOCK_FILE = 'classroom.lock';
/** A lock older than this was left by a process that died holding it. */
const STALE_LOCK_MS = 10_000;
const LOCK_RETRY_MS = 20;
const LOCK_GIVE_UP_MS = 3_000;

export interface ExamEntry {
  readonly id: string;
  /** The room's address range, as validated (`10.1.2.0/24`). */
  readonly room: string;
  /** ms since the epoch */
  readonly startedAt: number;
  readonly endsAt: number;
  /** The staff account that started it. */
  readonly by: string;
}

export type OverrideScope = { readonly profile: string } | { readonly room: string };

export interface OverrideEntry {
  readonly id: string;
  /** Canonical host; its subdomains are opened too. */
  readonly host: string;
  readonly scope: OverrideScope;
  /** Why, as the teacher wrote it (required). */
  readonly reason: string;
  readonly startedAt: number;
  readonly endsAt: number;
  readonly by: string;
}

export interface ClassroomFile {
  readonly version: 1;
  readonly exams: readonly ExamEntry[];
  readonly overrides: readonly OverrideEntry[];
}

export const EMPTY_CLASSROOM: ClassroomFile = { version: 1, exams: [], overrides: [] };

export class ClassroomStoreError extends Error {
  readonly code = 'LACHAN_CLASSROOM_STORE';
}

export function classroomFileOf(dataDir: string): string {
  return path.join(dataDir, CLASSROOM_FILE);
}

/** The file's state; a missing file is the empty state, an unreadable one too (said once by the caller via `onBad`). */
export function readClassroom(dataDir: string, onBad: (why: string) => void = () => undefined): ClassroomFile {
  let text: string;
  try {
    text = readFileSync(classroomFileOf(dataDir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') onBad((error as Error).message);
    return EMPTY_CLASSROOM;
  }
  try {
    return parseClassroom(JSON.parse(text));
  } catch (error) {
    onBad((error as Error).message);
    return EMPTY_CLASSROOM;
  }
}

/** Validates the file's shape; entries that do not fit are dropped rather than failing the whole file. */
export function parseClassroom(value: unknown): ClassroomFile {
  if (typeof value !== 'object' || value === null || (value as { version?: unknown }).version !== 1)
    throw new ClassroomStoreError('not a version 1 classroom file');
  const { exams, overrides } = value as { exams?: unknown; overrides?: unknown };
  return {
    version: 1,
    exams: Array.isArray(exams) ? exams.filter(isExam) : [],
    overrides: Array.isArray(overrides) ? overrides.filter(isOverride) : [],
  };
}

function isTimed(entry: Record<string, unknown>): boolean {
  return (
    typeof entry.id === 'string' &&
    typeof entry.by === 'string' &&
    Number.isFinite(entry.startedAt) &&
    Number.isFinite(entry.endsAt) &&
    (entry.endsAt as number) > (entry.startedAt as number)
  );
}

function isExam(value: unknown): value is ExamEntry {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  return isTimed(entry) && typeof entry.room === 'string';
}

function isOverride(value: unknown): value is OverrideEntry {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  const scope = entry.scope as Record<string, unknown> | null | undefined;
  const scoped = typeof scope === 'object' && scope !== null && (typeof scope.profile === 'string' || typeof scope.room === 'string');
  return isTimed(entry) && typeof entry.host === 'string' && typeof entry.reason === 'string' && scoped;
}

/** The file's change stamp, to notice another process's write without reading it. */
export function classroomStamp(dataDir: string): string {
  try {
    const stat = statSync(classroomFileOf(dataDir));
    return `${stat.ino}:${stat.mtimeMs}:${stat.size}`;
  } catch {
    return 'absent';
  }
}

export function newEntryId(prefix: 'e' | 'o'): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/**
 * Applies `change` to the state on disk under the lock and writes the result; returns
 * the state written and what `change` returned. `change` returns null to write nothing.
 */
export async function updateClassroom<T>(
  dataDir: string,
  change: (current: ClassroomFile) => { next: ClassroomFile; result: T } | null,
): Promise<{ state: ClassroomFile; result: T } | null> {
  const release = await lock(dataDir);
  try {
    const outcome = change(readClassroom(dataDir));
    if (outcome === null) return null;
    const file = classroomFileOf(dataDir);
    const temporary = `${file}.${process.pid}.tmp`;
    writeFileSync(temporary, `${JSON.stringify(outcome.next, null, 1)}\n`, { mode: 0o600 });
    renameSync(temporary, file);
    return { state: outcome.next, result: outcome.result };
  } finally {
    release();
  }
}

async function lock(dataDir: string): Promise<() => void> {
  const file = path.join(dataDir, LOCK_FILE);
  const giveUp = Date.now() + LOCK_GIVE_UP_MS;
  for (;;) {
    try {
      closeSync(openSync(file, 'wx', 0o600));
      return () => {
        try {
          unlinkSync(file);
        } catch {
          // Already removed as stale by another process: nothing to release.
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new ClassroomStoreError(`cannot lock ${file}: ${(error as Error).message}`);
    }
    try {
      if (Date.now() - statSync(file).mtimeMs > STALE_LOCK_MS) unlinkSync(file);
    } catch {
      // Released meanwhile: try again at once.
    }
    if (Date.now() > giveUp) throw new ClassroomStoreError(`${file} is held by another process`);
    await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS));
  }
}
