import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addSchool, collectorRows, lachan, PASSWORD } from './harness/index.js';

const dataDir = mkdtempSync(path.join(tmpdir(), 'lachan-dash-cli-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('lachan central user', () => {
  const school = addSchool(dataDir, 'TH Trạm Tấu');

  it('adds users with a scrypt hash of the password read from stdin, and lists them', () => {
    const added = lachan(['central', 'user', 'add', 'cntt', '--role', 'school-it', '--school', school.id, '--data', dataDir], `${PASSWORD}\n`);
    expect(added.code).toBe(0);
    expect(added.stdout + added.stderr).not.toContain(PASSWORD);
    expect(lachan(['central', 'user', 'add', 'xem', '--role', 'viewer', '--data', dataDir], `${PASSWORD}\n`).code).toBe(0);
    const listed = lachan(['central', 'user', 'list', '--json', '--data', dataDir]);
    expect(listed.code).toBe(0);
    const users = listed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { name: string; role: string; school: string | null });
    expect(users.map(({ name, role, school: s }) => ({ name, role, school: s }))).toEqual([
      { name: 'cntt', role: 'school-it', school: school.id },
      { name: 'xem', role: 'viewer', school: null },
    ]);
    const [{ password_hash: hash }] = collectorRows<{ password_hash: string }>(dataDir, 'SELECT password_hash FROM users WHERE name = ?', ['cntt']) as [
      { password_hash: string },
    ];
    expect(hash).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(hash).not.toContain(PASSWORD);
  });

  it('refuses bad input with one line and exit 2', () => {
    const cases: [string[], string, RegExp][] = [
      [['u1', '--role', 'root'], PASSWORD, /--role: "root" không phải một trong admin, school-it, viewer/],
      [['u2', '--role', 'school-it'], PASSWORD, /needs a school \(--school\)/],
      [['u3', '--role', 'school-it', '--school', 'khongcotruong'], PASSWORD, /no school with id khongcotruong/],
      [['u4', '--role', 'viewer', '--school', school.id], PASSWORD, /only to the school-it and tu-van roles/],
      [['u7', '--role', 'tu-van'], PASSWORD, /a tu-van user needs a school \(--school\)/],
      [['u5', '--role', 'viewer'], 'ngan', /at least 10 characters/],
      [['xem', '--role', 'viewer'], PASSWORD, /user xem exists already/],
      [['u6', '--role', 'viewer'], '', /no password on stdin/],
    ];
    for (const [args, input, message] of cases) {
      const result = lachan(['central', 'user', 'add', ...args, '--data', dataDir], input === '' ? '' : `${input}\n`);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
