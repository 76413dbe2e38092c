import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addSchool,
  addUser,
  type Collector,
  curl,
  lachanAsync,
  type ListOrigin,
  login,
  makeRulesDir,
  policyYaml,
  SHARED_DATA,
  startCollector,
  startGateway,
  startHttpOrigin,
  startListOrigin,
  stopCollector,
} from './harness/index.js';

/** The hostsVN gambling list as published: about 65,000 hosts lines. */
const HOSTSVN_GAMBLING = readFileSync(path.join(SHARED_DATA, 'hostsvn/extensions/gambling/hosts'), 'utf8');
const BASE_LINES = HOSTSVN_GAMBLING.split('\n');
const HOST_LINES = BASE_LINES.filter((l) => /^0\.0\.0\.0\s+\S/.test(l)).length;

/** Version `day` of the list: each day 1 % of the hosts leave and as many new ones come. */
function listOnDay(day: number): string {
  const churn = Math.round(HOST_LINES / 100);
  let hostIndex = 0;
  const kept = BASE_LINES.filter((line) => {
    if (!/^0\.0\.0\.0\s+\S/.test(line)) return true;
    return hostIndex++ >= day * churn;
  });
  for (let d = 1; d <= day; d++) for (let i = 0; i < churn; i++) kept.push(`0.0.0.0 moi-${d}-${i}.nhacai.test`);
  return `${kept.join('\n')}\n`;
}

const LISTS_YAML = (url: string, refresh: string): string =>
  `lists:\n  - name: hostsvn-gambling\n    category: gambling\n    url: ${url}\n    format: hosts\n    refresh: ${refresh}\n`;

let origin: ListOrigin;
let collector: Collector;
let centralData: string;
let adminToken: string;
let school: { id: string; token: string };
let other: { id: string; token: string };
let tokenFile: string;
let rules: string;

interface Overview {
  lists: { name: string; version: string | null; entries: number; lastError: { code: string } | null }[];
  schools: Record<string, { list: string; version: string | null; stale: boolean }[]>;
}

async function overview(): Promise<Overview> {
  const response = await fetch(`${collector.url}/api/v1/lists`, { headers: { authorization: `Bearer ${adminToken}` } });
  expect(response.status).toBe(200);
  return (await response.json()) as Overview;
}

