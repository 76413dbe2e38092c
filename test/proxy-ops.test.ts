import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createServer, type Server } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../src/proxy/auth.js';
import { curl, makeRulesDir, startGateway, startHttpOrigin, writeRulesFiles } from './harness/index.js';

const policy = (blocked: string, extra = ''): string => `version: 1
default_profile: tieu-hoc
profiles:
  tieu-hoc:
    name: "Tiểu học"
    block_categories: [gambling]
    block_domains: [${blocked}]
  giao-vien:
    name: "Giáo viên"
    block_categories: []
${extra}`;

let origin: { server: HttpServer; port: number };
let hanging: Server;
let hangingPort: number;
let resetting: Server;
let resettingPort: number;

beforeAll(async () => {
  origin = await startHttpOrigin((req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('late'), 1500);
    else res.end(`ok ${req.url}`);
  });
  hanging = createServer(() => undefined).listen(0, '127.0.0.1');
  resetting = createServer((socket) => socket.once('data', () => socket.resetAndDestroy())).listen(0, '127.0.0.1');
  await Promise.all([hanging, resetting].map((s) => new Promise((r) => s.once('listening', r))));
  hangingPort = (hanging.address() as { port: number }).port;
  resettingPort = (resetting.address() as { port: number }).port;
});

afterAll(() => {
  origin.server.close();
  hanging.close();
  resetting.close();
});

const HOSTS = '127.0.0.1 origin.test other.test hang.test reset.test bet.test\n';

describe('upstream failures', () => {
  it('turns a reset into 502 and a hanging origin into 504, and keeps serving', async () => {
    const proxy = await startGateway({
      rules: { 'policy.yaml': policy('nothing.test'), 'categories/gambling/domains': 'bet.test\n' },
      hosts: HOSTS,
      args: ['--upstream-timeout', '1'],
    });
    try {
      const reset = await curl(proxy.port, `http://reset.test:${resettingPort}/`);
      expect(reset.status).toBe(502);
      const hung = await curl(proxy.port, `http://hang.test:${hangingPort}/`);
      expect(hung.status).toBe(504);
      expect(hung.body).toContain('không trả lời kịp');
      expect((await curl(proxy.port, `http://origin.test:${origin.port}/`)).status).toBe(200);
    } finally {
      await proxy.stop();
    }
  });
});

describe('reload', () => {
  it('reloads on SIGHUP and on file change, and keeps the old rules when the new ones are broken', async () => {
    const rulesDir = makeRulesDir({ 'policy.yaml': policy('nothing.test'), 'categories/gambling/domains': 'bet.test\n' });
    const proxy = await startGateway({ rules: {}, rulesDir, hosts: HOSTS });
    try {
      const url = `http://other.test:${origin.port}/`;
      expect((await curl(proxy.port, url)).status).toBe(200);

      // A file change: the watcher reloads without a signal.
      writeRulesFiles(rulesDir, { 'policy.yaml': policy('other.test') });
      await proxy.waitForLog((l) => l.msg === 'rules reloaded');
      expect((await curl(proxy.port, url)).status).toBe(403);

      // A broken file is refused with FILE:LINE; the loaded rules keep serving.
      writeRulesFiles(rulesDir, { 'categories/gambling/domains': 'bet.test\nnot a domain\n' });
      const refused = await proxy.waitForLog((l) => l.msg === 'rules reload refused; the rules already loaded keep serving');
      expect(JSON.stringify(refused.problems)).toMatch(/categories\/gambling\/domains:2: bad domain/);
      expect((await curl(proxy.port, url)).status).toBe(403);
      expect((await curl(proxy.port, `http://bet.test:${origin.port}/`)).status).toBe(403);

      // Fixed, then SIGHUP.
      writeRulesFiles(rulesDir, { 'categories/gambling/domains': 'bet.test\n', 'policy.yaml': policy('nothing.test') });
      const reloads = proxy.logs.filter((l) => l.msg === 'rules reloaded').length;
      await new Promise((r) => setTimeout(r, 600));
      proxy.child.kill('SIGHUP');
      await proxy.waitForLog(() => proxy.logs.filter((l) => l.msg === 'rules reloaded').length > reloads);
      expect((await curl(proxy.port, url)).status).toBe(200);
    } finally {
      await proxy.stop();
    }
  });
});

