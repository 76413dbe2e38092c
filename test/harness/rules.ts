import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { withCollectorDatabase } from './collector-store.js';

/** Files of a rules folder: `policy.yaml`, `categories/<name>/domains`, … */
export type RulesFiles = Readonly<Record<string, string>>;

/** Writes a throw-away rules folder and returns its path. */
export function makeRulesDir(files: RulesFiles): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'lachan-rules-'));
  writeRulesFiles(dir, files);
  return dir;
}

/** A profile of a one-category phrases folder; no contentLimit: not inspected. A string limit stands for a value the loader must refuse. */
export interface PhrasesProfile {
  readonly name: string;
  readonly contentLimit?: number | string;
}

const PRIMARY_ONLY: Readonly<Record<string, PhrasesProfile>> = { young: { name: 'Tiểu học', contentLimit: 60 } };

/**
 * Writes a throw-away rules folder whose one category, `gambling`, has only phrases (`phrases`:
 * the file's text) and is blocked by every profile; the first profile is the default. Without
 * `profiles`: one, `young` ("Tiểu học", content_limit 60 on line 7 of policy.yaml).
 */
export function makePhrasesRulesDir(phrases: string, profiles: Readonly<Record<string, PhrasesProfile>> = PRIMARY_ONLY): string {
  const ids = Object.keys(profiles);
  const policy = [
    'version: 1',
    `default_profile: ${ids[0]}`,
    'profiles:',
    ...ids.flatMap((id) => {
      const { name, contentLimit } = profiles[id]!;
      const limit = contentLimit === undefined ? [] : [`    content_limit: ${contentLimit}`];
      return [`  ${id}:`, `    name: "${name}"`, '    block_categories: [gambling]', ...limit];
    }),
    '',
  ].join('\n');
  return makeRulesDir({ 'policy.yaml': policy, 'categories/gambling/phrases': phrases });
}

export function writeRulesFiles(dir: string, files: RulesFiles): void {
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
  }
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
export const CLI = path.join(REPO_ROOT, 'dist/src/cli/main.js');
export const SHARED_DATA = path.resolve(REPO_ROOT, '../shared/data');

/**
 * Runs the built CLI to completion, as a user would from the repository root (a collector's commands on its database: collector-store.ts).
 * With `timeoutMs`, a run still going then is killed (code null, signal SIGTERM): the run blocks the test process, whose own timeout cannot stop it.
 */
export function lachan(
  args: readonly string[],
  input?: string,
  { timeoutMs }: { timeoutMs?: number } = {},
): { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...withCollectorDatabase(args)], {
    cwd: REPO_ROOT,
    input,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    timeout: timeoutMs,
  });
  return { code: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}
