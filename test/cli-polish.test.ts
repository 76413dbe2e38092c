import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, lachan, lachanLoading, makeRulesDir, REPO_ROOT } from './harness/index.js';

/** What IT staff see at the command line: one language, one line per error, clean stops. */

const POLICY = 'version: 1\ndefault_profile: t\nprofiles:\n  t:\n    name: "T"\n';
const work = mkdtempSync(path.join(tmpdir(), 'lachan-cli-'));
const rules = makeRulesDir({ 'policy.yaml': POLICY });
const spawned: ChildProcess[] = [];
/** Every process a test started through npx: none may outlive a failed test. */
const started: number[] = [];

afterAll(() => {
  for (const child of spawned) if (child.exitCode === null) child.kill('SIGKILL');
  for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
});

function serveArgs(port: number, workers: number, extra: readonly string[] = []): string[] {
  return [
    'serve',
    '--port',
    String(port),
    '--admin-port',
    '0',
    '--host',
    '127.0.0.1',
    '--workers',
    String(workers),
    '--rules',
    rules,
    '--data',
    path.join(work, `var-${port}-${workers}`),
    '--certs',
    path.join(work, 'no-certs'),
    ...extra,
  ];
}

function occupy(): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

function portOf(server: Server): number {
  return (server.address() as { port: number }).port;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

/** Every process below `pid`, from ps. */
function descendants(pid: number): number[] {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number) as [number, number]);
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [child, ppid] of rows) if (ppid === parent) found.push(child), queue.push(child);
  }
  return found;
}

/** Running (a zombie waiting for its parent to reap it has stopped). */
function alive(pid: number): boolean {
  try {
    return !execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' })
      .trim()
      .startsWith('Z');
  } catch {
    return false;
  }
}

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`never happened: ${what}`);
}

