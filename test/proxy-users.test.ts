import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLI,
  curl,
  makeRulesDir,
  type Origin,
  policyYaml,
  rawExchange,
  rawStatus,
  type RunningGateway,
  startGateway,
  startHttpOrigin,
} from './harness/index.js';

function usersAdd(rulesDir: string, name: string, password: string): { status: number; stderr: string } {
  try {
    execFileSync(process.execPath, [CLI, 'users', 'add', name, '--rules', rulesDir], {
      input: `${password}\n`,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return { status: 0, stderr: '' };
  } catch (error) {
    const e = error as { status: number; stderr: string };
    return { status: e.status, stderr: e.stderr };
  }
}

let origin: Origin;
let proxy: RunningGateway;
let rulesDir: string;

beforeAll(async () => {
  origin = await startHttpOrigin((_req, res) => res.end('ok'));
  rulesDir = makeRulesDir({
    'policy.yaml': policyYaml({
      defaultProfile: 'hs',
      profiles: { hs: { name: 'Học sinh', blockCategories: ['games'] }, gv: { name: 'Giáo viên' } },
      extra: 'proxy_auth:\n  users_file: users\n  profiles:\n    thaygiao: gv\n    cogiao: gv\n',
    }),
    'categories/games/domains': 'game.test\n',
  });
  expect(usersAdd(rulesDir, 'thaygiao', 'mật khẩu dài').status).toBe(0);
  proxy = await startGateway({ rulesDir, hosts: '127.0.0.1 game.test\n' });
});

afterAll(async () => {
  await proxy?.stop();
  await origin?.close();
});

describe('lachan users add and lab authentication', () => {
  it('writes scrypt hashes only, readable by the owner alone', () => {
    const text = readFileSync(path.join(rulesDir, 'users'), 'utf8');
    expect(text).toMatch(/^thaygiao:scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+\n$/);
    expect(text).not.toContain('mật khẩu');
    expect(statSync(path.join(rulesDir, 'users')).mode & 0o077).toBe(0);
  });

  it('refuses bad names and empty passwords with exit 2', () => {
    expect(usersAdd(rulesDir, 'a b', 'secret123').status).toBe(2);
    const empty = usersAdd(rulesDir, 'cogiao', '');
    expect(empty.status).toBe(2);
    expect(empty.stderr).toContain('stdin');
  });

  it('maps the authenticated user to its profile; others get the address profile or 407', async () => {
    const url = `http://game.test:${origin.port}/`;
    expect((await curl(proxy.port, url)).status).toBe(403);
    expect((await curl(proxy.port, url, { proxyUser: 'thaygiao:mật khẩu dài' })).status).toBe(200);
    const wrong = await curl(proxy.port, url, { proxyUser: 'thaygiao:sai' });
    expect(wrong.status).toBe(407);
    expect(wrong.headers['proxy-authenticate']).toMatch(/^Basic /);
    expect(wrong.body).toContain('Cần đăng nhập');
    // A CONNECT with a wrong password is refused the same way, before any tunnel.
    const { text } = await rawExchange(
      proxy.port,
      `CONNECT game.test:443 HTTP/1.1\r\nHost: game.test:443\r\nProxy-Authorization: Basic ${Buffer.from('thaygiao:sai').toString('base64')}\r\n\r\n`,
    );
    expect(rawStatus(text)).toBe(407);
  });

  it('picks up a user added while serving (the users file is under the rules folder)', async () => {
    const url = `http://game.test:${origin.port}/`;
    expect((await curl(proxy.port, url, { proxyUser: 'cogiao:phấn trắng' })).status).toBe(407);
    const reloads = proxy.logs.filter((l) => l.msg === 'rules reloaded').length;
    expect(usersAdd(rulesDir, 'cogiao', 'phấn trắng').status).toBe(0);
    await proxy.waitForLog(() => proxy.logs.filter((l) => l.msg === 'rules reloaded').length > reloads);
    expect((await curl(proxy.port, url, { proxyUser: 'cogiao:phấn trắng' })).status).toBe(200);
  });
});
