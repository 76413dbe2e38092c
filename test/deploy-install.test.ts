import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './harness/index.js';

// deploy/install.sh lays a complete installation out under a temporary --root, the way
// CI or a packager would, twice, then removes it; nothing on this machine is touched.

const INSTALL = path.join(REPO_ROOT, 'deploy/install.sh');
let root: string;

function install(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const run = spawnSync('bash', [INSTALL, '--root', root, ...args], { encoding: 'utf8', timeout: 240_000 });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** Every file under DIR with a hash of its content (the size, for the dependencies). */
function listing(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (relative: string): void => {
    for (const entry of readdirSync(path.join(dir, relative), { withFileTypes: true })) {
      const child = path.join(relative, entry.name);
      if (entry.isDirectory()) {
        files.set(`${child}/`, 'dir');
        walk(child);
      } else if (child.includes('node_modules')) files.set(child, String(statSync(path.join(dir, child)).size));
      else
        files.set(
          child,
          createHash('sha256')
            .update(readFileSync(path.join(dir, child)))
            .digest('hex'),
        );
    }
  };
  walk('');
  return files;
}

/** The unit's settings, continuation lines joined: KEY → values in order. */
function unitSettings(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  for (const line of text.replace(/\\\n/g, ' ').split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match !== null) settings.set(match[1]!, [...(settings.get(match[1]!) ?? []), match[2]!.trim()]);
  }
  return settings;
}

const at = (...parts: string[]): string => path.join(root, ...parts);

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'lachan-install-'));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

