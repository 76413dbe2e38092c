/**
 * Two `lachan central serve` processes with different data folders on one PostgreSQL
 * database share what each used to keep in its own folder (docs/scaling.md): the admin
 * token (one works on both; a rotated one stops working on both) and the lists mirror
 * (the district asks the list's host once a refresh interval, not once a process; either
 * process answers 304 or a delta for a version the other served; the dashboard sees every
 * school whichever process it asked).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Collector,
  hostsList,
  lachan,
  lachanAsync,
  makeRulesDir,
  type Origin,
  policyYaml,
  type PostgresServer,
  startCollector,
  startHttpOrigin,
  startPostgres,
  stopCollector,
} from './harness/index.js';

const REFRESH_MS = 2_000;
const LISTS_YAML = (url: string, refresh: string): string =>
  `lists:\n  - name: hostsvn-gambling\n    category: gambling\n    url: ${url}\n    format: hosts\n    refresh: ${refresh}\n`;

/** The list's host: ETag and 304 as list hosts do, and every request it saw, with when it came. */
interface Upstream {
  readonly origin: Origin;
  readonly url: string;
  readonly requests: { at: number; conditional: boolean; status: number }[];
  publish(body: string): void;
}

async function startUpstream(initial: string): Promise<Upstream> {
  let body = initial;
  const etag = () => `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
  const requests: Upstream['requests'] = [];
  const origin = await startHttpOrigin((req, res) => {
    const conditional = req.headers['if-none-match'] !== undefined;
    const status = req.headers['if-none-match'] === etag() ? 304 : 200;
    requests.push({ at: Date.now(), conditional, status });
    res.writeHead(status, { etag: etag(), 'content-type': 'text/plain; charset=utf-8' });
    res.end(status === 200 ? body : undefined);
  });
  return { origin, url: `http://127.0.0.1:${origin.port}/hosts`, requests, publish: (next) => void (body = next) };
}

let server: PostgresServer;
let database: string;
let upstream: Upstream;
const dirs: string[] = [];
let collectors: Collector[] = [];
const schools: { id: string; token: string; tokenFile: string }[] = [];
let rules: string;
let adminToken = '';
const firstGateway = path.join(mkdtempSync(path.join(tmpdir(), 'lachan-gw-')), 'var');

