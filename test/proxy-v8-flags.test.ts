import { chmodSync, readFileSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROXY_MALLOC_ENV, PROXY_V8_FLAGS } from '../src/cli/v8-flags.js';

/** PROXY_MALLOC_ENV as `NAME=value` words, as the executable's first line and `npm start` write them. */
const PROXY_MALLOC_ASSIGNMENTS = Object.entries(PROXY_MALLOC_ENV)
  .map(([name, value]) => `${name}=${value}`)
  .join(' ');
import { CLI, curl, REPO_ROOT, type RunningGateway, startGateway, startHttpOrigin } from './harness/index.js';

// The proxy's V8 flags (src/cli/v8-flags.ts) only work when given as the process
// starts: these tests check that every way a school starts the proxy gives them.

const FLAGS = PROXY_V8_FLAGS.join(' ');
const RULES = { 'policy.yaml': 'version: 1\ndefault_profile: hs\nprofiles:\n  hs:\n    name: "THPT"\n    block_categories: []\n' };
const HOSTS = '127.0.0.1 origin.test\n';
const WARNING = (line: Record<string, unknown>): boolean => Array.isArray(line.missing) && line.level === 40;

/** The command line a running process was started with. */
/** A process's environment, as the kernel holds it. */
function environment(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
}

function commandLine(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    .split('\0')
    .filter((part) => part !== '');
}

function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map(Number);
  } catch {
    return [];
  }
}

let origin: { server: Server; port: number };
beforeAll(async () => {
  origin = await startHttpOrigin((_req, res) => res.end('ok'));
});
afterAll(() => origin.server.close());

async function servesAndStops(proxy: RunningGateway): Promise<void> {
  try {
    expect((await curl(proxy.port, `http://origin.test:${origin.port}/`)).status).toBe(200);
  } finally {
    expect(await proxy.stop()).toBe(0);
  }
}

describe('V8 flags of the proxy', () => {
  it('are the same in the executable, the systemd unit and npm start', () => {
    expect(readFileSync(path.join(REPO_ROOT, 'src/cli/main.ts'), 'utf8').split('\n', 1)[0]).toBe(`#!/usr/bin/env -S ${PROXY_MALLOC_ASSIGNMENTS} node ${FLAGS}`);
    expect(readFileSync(CLI, 'utf8').split('\n', 1)[0]).toBe(`#!/usr/bin/env -S ${PROXY_MALLOC_ASSIGNMENTS} node ${FLAGS}`);
    expect(readFileSync(path.join(REPO_ROOT, 'deploy/lachan.service'), 'utf8')).toContain(
      `ExecStart=/usr/bin/node ${FLAGS} \\\n  /opt/lachan/dist/src/cli/main.js serve`,
    );
    const start = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start;
    expect(start).toContain(`node ${FLAGS} dist/src/cli/main.js serve`);
    // glibc's malloc settings, where each process starts (src/cli/v8-flags.ts).
    expect(start).toContain(`${PROXY_MALLOC_ASSIGNMENTS} node`);
    for (const [name, value] of Object.entries(PROXY_MALLOC_ENV)) {
      expect(readFileSync(path.join(REPO_ROOT, 'deploy/lachan.service'), 'utf8')).toContain(`\nEnvironment=${name}=${value}\n`);
      expect(readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8')).toContain(`\nENV ${name}=${value}\n`);
    }
  });

  it('are given when the built executable is run by its first line, and no warning is logged', async () => {
    // npm makes a package's bin executable when it installs it; the build alone does not.
    chmodSync(CLI, statSync(CLI).mode | 0o111);
    const proxy = await startGateway({ rules: RULES, hosts: HOSTS, viaShebang: true });
    expect(commandLine(proxy.child.pid!)).toEqual(expect.arrayContaining([...PROXY_V8_FLAGS]));
    for (const assignment of PROXY_MALLOC_ASSIGNMENTS.split(' ')) expect(environment(proxy.child.pid!)).toContain(assignment);
    await servesAndStops(proxy);
    // Read after a request and the shutdown: a warning would have been logged right after "listening".
    expect(proxy.logs.some(WARNING)).toBe(false);
  });

  it('missing from a single-process proxy: it still serves, and says which are missing', async () => {
    const proxy = await startGateway({ rules: RULES, hosts: HOSTS, nodeArgs: ['--no-memory-reducer'] });
    const warning = await proxy.waitForLog(WARNING);
    expect(warning.missing).toEqual(PROXY_V8_FLAGS.filter((flag) => flag !== '--no-memory-reducer'));
    expect(warning.msg).toMatch(/V8 flags/);
    await servesAndStops(proxy);
  });

  it('are passed to every cluster worker even when the primary was started without them', async () => {
    const proxy = await startGateway({ rules: RULES, hosts: HOSTS, args: ['--workers', '2'] });
    const workers = childPids(proxy.child.pid!).filter((pid) => commandLine(pid).includes(CLI));
    expect(workers).toHaveLength(2);
    for (const pid of workers) expect(commandLine(pid)).toEqual(expect.arrayContaining([...PROXY_V8_FLAGS]));
    // glibc's threshold too, though the test started the primary without it.
    for (const pid of workers) for (const assignment of PROXY_MALLOC_ASSIGNMENTS.split(' ')) expect(environment(pid)).toContain(assignment);
    await servesAndStops(proxy);
  });

  it('leave a flag the operator set as it was set', async () => {
    const proxy = await startGateway({ rules: RULES, hosts: HOSTS, args: ['--workers', '2'], nodeArgs: ['--heap-growing-percent=50'] });
    const workers = childPids(proxy.child.pid!).filter((pid) => commandLine(pid).includes(CLI));
    expect(workers).toHaveLength(2);
    for (const pid of workers) {
      const line = commandLine(pid);
      expect(line).toContain('--heap-growing-percent=50');
      expect(line).not.toContain('--heap-growing-percent=300');
      expect(line).toContain('--no-flush-bytecode');
    }
    await servesAndStops(proxy);
  });
});
