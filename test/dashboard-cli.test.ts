import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addSchool, collectorRows, lachan, PASSWORD } from './harness/index.js';

const dataDir = mkdtempSync(path.join(tmpdir(), 'lachan-dash-cli-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/**
 * Each case below is its own CLI run (`user add` takes one user), and a run is mostly Node
 * loading the CLI: about a second on an idle 2-core box, 7 s seen at a load of 14. So a
 * test's budget is counted in the runs it makes, not the suite's flat 30 s, and each run is
 * killed at its allowance, so that a hung run fails by name instead of holding up the file.
 */
const RUN_ALLOWANCE_MS = 30_000;
const run = (args: readonly string[], input?: string) => lachan([...args, '--data', dataDir], input, { timeoutMs: RUN_ALLOWANCE_MS });
const budgetFor = (runs: number) => ({ timeout: runs * RUN_ALLOWANCE_MS });
/** How a run ended: a killed run shows as its signal, not as a wrong exit code. */
const ending = (result: ReturnType<typeof run>) => ({ code: result.code, signal: result.signal });

describe('lachan central user', () => {
  const school = addSchool(dataDir, 'TH Trạm Tấu');

  it('adds users with a scrypt hash of the password read from stdin, and lists them', budgetFor(4), () => {
    // Three CLI runs, and on PostgreSQL a psql for the hash.
    const added = run(['central', 'user', 'add', 'cntt', '--role', 'school-it', '--school', school.id], `${PASSWORD}\n`);
    expect(ending(added)).toEqual({ code: 0, signal: null });
    expect(added.stdout + added.stderr).not.toContain(PASSWORD);
    expect(ending(run(['central', 'user', 'add', 'xem', '--role', 'viewer'], `${PASSWORD}\n`))).toEqual({ code: 0, signal: null });
    const listed = run(['central', 'user', 'list', '--json']);
    expect(ending(listed)).toEqual({ code: 0, signal: null });
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

  const refusals: [string[], string, RegExp][] = [
    [['u1', '--role', 'root'], PASSWORD, /--role: "root" không phải một trong admin, school-it, viewer/],
    [['u2', '--role', 'school-it'], PASSWORD, /needs a school \(--school\)/],
    [['u3', '--role', 'school-it', '--school', 'khongcotruong'], PASSWORD, /no school with id khongcotruong/],
    [['u4', '--role', 'viewer', '--school', school.id], PASSWORD, /only to the school-it and tu-van roles/],
    [['u7', '--role', 'tu-van'], PASSWORD, /a tu-van user needs a school \(--school\)/],
    [['u5', '--role', 'viewer'], 'ngan', /at least 10 characters/],
    [['xem', '--role', 'viewer'], PASSWORD, /user xem exists already/],
    [['u6', '--role', 'viewer'], '', /no password on stdin/],
  ];

  it('refuses bad input with one line and exit 2', budgetFor(refusals.length), () => {
    for (const [args, input, message] of refusals) {
      const result = run(['central', 'user', 'add', ...args], input === '' ? '' : `${input}\n`);
      expect(ending(result), args.join(' ')).toEqual({ code: 2, signal: null });
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