/** `npx` runs the proxy the way `npx lachan serve` does: npm, then a shell, then node (and its workers). */
async function startThroughNpx(workers: number): Promise<{ launcher: ChildProcess; port: number; processes: number[] }> {
  const command = ['node', CLI, ...serveArgs(0, workers)].map((arg) => `'${arg}'`).join(' ');
  const launcher = spawn('npx', ['--yes', '-c', command], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  spawned.push(launcher);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no "listening" line')), 60_000);
    createInterface({ input: launcher.stdout! }).on('line', (line) => {
      if (!line.includes('"msg":"listening"')) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
  });
  // The primary and each worker are up: node below the shell below npm.
  await until(() => descendants(launcher.pid!).length >= workers + 2, 'every worker started');
  const processes = descendants(launcher.pid!);
  started.push(...processes);
  return { launcher, port, processes };
}

describe('lachan at the command line', () => {
  it('prints its version and exits 0', () => {
    const result = lachan(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe((JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version);
  });

  it('says in one Vietnamese line which option is unknown', () => {
    const result = lachan(['serve', '--prot', '3128']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^lỗi: không có tuỳ chọn '--prot' \(có phải ý là --port\?\); xem "lachan --help"\n$/);
  });

  it.each([1, 2])('refuses a busy port in one line and leaves nothing running (--workers %i)', async (workers) => {
    const taken = await occupy();
    try {
      const result = lachan(serveArgs(portOf(taken), workers));
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        `lỗi: cổng ${portOf(taken)} đang được dùng (--port): một lachan khác hoặc chương trình khác (squid…) đang nghe ở 127.0.0.1:${portOf(taken)}; dừng chương trình đó hoặc chọn --port khác\n`,
      );
    } finally {
      taken.close();
    }
  });

  it.each(['0', '301', 'mười'])('refuses --connect-timeout %s in one line, naming its range', (value) => {
    const result = lachan([...serveArgs(0, 1), '--connect-timeout', value]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`lỗi: --connect-timeout phải là số giây (đến 300), không phải "${value}"\n`);
  });

  it('refuses a --data that cannot hold the database, in one line', () => {
    const file = path.join(work, 'not-a-folder');
    writeFileSync(file, 'x');
    const result = lachan([...serveArgs(0, 1), '--data', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`lỗi: không dùng được thư mục dữ liệu --data ${file}: đó là một tệp, không phải thư mục\n`);
  });

  it('puts a YAML mistake on the line where it was made', () => {
    const broken = makeRulesDir({ 'policy.yaml': 'version: 1\ndefault_profile: t\nprofiles:\n  t:\n    name: "Tiểu học\n    block_categories: [gambling]\n' });
    const lint = lachan(['rules', 'lint', '--rules', broken]);
    expect(lint.code).toBe(1);
    expect(lint.stdout + lint.stderr).toContain(`${path.join(broken, 'policy.yaml')}:5: YAML: Missing closing "quote`);
    const unclosedList = makeRulesDir({
      'policy.yaml': 'version: 1\ndefault_profile: t\nprofiles:\n  t:\n    name: T\n    block_categories: [gambling\n    inspect: true\n',
    });
    const unclosed = lachan(['rules', 'lint', '--rules', unclosedList]);
    expect(unclosed.stdout + unclosed.stderr).toMatch(/policy\.yaml:6: YAML: /);
    const serve = lachan([...serveArgs(0, 1), '--rules', broken]);
    expect(serve.code).toBe(2);
    expect(serve.stderr.split('\n')).toHaveLength(2);
    expect(serve.stderr).toMatch(/^lỗi: quy tắc bị từ chối: .*policy\.yaml:5: YAML: Missing closing "quote; xem tất cả: lachan rules lint --rules /);
  });

  it('stops every worker when npx is sent SIGTERM, and frees the port', async () => {
    const { launcher, port, processes } = await startThroughNpx(2);
    process.kill(launcher.pid!, 'SIGTERM');
    await until(() => processes.every((pid) => !alive(pid)), `processes ${processes.join(', ')} gone`);
    expect(await portIsFree(port)).toBe(true);
  }, 120_000);

  it('stops every worker on Ctrl-C (SIGINT to the whole process group)', async () => {
    const { launcher, port, processes } = await startThroughNpx(2);
    process.kill(-launcher.pid!, 'SIGINT');
    await until(() => processes.every((pid) => !alive(pid)), `processes ${processes.join(', ')} gone`);
    expect(await portIsFree(port)).toBe(true);
  }, 120_000);
});

/**
 * IT staff run `lachan rules lint` after each edit: a command loads what it runs when it
 * runs, not the proxy, its TLS, HTTP client, mail, PostgreSQL and report code with it.
 */
describe('what a command loads', () => {
  /** Packages no light command needs. */
  const HEAVY = ['undici', 'node-forge', 'nodemailer', 'pg', 'pdfkit', 'docx', 'pino', 'better-sqlite3'];
  /** The code of other commands, each behind its own action. */
  const OTHER_COMMANDS = ['src/cli/serve.js', 'src/proxy/server.js', 'src/tls/authority.js', 'src/central/server.js', 'src/events/log.js'];

  it("`lachan --version` and `lachan --help` load commander and the commands' options only", () => {
    for (const args of [['--version'], ['--help']]) {
      const run = lachanLoading(args);
      expect(run.code).toBe(0);
      expect(run.packages).toEqual(['commander']);
      expect(run.modules).toContain('src/cli/main.js');
      expect(run.modules).not.toContain('src/rules/loader.js');
      for (const module of OTHER_COMMANDS) expect(run.modules).not.toContain(module);
    }
  });

  it('`lachan rules lint` loads what reading rules needs (YAML, the public suffix list, CIDRs), none of the proxy', () => {
    const run = lachanLoading(['rules', 'lint', '--rules', rules]);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/^0 lỗi/m);
    // A package the rules truly come to need belongs in this list; a heavy one does not.
    expect(run.packages).toEqual(['commander', 'ipaddr.js', 'tldts', 'yaml']);
    for (const name of HEAVY) expect(run.packages).not.toContain(name);
    for (const module of OTHER_COMMANDS) expect(run.modules).not.toContain(module);
  });

  it('`lachan check` decides without the HTTP client that fetches the district overlay', () => {
    const run = lachanLoading(['check', '--rules', rules, '--data', path.join(work, 'no-data'), '--profile', 't', 'https://olm.vn/']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^allow {2}https:\/\/olm\.vn\//);
    for (const name of HEAVY) expect(run.packages).not.toContain(name);
  });

  it('a command loads its heavy parts when it runs: `ca export` loads the TLS code', () => {
    const run = lachanLoading(['ca', 'export', '--certs', path.join(work, 'no-ca')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^lỗi: chưa có CA/);
    expect(run.packages).toContain('node-forge');
    expect(run.modules).toContain('src/tls/authority.js');
  });
});
