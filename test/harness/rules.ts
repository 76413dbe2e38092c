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

/** Runs the built CLI to completion, as a user would from the repository root (a collector's commands on its database: collector-store.ts). */
export function lachan(args: readonly string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...withCollectorDatabase(args)], { cwd: REPO_ROOT, input, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}