/** Waits until the collector has fetched a version other than `previous`. */
async function collectorVersionAfter(previous: string | null): Promise<string> {
  for (;;) {
    const version = (await overview()).lists[0]!.version;
    if (version !== null && version !== previous) return version;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function gatewayUpdate(data: string): Promise<{ code: number | null; result: Record<string, unknown> }> {
  const run = await lachanAsync(['lists', 'update', '--rules', rules, '--data', data, '--central', collector.url, '--token-file', tokenFile, '--json']);
  expect(run.stderr).toBe('');
  return { code: run.code, result: JSON.parse(run.stdout) as Record<string, unknown> };
}

function gatewayData(): string {
  return path.join(mkdtempSync(path.join(tmpdir(), 'lachan-gw-')), 'var');
}

beforeAll(async () => {
  origin = await startListOrigin(listOnDay(0));
  centralData = mkdtempSync(path.join(tmpdir(), 'lachan-central-lists-'));
  school = addSchool(centralData, 'TH Trạm Tấu');
  other = addSchool(centralData, 'THCS Bản Công');
  addUser(centralData, 'an.nguyen', 'admin');
  addUser(centralData, 'it.tramtau', 'school-it', school.id);
  writeFileSync(path.join(centralData, 'lists.yaml'), LISTS_YAML(origin.url, '1s'));
  collector = await startCollector(centralData);
  adminToken = readFileSync(path.join(centralData, 'admin-token'), 'utf8').trim();
  tokenFile = path.join(centralData, 'school.token');
  writeFileSync(tokenFile, `${school.token}\n`);
  // The school subscribes to the same list; with the collector it never fetches the URL itself.
  rules = makeRulesDir({
    'policy.yaml': policyYaml({ defaultProfile: 'tieu-hoc', profiles: { 'tieu-hoc': { name: 'Tiểu học', blockCategories: ['gambling'] } } }),
    'categories/gambling/domains': '',
    'lists.yaml': LISTS_YAML('http://unused.invalid/hosts', '1d'),
  });
}, 120_000);

afterAll(async () => {
  if (collector) await stopCollector(collector);
  await origin?.close();
});

describe('the collector mirrors lists for its schools', { timeout: 300_000 }, () => {
  const data = gatewayData();
  let full = 0;

  it('serves the whole list first, then 304 while unchanged', async () => {
    const first = await collectorVersionAfter(null);
    const update = await gatewayUpdate(data);
    expect(update.code).toBe(0);
    expect(update.result).toMatchObject({ outcome: 'updated', via: 'central', kind: 'full', version: first });
    full = update.result.bytes as number;
    expect(full).toBeGreaterThan(100_000); // gzip of ~65,000 hosts

    const again = await gatewayUpdate(data);
    expect(again.result).toMatchObject({ outcome: 'current', kind: 'unchanged', bytes: 0 });
  });

  it('sends a school only what changed: the delta of a 1 % churn is far smaller than the list', async () => {
    const before = (await overview()).lists[0]!.version;
    origin.publish(listOnDay(1));
    const next = await collectorVersionAfter(before);
    const update = await gatewayUpdate(data);
    expect(update.code).toBe(0);
    expect(update.result).toMatchObject({ outcome: 'updated', via: 'central', kind: 'delta', version: next });
    expect(update.result.bytes as number).toBeLessThan(full / 10);
    const check = await lachanAsync(['check', '--profile', 'tieu-hoc', '--rules', rules, '--data', data, '--json', 'http://moi-1-5.nhacai.test/']);
    expect(JSON.parse(check.stdout)).toMatchObject({ action: 'block', category: 'gambling', source: `list:hostsvn-gambling@${next}` });
  });

  it('refuses a shrunken upstream version once for the district: schools keep the last good one', async () => {
    const good = (await overview()).lists[0]!.version;
    origin.publish(listOnDay(1).split('\n').slice(0, 20_000).join('\n'));
    for (;;) {
      const list = (await overview()).lists[0]!;
      if (list.lastError !== null) {
        expect(list).toMatchObject({ version: good, lastError: { code: 'LACHAN_LIST_SHRUNK' } });
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const update = await gatewayUpdate(data);
    expect(update.code).toBe(0);
    expect(update.result).toMatchObject({ outcome: 'current', version: good });
  });

  it('brings a gateway a week behind up to date in one request, with the list host gone', async () => {
    const held = (await overview()).lists[0]!.version;
    let version = held;
    for (let day = 2; day <= 8; day++) {
      origin.publish(listOnDay(day));
      version = await collectorVersionAfter(version);
    }
    await origin.close(); // the upstream is down: whatever the gateway gets comes from the collector
    const update = await gatewayUpdate(data);
    expect(update.code).toBe(0);
    expect(update.result).toMatchObject({ outcome: 'updated', via: 'central', kind: 'delta', version });
    expect(update.result.bytes as number).toBeLessThan(full / 2);
    const check = await lachanAsync([
      'check',
      '--profile',
      'tieu-hoc',
      '--rules',
      rules,
      '--data',
      data,
      '--json',
      'http://moi-8-3.nhacai.test/',
      'http://moi-1-5.nhacai.test/',
    ]);
    const decisions = check.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(decisions.map((d) => d.source)).toEqual([`list:hostsvn-gambling@${version}`, `list:hostsvn-gambling@${version}`]);
  });

  it("shows every school's list version on the dashboard and flags the school that never fetched", async () => {
    // Daily refresh from now on: a school that asked today is not stale.
    writeFileSync(path.join(centralData, 'lists.yaml'), LISTS_YAML(origin.url, '1d'));
    const current = (await overview()).lists[0]!.version;
    // Each poll reports the version the school holds.
    expect((await gatewayUpdate(data)).result).toMatchObject({ outcome: 'current', version: current });
    const view = await overview();
    expect(view.schools[school.id]).toEqual([expect.objectContaining({ list: 'hostsvn-gambling', version: current, stale: false })]);
    expect(view.schools[other.id]).toEqual([expect.objectContaining({ list: 'hostsvn-gambling', version: null, stale: true })]);

    const session = await login(collector.url, 'an.nguyen');
    const page = await fetch(`${collector.url}/lists`, { headers: { cookie: session.cookie } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<html lang="vi">');
    expect(html).toContain('THCS Bản Công');
    expect(html).toMatch(/data-school="[^"]+"><th scope="row">THCS Bản Công<\/th><td class="stale"/);
    expect(html).toMatch(/<th scope="row">TH Trạm Tấu<\/th><td><code>[0-9a-f]{12}<\/code>/);
    // A school's IT staff see their own school only.
    const own = await login(collector.url, 'it.tramtau');
    const ownPage = await (await fetch(`${collector.url}/lists`, { headers: { cookie: own.cookie } })).text();
    expect(ownPage).toContain('TH Trạm Tấu');
    expect(ownPage).not.toContain('THCS Bản Công');
    expect((await fetch(`${collector.url}/lists`, { redirect: 'manual' })).status).toBe(303);
    expect((await fetch(`${collector.url}/api/v1/lists/hostsvn-gambling`)).status).toBe(401);
  });

  it('a gateway started with --central takes its lists from the collector and blocks with them', async () => {
    const site = await startHttpOrigin();
    const proxy = await startGateway({
      rulesDir: rules,
      hosts: '127.0.0.1 moi-8-3.nhacai.test\n',
      args: ['--central', collector.url, '--school', school.id, '--token-file', tokenFile],
    });
    try {
      await proxy.waitForLog((l) => l.msg === 'list updated' && l.via === 'central', 60_000);
      await proxy.waitForLog((l) => l.msg === 'rules reloaded', 60_000);
      const blocked = await curl(proxy.port, `http://moi-8-3.nhacai.test:${site.port}/`);
      expect(blocked.status).toBe(403);
      expect(site.seen).toHaveLength(0);
    } finally {
      await proxy.stop();
      await site.close();
    }
  });
});
