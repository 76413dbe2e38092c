import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  curl,
  hostsList,
  lachanAsync,
  type ListOrigin,
  makeRulesDir,
  type Origin,
  policyYaml,
  refusedPort,
  type RunningGateway,
  SHARED_DATA,
  startGateway,
  startHttpOrigin,
  startListOrigin,
} from './harness/index.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const close of cleanup.reverse()) await close();
});

function rulesFor(listUrl: string, refresh = '1d'): string {
  return makeRulesDir({
    'policy.yaml': policyYaml({ defaultProfile: 'tieu-hoc', profiles: { 'tieu-hoc': { name: 'Tiểu học', blockCategories: ['gambling'] } } }),
    'categories/gambling/domains': 'local-casino.test\n',
    'lists.yaml': `lists:\n  - name: test-gambling\n    category: gambling\n    url: ${listUrl}\n    format: hosts\n    refresh: ${refresh}\n`,
  });
}

function dataDir(): string {
  return path.join(mkdtempSync(path.join(tmpdir(), 'lachan-lists-')), 'var');
}

async function checkJson(rules: string, data: string, url: string): Promise<Record<string, unknown>> {
  const result = await lachanAsync(['check', '--profile', 'tieu-hoc', '--rules', rules, '--data', data, '--json', url]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

async function status(rules: string, data: string): Promise<Record<string, unknown>> {
  const result = await lachanAsync(['lists', 'status', '--rules', rules, '--data', data, '--json']);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

describe('lachan lists update against a list host', { timeout: 180_000 }, () => {
  let origin: ListOrigin;
  let rules: string;
  let data: string;

  it('downloads the list, and check --data decides with it, naming list and version', async () => {
    origin = await startListOrigin(hostsList(100));
    cleanup.push(() => origin.close());
    rules = rulesFor(origin.url);
    data = dataDir();
    const before = await checkJson(rules, data, 'http://casino-7.test/');
    expect(before.action).toBe('allow');

    const update = await lachanAsync(['lists', 'update', '--rules', rules, '--data', data]);
    expect(update.code, update.stderr).toBe(0);
    expect(update.stdout).toContain('test-gambling: đã cập nhật');
    const state = await status(rules, data);
    expect(state.entries).toBe(100);
    const decision = await checkJson(rules, data, 'http://www.casino-7.test/x');
    expect(decision).toMatchObject({
      action: 'block',
      category: 'gambling',
      reason: 'domain',
      rule: 'casino-7.test',
      source: `list:test-gambling@${state.version as string}`,
    });
    // Without --data's lists the school's own rules alone decide.
    expect((await checkJson(rules, dataDir(), 'http://casino-7.test/')).action).toBe('allow');
  });

  it('an unchanged list costs one conditional request answered 304', async () => {
    const requests = origin.seen.length;
    const update = await lachanAsync(['lists', 'update', '--rules', rules, '--data', data]);
    expect(update.code, update.stderr).toBe(0);
    expect(update.stdout).toContain('không đổi');
    expect(origin.seen.length).toBe(requests + 1);
    expect(origin.seen.at(-1)!.headers['if-none-match']).toBeDefined();
    expect(origin.notModified()).toBe(1);
  });

  it('applies a new version that parses and keeps most entries', async () => {
    const old = (await status(rules, data)).version;
    origin.publish(hostsList(100, 'casino', 10));
    const update = await lachanAsync(['lists', 'update', '--rules', rules, '--data', data]);
    expect(update.code, update.stderr).toBe(0);
    const state = await status(rules, data);
    expect(state.version).not.toBe(old);
    expect((await checkJson(rules, data, 'http://casino-105.test/')).action).toBe('block');
    expect((await checkJson(rules, data, 'http://casino-3.test/')).action).toBe('allow');
  });

  it('keeps the last good version when the new one does not parse (exit 1, error recorded)', async () => {
    const good = (await status(rules, data)).version;
    origin.publish('<html><body>Service temporarily unavailable</body></html>\n'.repeat(50));
    const update = await lachanAsync(['lists', 'update', '--rules', rules, '--data', data]);
    expect(update.code).toBe(1);
    expect(update.stdout).toContain('TỪ CHỐI');
    const state = await status(rules, data);
    expect(state.version).toBe(good);
    expect(state.lastError).toMatchObject({ code: 'LACHAN_LIST_UNPARSEABLE' });
    expect(state.failures).toBe(1);
    expect((await checkJson(rules, data, 'http://casino-50.test/')).source).toBe(`list:test-gambling@${good as string}`);
  });

  it('refuses a version that lost more than half its entries', async () => {
    const good = (await status(rules, data)).version;
    origin.publish(hostsList(40, 'casino', 10));
    const update = await lachanAsync(['lists', 'update', '--rules', rules, '--data', data]);
    expect(update.code).toBe(1);
    const state = await status(rules, data);
    expect(state.version).toBe(good);
    expect(state.entries).toBe(100);
    expect(state.lastError).toMatchObject({ code: 'LACHAN_LIST_SHRUNK' });
    expect((await checkJson(rules, data, 'http://casino-90.test/')).action).toBe('block');
  });

  it('keeps the last good version when the list host answers an error status', async () => {
    const good = (await status(rules, data)).version;
    origin.publish('', 503);
    const update = await lachanAsync(['lists', 'update', '--rules', rules, '--data', data]);
    expect(update.code).toBe(1);
    expect((await status(rules, data)).version).toBe(good);
    expect((await status(rules, data)).lastError).toMatchObject({ code: 'LACHAN_LIST_HTTP' });
  });

  it('keeps the last good version when the list host is unreachable, and says so in status', async () => {
    const unreachable = rulesFor(`http://127.0.0.1:${await refusedPort()}/list.txt`);
    const good = (await status(rules, data)).version;
    const update = await lachanAsync(['lists', 'update', '--rules', unreachable, '--data', data]);
    expect(update.code).toBe(1);
    expect(update.stdout).toContain('KHÔNG TẢI ĐƯỢC');
    const state = await status(unreachable, data);
    expect(state.version).toBe(good);
    expect(state.lastError).toMatchObject({ code: 'LACHAN_LIST_UNREACHABLE' });
    const text = await lachanAsync(['lists', 'status', '--rules', unreachable, '--data', data]);
    expect(text.stdout).toContain(`phiên bản ${good as string}`);
    expect(text.stdout).toContain('LACHAN_LIST_UNREACHABLE');
  });

  it('rules lint reports a subscription whose category has no folder', async () => {
    const lint = await lachanAsync([
      'rules',
      'lint',
      '--rules',
      makeRulesDir({
        'policy.yaml': policyYaml({ defaultProfile: 'p', profiles: { p: { name: 'P' } } }),
        'lists.yaml': 'lists:\n  - name: x\n    category: co-bac\n    url: https://example.org/x\n    format: domains\n    refresh: 12h\n',
      }),
    ]);
    expect(lint.code).toBe(1);
    expect(lint.stdout).toMatch(/lists\.yaml:2: list "x": no folder categories\/co-bac/);
  });

  it('exits 2 with FILE:LINE on a broken lists.yaml', async () => {
    const broken = makeRulesDir({
      'policy.yaml': policyYaml({ defaultProfile: 'p', profiles: { p: { name: 'P' } } }),
      'lists.yaml': 'lists:\n  - name: x\n    category: gambling\n    url: ftp://example.org/x\n    format: hosts\n',
    });
    const update = await lachanAsync(['lists', 'update', '--rules', broken, '--data', dataDir()]);
    expect(update.code).toBe(2);
    expect(update.stderr).toMatch(/lists\.yaml:4: url "ftp:\/\/example\.org\/x"/);
  });
});

describe('a running gateway refreshes its lists itself', { timeout: 180_000 }, () => {
  let origin: ListOrigin;
  let site: Origin;
  let proxy: RunningGateway;

  it('picks up a new version without a restart or a dropped request, and /metrics exports list age', async () => {
    origin = await startListOrigin(hostsList(20, 'casino'));
    site = await startHttpOrigin();
    cleanup.push(
      () => origin.close(),
      () => site.close(),
    );
    // Two workers: the primary downloads, every worker reloads.
    proxy = await startGateway({ rulesDir: rulesFor(origin.url, '1s'), workers: 2, hosts: '127.0.0.1 new-casino.test casino-1.test school.test\n' });
    cleanup.push(() => proxy.stop());
    await proxy.waitForLog((l) => l.msg === 'list updated' && l.list === 'test-gambling', 60_000);
    // Both workers reload.
    await proxy.waitForLog(() => proxy.logs.filter((l) => l.msg === 'rules reloaded').length >= 2, 60_000);
    expect((await curl(proxy.port, `http://casino-1.test:${site.port}/`)).status).toBe(403);
    expect((await curl(proxy.port, `http://new-casino.test:${site.port}/`)).status).toBe(200);

    const reloads = proxy.logs.filter((l) => l.msg === 'rules reloaded').length;
    // Requests keep coming while the new version is downloaded and both workers reload.
    let reloaded = false;
    const statuses: number[] = [];
    const traffic = (async () => {
      while (!reloaded) {
        const batch = await Promise.all([1, 2, 3, 4].map(() => curl(proxy.port, `http://school.test:${site.port}/bai-hoc`)));
        statuses.push(...batch.map((r) => r.status));
      }
    })();
    origin.publish(`${hostsList(20, 'casino')}0.0.0.0 new-casino.test\n`);
    await proxy.waitForLog((l) => l.msg === 'list updated' && l.entries === 21, 60_000);
    await proxy.waitForLog(() => proxy.logs.filter((l) => l.msg === 'rules reloaded').length >= reloads + 2, 60_000);
    reloaded = true;
    await traffic;
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    for (let i = 0; i < 4; i++) {
      const blocked = await curl(proxy.port, `http://new-casino.test:${site.port}/`);
      expect(blocked.status).toBe(403);
      expect(blocked.headers['x-lachan-block']).toBe('gambling');
    }

    const metrics = await curl(null, `http://127.0.0.1:${proxy.adminPort}/metrics`);
    expect(metrics.body).toMatch(/^lachan_list_age_seconds\{list="test-gambling"\} \d+$/m);
    expect(metrics.body).toMatch(/^lachan_list_entries\{list="test-gambling",version="[0-9a-f]{12}"\} 21$/m);
  });
});

describe('a UT1 category archive', { timeout: 180_000 }, () => {
  it('subscribes to NAME.tar.gz as UT1 publishes it: domains and urls join the category', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'lachan-ut1-'));
    const archive = path.join(work, 'gambling.tar.gz');
    execFileSync('tar', ['-czf', archive, '-C', path.join(SHARED_DATA, 'ut1'), 'gambling']);
    const body = readFileSync(archive);
    const origin = await startHttpOrigin((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': body.length });
      res.end(body);
    });
    cleanup.push(() => origin.close());
    const rules = makeRulesDir({
      'policy.yaml': policyYaml({ defaultProfile: 'tieu-hoc', profiles: { 'tieu-hoc': { name: 'Tiểu học', blockCategories: ['gambling'] } } }),
      'categories/gambling/domains': '',
      'lists.yaml': `lists:\n  - name: ut1-gambling\n    category: gambling\n    url: http://127.0.0.1:${origin.port}/blacklists/download/gambling.tar.gz\n    format: ut1\n    refresh: 7d\n`,
    });
    const data = dataDir();
    const update = await lachanAsync(['lists', 'update', '--rules', rules, '--data', data]);
    expect(update.code, update.stdout + update.stderr).toBe(0);
    const state = await status(rules, data);
    expect(state.entries).toBeGreaterThan(32_000);
    expect(await checkJson(rules, data, 'http://000-online-casino.com/')).toMatchObject({
      action: 'block',
      source: `list:ut1-gambling@${state.version as string}`,
    });
    expect(await checkJson(rules, data, 'http://top-lasvegas.com/en/roulette')).toMatchObject({ action: 'block', reason: 'url', rule: 'top-lasvegas.com/en' });
  });
});
