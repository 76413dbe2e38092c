/**
 * Downloaded list versions under the data folder (never under rules/, which is the
 * school's to edit):
 *
 *   <data>/lists/<name>/state.json      the version in force and how it got there
 *   <data>/lists/<name>/<version>.txt   sorted unique entries (entries.ts)
 *
 * A version file is written in full before the state names it, and each file is
 * written to a temporary name and renamed, so a reader sees the old version or the
 * new one, never half of either. The versions kept (`history`) are the one in force
 * and a few before it: the gateway keeps two (a reload that read the old state can
 * still open its file), the collector keeps more to answer deltas.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ListVersion, ListRefusalCode } from './entries.js';

export const LISTS_DIR = 'lists';

export interface ListError {
  readonly time: number;
  readonly code: ListRefusalCode;
  readonly message: string;
}

export interface ListState {
  readonly name: string;
  /** The version in force (null until a first version was applied). */
  readonly version: string | null;
  readonly entries: number;
  /** When the version in force was applied. */
  readonly updatedAt: number | null;
  /** When the source last confirmed or delivered the version in force. */
  readonly checkedAt: number | null;
  /** When an update was last tried, whatever came of it. */
  readonly attemptedAt: number | null;
  /** Validators of the response that gave the version in force, for a conditional GET. */
  readonly etag: string | null;
  readonly lastModified: string | null;
  /** The address the validators belong to: a changed url forgets them. */
  readonly url: string | null;
  /** The last refusal or failure since the last success; null once an update succeeds. */
  readonly lastError: ListError | null;
  /** Refusals and failures counted since the list was first fetched. */
  readonly failures: number;
  /** Versions kept on disk, newest (the one in force) first. */
  readonly history: readonly string[];
  /** Version → when it was applied, for the versions in history. */
  readonly appliedAt: Readonly<Record<string, number>>;
}

export function emptyState(name: string): ListState {
  return {
    name,
    version: null,
    entries: 0,
    updatedAt: null,
    checkedAt: null,
    attemptedAt: null,
    etag: null,
    lastModified: null,
    url: null,
    lastError: null,
    failures: 0,
    history: [],
    appliedAt: {},
  };
}

export function listDir(dataDir: string, name: string): string {
  return path.join(dataDir, LISTS_DIR, name);
}

function versionFile(dataDir: string, name: string, version: string): string {
  if (!/^[0-9a-f]{12}$/.test(version)) throw new Error(`not a list version: ${version}`);
  return path.join(listDir(dataDir, name), `${version}.txt`);
}

function parseState(name: string, text: string): ListState {
  const value = JSON.parse(text) as Partial<ListState>;
  return { ...emptyState(name), ...value, name };
}

export async function readState(dataDir: string, name: string): Promise<ListState> {
  try {
    return parseState(name, await readFile(path.join(listDir(dataDir, name), 'state.json'), 'utf8'));
  } catch {
    return emptyState(name);
  }
}

/** Synchronous read, for `/metrics` and the status command. */
export function readStateSync(dataDir: string, name: string): ListState {
  try {
    return parseState(name, readFileSync(path.join(listDir(dataDir, name), 'state.json'), 'utf8'));
  } catch {
    return emptyState(name);
  }
}

export async function readVersionText(dataDir: string, name: string, version: string): Promise<string | null> {
  try {
    return await readFile(versionFile(dataDir, name, version), 'utf8');
  } catch {
    return null;
  }
}

async function writeAtomically(file: string, content: string): Promise<void> {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temporary, content, { mode: 0o644 });
  await rename(temporary, file);
}

export async function writeState(dataDir: string, state: ListState): Promise<void> {
  const dir = listDir(dataDir, state.name);
  await mkdir(dir, { recursive: true });
  await writeAtomically(path.join(dir, 'state.json'), `${JSON.stringify(state, null, 1)}\n`);
}

/**
 * Makes `next` the version in force: its file first, then the state that names it,
 * then the versions beyond `keep` are removed.
 */
export async function applyVersion(
  dataDir: string,
  previous: ListState,
  next: ListVersion,
  changes: Partial<ListState>,
  keep: number,
  now: number,
): Promise<ListState> {
  const dir = listDir(dataDir, previous.name);
  await mkdir(dir, { recursive: true });
  await writeAtomically(versionFile(dataDir, previous.name, next.version), next.text);
  const history = [next.version, ...previous.history.filter((v) => v !== next.version)];
  const kept = history.slice(0, Math.max(keep, 1));
  const appliedAt: Record<string, number> = {};
  for (const version of kept) appliedAt[version] = version === next.version ? now : (previous.appliedAt[version] ?? now);
  const state: ListState = {
    ...previous,
    ...changes,
    version: next.version,
    entries: next.entries,
    updatedAt: now,
    checkedAt: now,
    attemptedAt: now,
    lastError: null,
    history: kept,
    appliedAt,
  };
  await writeState(dataDir, state);
  for (const version of history.slice(kept.length)) await unlink(versionFile(dataDir, previous.name, version)).catch(() => undefined);
  return state;
}