function central(args: string[], data = dirs[0]!) {
  return lachan(['central', ...args, '--data', data, '--database', database]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The status `collector` answers `token` on the dashboard API. */
async function statsStatus(collector: Collector, token: string): Promise<number> {
  const response = await fetch(`${collector.url}/api/v1/stats`, { headers: { authorization: `Bearer ${token}` } });
  await response.arrayBuffer();
  return response.status;
}

interface Overview {
  lists: { name: string; version: string | null }[];
  schools: Record<string, { list: string; version: string | null; stale: boolean }[]>;
}

async function overview(collector: Collector): Promise<Overview> {
  const response = await fetch(`${collector.url}/api/v1/lists`, { headers: { authorization: `Bearer ${adminToken}` } });
  expect(response.status).toBe(200);
  return (await response.json()) as Overview;
}

/** Waits until both processes serve a version other than `previous`; that version. */
async function districtVersionAfter(previous: string | null): Promise<string> {
  for (;;) {
    const versions = await Promise.all(collectors.map(async (c) => (await overview(c)).lists[0]!.version));
    if (versions[0] !== null && versions[0] !== previous && versions[1] === versions[0]) return versions[0];
    await sleep(200);
  }
}

async function gatewayUpdate(data: string, collector: Collector, school: (typeof schools)[number]) {
  const run = await lachanAsync(['lists', 'update', '--rules', rules, '--data', data, '--central', collector.url, '--token-file', school.tokenFile, '--json']);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

beforeAll(async () => {
  server = await startPostgres();
  database = await server.createDatabase();
  upstream = await startUpstream(hostsList(3_000));
  for (let i = 0; i < 2; i++) {
    const dir = mkdtempSync(path.join(tmpdir(), `lachan-pg-shared-${i}-`));
    dirs.push(dir);
    // Every machine is given the district's lists.yaml; what they fetch is shared.
    writeFileSync(path.join(dir, 'lists.yaml'), LISTS_YAML(upstream.url, `${REFRESH_MS / 1000}s`));
  }
  for (const name of ['TH Hai Máy', 'THCS Một Máy']) {
    const added = central(['school', 'add', '--name', name, '--json']);
    expect(added.code, added.stderr).toBe(0);
    const school = JSON.parse(added.stdout) as { id: string; token: string };
    const tokenFile = path.join(dirs[0]!, `${school.id}.token`);
    writeFileSync(tokenFile, `${school.token}\n`);
    schools.push({ ...school, tokenFile });
  }
  rules = makeRulesDir({
    'policy.yaml': policyYaml({ defaultProfile: 'tieu-hoc', profiles: { 'tieu-hoc': { name: 'Tiểu học', blockCategories: ['gambling'] } } }),
    'categories/gambling/domains': '',
    'lists.yaml': LISTS_YAML('http://unused.invalid/hosts', '1d'),
  });
  // Both start together, as after a district-wide restart.
  collectors = await Promise.all(dirs.map((dir) => startCollector(dir, ['--database', database])));
}, 180_000);

afterAll(async () => {
  await Promise.all(collectors.map(stopCollector));
  await upstream?.origin.close();
  await server?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('collector processes with different data folders on one PostgreSQL database', { timeout: 180_000 }, () => {
  it('share one admin token, and a rotated one stops working on both', async () => {
    // The process that made the token wrote it to its folder; the other has none of its own.
    const holders = dirs.filter((dir) => existsSync(path.join(dir, 'admin-token')));
    expect(holders).toHaveLength(1);
    const creator = holders[0]!;
    const other = dirs.find((dir) => dir !== creator)!;
    const first = readFileSync(path.join(creator, 'admin-token'), 'utf8').trim();
    adminToken = first;
    for (const collector of collectors) expect(await statsStatus(collector, first)).toBe(200);
    expect(await statsStatus(collectors[0]!, 'lca_not-the-token')).toBe(401);

    // The operator of the other machine: the command says where the token is, or makes a new one.
    const printed = central(['admin-token'], creator);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout.trim()).toBe(first);
    const missing = central(['admin-token'], other);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('--rotate');

    const rotated = central(['admin-token', '--rotate'], other);
    expect(rotated.code, rotated.stderr).toBe(0);
    const second = rotated.stdout.trim();
    expect(second).toMatch(/^lca_[A-Za-z0-9_-]{43}$/);
    expect(readFileSync(path.join(other, 'admin-token'), 'utf8').trim()).toBe(second);
    // Every process hears of the rotation (NOTIFY), within moments.
    for (const collector of collectors) {
      for (let tries = 0; (await statsStatus(collector, first)) !== 401; tries++) {
        expect(tries, 'the old token still works').toBeLessThan(100);
        await sleep(100);
      }
      expect(await statsStatus(collector, second)).toBe(200);
    }
    // The creator's file is now stale: the command says so rather than print a dead token.
    expect(central(['admin-token'], creator).code).toBe(1);
    adminToken = second;
  });

  it("fetch a list from its host once a refresh interval for the district, and answer from each other's versions", async () => {
    const first = await districtVersionAfter(null);
    const gateway = firstGateway;
    // The gateway takes the list from one process…
    expect(await gatewayUpdate(gateway, collectors[0]!, schools[0]!)).toMatchObject({ outcome: 'updated', via: 'central', kind: 'full', version: first });
    // …and the other knows that version: 304.
    expect(await gatewayUpdate(gateway, collectors[1]!, schools[0]!)).toMatchObject({ outcome: 'current', kind: 'unchanged', bytes: 0, version: first });

    upstream.publish(hostsList(3_050));
    const second = await districtVersionAfter(first);
    // The other process sends what changed since the version the first one served.
    const delta = await gatewayUpdate(gateway, collectors[1]!, schools[0]!);
    expect(delta).toMatchObject({ outcome: 'updated', via: 'central', kind: 'delta', version: second });
    expect(delta.bytes as number).toBeLessThan(Buffer.byteLength(hostsList(3_050)) / 10);

    // Let both processes look several times more, then count what the host saw.
    while (upstream.requests.length < 6) await sleep(250);
    const seen = [...upstream.requests];
    expect(seen.filter((r) => !r.conditional)).toHaveLength(1);
    expect(seen.filter((r) => r.status === 200)).toHaveLength(2); // one download a version, for both processes
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.at - seen[i - 1]!.at).toBeGreaterThanOrEqual(REFRESH_MS - 10);
  });

  it("show every school's list version on either process", async () => {
    // Daily from now on: a school that asked today is not stale.
    for (const dir of dirs) writeFileSync(path.join(dir, 'lists.yaml'), LISTS_YAML(upstream.url, '1d'));
    const current = (await overview(collectors[0]!)).lists[0]!.version;
    // A school reports what it holds when it asks: the first school asks the first process, the second school the second.
    expect(await gatewayUpdate(firstGateway, collectors[0]!, schools[0]!)).toMatchObject({ outcome: 'current', version: current });
    const gateway = path.join(mkdtempSync(path.join(tmpdir(), 'lachan-gw-')), 'var');
    expect(await gatewayUpdate(gateway, collectors[1]!, schools[1]!)).toMatchObject({ outcome: 'updated', kind: 'full', version: current });
    expect(await gatewayUpdate(gateway, collectors[1]!, schools[1]!)).toMatchObject({ outcome: 'current', version: current });
    for (const collector of collectors) {
      const view = await overview(collector);
      for (const school of schools)
        expect(view.schools[school.id], collector.url).toEqual([expect.objectContaining({ list: 'hostsvn-gambling', version: current, stale: false })]);
    }
  });
});