// Each install copies the program and its dependencies: slow on a loaded machine.
describe('deploy/install.sh --root', { timeout: 300_000 }, () => {
  let first: Map<string, string>;

  it('lays out the program, the configuration, the data folder, the units and the nftables rules', () => {
    const result = install(['--transparent', 'vlan20', '--student-nets', '10.10.0.0/20, 10.20.0.0/20', '--student-nets6', '2001:db8:10::/56']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    for (const file of [
      'opt/lachan/dist/src/cli/main.js',
      'opt/lachan/rules/policy.yaml',
      'opt/lachan/package.json',
      'opt/lachan/node_modules/better-sqlite3/package.json',
      'etc/lachan/hosts',
      'etc/lachan/lachan.env',
      'etc/lachan/nftables-transparent.nft',
      'etc/systemd/system/lachan.service',
      'etc/systemd/system/lachan-nftables.service',
      'etc/systemd/journald.conf.d/lachan.conf',
    ])
      expect(existsSync(at(file)), file).toBe(true);
    for (const dir of ['etc/lachan/certs', 'var/lib/lachan']) expect(statSync(at(dir)).isDirectory(), dir).toBe(true);
    // Only what runs: the test tools (vitest, typescript) stay out.
    expect(existsSync(at('opt/lachan/node_modules/vitest'))).toBe(false);
    expect(existsSync(at('opt/lachan/node_modules/typescript'))).toBe(false);
    first = listing(root);
  });

  it('installs a program that runs from its own folder and loads the shipped rules', () => {
    const version = execFileSync(process.execPath, [at('opt/lachan/dist/src/cli/main.js'), '--version'], { encoding: 'utf8', cwd: tmpdir() });
    expect(version.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const lint = spawnSync(process.execPath, [at('opt/lachan/dist/src/cli/main.js'), 'rules', 'lint', '--rules', at('opt/lachan/rules')], {
      encoding: 'utf8',
      cwd: tmpdir(),
      timeout: 120_000,
    });
    expect(lint.stderr + lint.stdout).not.toMatch(/error/i);
    expect(lint.status).toBe(0);
  });

  it('writes a hardened unit that systemd accepts', () => {
    const unitFile = at('etc/systemd/system/lachan.service');
    const verify = spawnSync('systemd-analyze', ['verify', unitFile, at('etc/systemd/system/lachan-nftables.service')], { encoding: 'utf8' });
    if (verify.error === undefined) {
      expect(verify.stdout + verify.stderr).toBe('');
      expect(verify.status).toBe(0);
    }
    const unit = unitSettings(readFileSync(unitFile, 'utf8'));
    expect(unit.get('User')).toEqual(['lachan']);
    expect(unit.get('ProtectSystem')).toEqual(['strict']);
    expect(unit.get('NoNewPrivileges')).toEqual(['yes']);
    expect(unit.get('PrivateTmp')).toEqual(['yes']);
    expect(unit.get('ReadWritePaths')).toEqual(['/var/lib/lachan']);
    expect(unit.get('CapabilityBoundingSet')).toEqual(['']);
    expect(unit.get('AmbientCapabilities')).toEqual(['']);
    expect(unit.has('StandardOutput')).toBe(false); // journald, the default
    const exec = unit.get('ExecStart')![0]!.split(/\s+/);
    expect(exec[0]).toBe(process.execPath === '/usr/bin/node' ? '/usr/bin/node' : expect.stringMatching(/node$/));
    expect(exec).toEqual(expect.arrayContaining(['/opt/lachan/dist/src/cli/main.js', 'serve', '--data', '/var/lib/lachan', '$LACHAN_SERVE_OPTIONS']));
    expect(readFileSync(at('etc/lachan/lachan.env'), 'utf8')).toContain(
      'LACHAN_SERVE_OPTIONS="--host :: --port 3128 --transparent-http 3080 --transparent-https 3443"',
    );
  });

  it('fills the nftables rules in for both address families, and nft accepts them', () => {
    const rules = readFileSync(at('etc/lachan/nftables-transparent.nft'), 'utf8');
    expect(rules).toContain('define STUDENT_IF = "vlan20"');
    expect(rules).toContain('define STUDENT_NETS4 = { 10.10.0.0/20, 10.20.0.0/20 }');
    expect(rules).toContain('define STUDENT_NETS6 = { 2001:db8:10::/56 }');
    expect(rules).toMatch(/table inet lachan \{/);
    expect(rules).toMatch(/ip6 saddr \$STUDENT_NETS6 tcp dport 443 redirect/);
    expect(rules).toMatch(/udp dport 443 drop/);
    const check = spawnSync('nft', ['-c', '-f', at('etc/lachan/nftables-transparent.nft')], { encoding: 'utf8' });
    if (check.error === undefined) expect(check.stderr).toBe('');
  });

  it('is idempotent and keeps what the school edited', () => {
    appendFileSync(at('etc/lachan/hosts'), '10.0.0.5 thuvien.truong.local\n');
    appendFileSync(at('opt/lachan/rules/policy.yaml'), '# sửa bởi nhà trường\n');
    writeFileSync(at('var/lib/lachan/events.db'), 'data');
    const again = install([]);
    expect(again.code).toBe(0);
    const second = listing(root);
    const changed = [...second].filter(([file, hash]) => first.get(file) !== hash).map(([file]) => file);
    expect(changed.sort()).toEqual(['etc/lachan/hosts', 'opt/lachan/rules/policy.yaml', 'var/lib/lachan/events.db']);
    expect([...first.keys()].filter((file) => !second.has(file))).toEqual([]);
    expect(readFileSync(at('etc/lachan/hosts'), 'utf8')).toContain('thuvien.truong.local');
    expect(readFileSync(at('opt/lachan/rules/policy.yaml'), 'utf8')).toContain('# sửa bởi nhà trường');
  });

  it('asks for CAP_NET_BIND_SERVICE only when a port below 1024 is wanted', () => {
    expect(install(['--transparent', 'vlan20', '--transparent-http', '80', '--transparent-https', '443']).code).toBe(0);
    const unit = unitSettings(readFileSync(at('etc/systemd/system/lachan.service'), 'utf8'));
    expect(unit.get('CapabilityBoundingSet')).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(unit.get('AmbientCapabilities')).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(install(['--transparent', 'vlan20']).code).toBe(0);
    expect(unitSettings(readFileSync(at('etc/systemd/system/lachan.service'), 'utf8')).get('CapabilityBoundingSet')).toEqual(['']);
  });

  it('refuses a bad option with one line and exit code 2', () => {
    const bad = install(['--port', 'http']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('--port');
    const badInterface = install(['--transparent', 'eth0; rm -rf /']);
    expect(badInterface.code).toBe(2);
  });

  it('--uninstall keeps the configuration and data; --purge leaves nothing of lachan', () => {
    expect(install(['--uninstall']).code).toBe(0);
    const kept = [...listing(root).keys()].filter((file) => !file.endsWith('/'));
    expect(kept.sort()).toEqual(['etc/lachan/hosts', 'etc/lachan/lachan.env', 'etc/lachan/nftables-transparent.nft', 'var/lib/lachan/events.db']);
    expect(install(['--uninstall', '--purge']).code).toBe(0);
    const left = [...listing(root).keys()];
    expect(left.filter((file) => !file.endsWith('/'))).toEqual([]);
    expect(left.filter((file) => file.includes('lachan'))).toEqual([]);
  });
});
