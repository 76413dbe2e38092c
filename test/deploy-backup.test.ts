import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, type Collector, lachan, startCollector, stopCollector, wireEvent } from './harness/index.js';

// `lachan central backup --to FILE` copies the collector's SQLite database while the
// collector keeps storing events; the copy, put in a fresh data folder, is a working
// collector database.

const work = mkdtempSync(path.join(tmpdir(), 'lachan-backup-'));
const dataDir = path.join(work, 'central');
let collector: Collector;
let school: { id: string; token: string };

function backup(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'central', 'backup', ...args], { encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number((error as { code?: number }).code ?? 1), stdout, stderr });
    });
  });
}

async function postEvents(count: number): Promise<string[]> {
  const events = Array.from({ length: count }, () => wireEvent());
  const response = await fetch(`${collector.url}/api/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${school.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ school: school.id, events }),
  });
  expect(response.status).toBe(200);
  return events.map((e) => e.id);
}

/** A data folder holding only the backup, as after a restore on a new server. */
function restore(file: string, name: string): string {
  const restored = path.join(work, name);
  mkdirSync(restored);
  copyFileSync(file, path.join(restored, 'central.db'));
  return restored;
}

function storedIds(data: string): string[] {
  const result = lachan(['central', 'events', '--data', data, '--json']);
  expect(result.code).toBe(0);
  return result.stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as { id: string }).id);
}

beforeAll(async () => {
  mkdirSync(dataDir);
  collector = await startCollector(dataDir, ['--rate-limit', '1000']);
  const added = lachan(['central', 'school', 'add', '--name', 'THCS Sao Lưu', '--data', dataDir, '--json']);
  school = JSON.parse(added.stdout) as { id: string; token: string };
});

afterAll(async () => {
  if (collector !== undefined) await stopCollector(collector);
  rmSync(work, { recursive: true, force: true });
});

describe('lachan central backup', { timeout: 120_000 }, () => {
  it('copies the database while events keep arriving, into a file that restores to a working collector', async () => {
    const before = await postEvents(50);
    const target = path.join(work, 'central-backup.db');
    const running = backup(['--data', dataDir, '--to', target]);
    const during: string[] = [];
    let finished = false;
    void running.then(() => (finished = true));
    while (!finished) during.push(...(await postEvents(20)));
    const result = await running;
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(target);

    const copy = new Database(target, { readonly: true });
    expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
    copy.close();
    const restored = restore(target, 'restored');
    const schools = lachan(['central', 'school', 'list', '--data', restored]);
    expect(schools.stdout).toContain('THCS Sao Lưu');
    const ids = storedIds(restored);
    // Everything stored before the backup began is in it; what arrived during it may be.
    expect(ids).toEqual(expect.arrayContaining(before));
    expect(ids.every((id) => before.includes(id) || during.includes(id))).toBe(true);
  });

  it('replaces the previous backup only with a complete one', async () => {
    const target = path.join(work, 'nightly.db');
    expect((await backup(['--data', dataDir, '--to', target])).code).toBe(0);
    const later = await postEvents(10);
    expect((await backup(['--data', dataDir, '--to', target])).code).toBe(0);
    expect(storedIds(restore(target, 'nightly'))).toEqual(expect.arrayContaining(later));
  });

  it('says in one line when there is no collector database, exit code 2', async () => {
    const result = await backup(['--data', path.join(work, 'nowhere'), '--to', path.join(work, 'x.db')]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('central.db');
  });
});