describe('shutdown', () => {
  it('drains a request in flight on SIGTERM and exits 0', async () => {
    const proxy = await startGateway({ rules: { 'policy.yaml': policy('x.test'), 'categories/gambling/domains': 'bet.test\n' }, hosts: HOSTS });
    const inFlight = curl(proxy.port, `http://origin.test:${origin.port}/slow`);
    await new Promise((r) => setTimeout(r, 300));
    const exit = proxy.stop('SIGTERM');
    const result = await inFlight;
    expect(result.status).toBe(200);
    expect(result.body).toBe('late');
    expect(await exit).toBe(0);
  });
});

describe('access log', () => {
  it('logs each forwarded request only with --access-log', async () => {
    const rules = { 'policy.yaml': policy('x.test'), 'categories/gambling/domains': 'bet.test\n' };
    const quiet = await startGateway({ rules, hosts: HOSTS });
    const logged = await startGateway({ rules, hosts: HOSTS, args: ['--access-log'] });
    try {
      const url = `http://origin.test:${origin.port}/trang`;
      expect((await curl(quiet.port, url)).status).toBe(200);
      expect((await curl(logged.port, url, ['-X', 'PUT', '-d', 'x'])).status).toBe(200);
      const line = await logged.waitForLog((l) => l.msg === 'request');
      expect(line).toMatchObject({ method: 'PUT', host: 'origin.test', status: 200, profile: 'tieu-hoc' });
      await new Promise((r) => setTimeout(r, 200));
      expect(quiet.logs.filter((l) => l.msg === 'request')).toEqual([]);
    } finally {
      await Promise.all([quiet.stop(), logged.stop()]);
    }
  });
});

describe('proxy authentication for computer labs', () => {
  it('maps a lab user to a profile; a wrong password gets 407', async () => {
    const rulesDir = makeRulesDir({
      'policy.yaml': policy('nothing.test', 'proxy_auth:\n  users_file: users\n  profiles:\n    cogiao: giao-vien\n'),
      'categories/gambling/domains': 'bet.test\n',
      users: `cogiao:${hashPassword('mật-khẩu')}\n`,
    });
    const proxy = await startGateway({ rules: {}, rulesDir, hosts: HOSTS });
    try {
      const url = `http://bet.test:${origin.port}/`;
      expect((await curl(proxy.port, url)).status).toBe(403);
      expect((await curl(proxy.port, url, ['--proxy-user', 'cogiao:mật-khẩu'])).status).toBe(200);
      expect((await curl(proxy.port, url, ['--proxy-user', 'cogiao:sai'])).status).toBe(407);
    } finally {
      await proxy.stop();
    }
  });
});

describe('cluster mode', () => {
  it('serves from two workers, reloads every worker, and aggregates /metrics', async () => {
    const rulesDir = makeRulesDir({ 'policy.yaml': policy('nothing.test'), 'categories/gambling/domains': 'bet.test\n' });
    const proxy = await startGateway({ rules: {}, rulesDir, hosts: HOSTS, args: ['--workers', '2'] });
    try {
      const url = `http://other.test:${origin.port}/`;
      for (let i = 0; i < 6; i++) expect((await curl(proxy.port, url)).status).toBe(200);
      writeFileSync(path.join(rulesDir, 'policy.yaml'), policy('other.test'));
      await new Promise((r) => setTimeout(r, 1500));
      // Separate connections land on both workers; all must have the new rules.
      for (let i = 0; i < 8; i++) expect((await curl(proxy.port, url)).status).toBe(403);
      const metrics = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
      expect(metrics).toMatch(/lachan_requests_total 14/);
      expect(metrics).toMatch(/lachan_blocks_total\{category="custom",profile="tieu-hoc"\} 8/);
      expect((await fetch(`http://127.0.0.1:${proxy.adminPort}/healthz`)).status).toBe(200);
    } finally {
      expect(await proxy.stop()).toBe(0);
    }
  });
});
