import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  collectorRows,
  type Collector,
  curl,
  lachan,
  makeRulesDir,
  refusedPort,
  type RunningGateway,
  startCollector,
  startGateway,
  startHttpOrigin,
  stopCollector,
} from './harness/index.js';

// Review requests, the gateway's half: what a child sends from the block page (or the report
// form) is stored at the school, waits while the district's collector is away, and
// reaches the review queue once, without the child's address or the query string.
const work = mkdtempSync(path.join(tmpdir(), 'lachan-review-requests-'));
const centralData = path.join(work, 'central');
const gatewayData = path.join(work, 'gateway');
const tokenFile = path.join(work, 'token');
const RULES = {
  'policy.yaml':
    'version: 1\ndefault_profile: tieu-hoc\nprofiles:\n  tieu-hoc:\n    name: "Tiểu học"\n    block_categories: [games]\n  giao-vien:\n    name: "Giáo viên"\n    block_categories: []\n',
  'categories/games/domains': 'game.test\n',
};
let rulesDir: string;
let schoolId: string;
let collectorPort: number;
let collector: Collector | null = null;
let gateway: RunningGateway;
let origin: Awaited<ReturnType<typeof startHttpOrigin>>;

interface QueuedRow {
  id: string;
  kind: string;
  host: string;
  path: string;
  category: string | null;
  profile: string;
  event_id: string | null;
  reference: string | null;
  note: string;
  client: string;
}

interface LocalRequest {
  kind: string;
  host: string;
  path: string;
  profile: string;
  shippedAt: number | null;
}

function queued(): QueuedRow[] {
  return collectorRows<QueuedRow>(centralData, 'SELECT * FROM review_requests WHERE school = ? ORDER BY seq', [schoolId]);
}

function localRequests(): LocalRequest[] {
  const listed = lachan(['logs', '--data', gatewayData, '--reviews', '--json']);
  expect(listed.code, listed.stderr).toBe(0);
  return listed.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LocalRequest);
}

async function eventually<T>(probe: () => T | null, what: string, seconds = 20): Promise<T> {
  for (let i = 0; i < seconds * 5; i++) {
    const value = probe();
    if (value !== null) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not seen within ${seconds} s`);
}

function startSchoolGateway(): Promise<RunningGateway> {
  return startGateway({
    rules: RULES,
    rulesDir,
    hosts: '127.0.0.1 game.test\n127.0.0.1 hoc.test\n',
    args: ['--data', gatewayData, '--central', `http://127.0.0.1:${collectorPort}`, '--school', schoolId, '--token-file', tokenFile],
  });
}

beforeAll(async () => {
  const enrolment = lachan(['central', 'school', 'add', '--name', 'TH Bản Mù', '--data', centralData, '--json']);
  expect(enrolment.code, enrolment.stderr).toBe(0);
  const school = JSON.parse(enrolment.stdout) as { id: string; token: string };
  schoolId = school.id;
  writeFileSync(tokenFile, `${school.token}\n`, { mode: 0o600 });
  rulesDir = makeRulesDir(RULES);
  collectorPort = await refusedPort();
  origin = await startHttpOrigin();
  // The collector is not up yet: the district link is down when the child asks.
  gateway = await startSchoolGateway();
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  if (collector !== null) await stopCollector(collector);
  origin?.server.close();
  rmSync(work, { recursive: true, force: true });
});

describe('review requests and reports travel from the gateway to the district', () => {
  it('keeps a review request from the block page while the collector is down, then delivers it once, tied to its block', async () => {
    const blocked = await curl(gateway.port, `http://game.test:${origin.port}/bai-1?lop=4a`);
    expect(blocked.status).toBe(403);
    const reference = /<dt>Mã số<\/dt><dd>([^<]+)<\/dd>/.exec(blocked.body)?.[1];
    expect(reference).toBeDefined();
    // The form names a profile; the gateway trusts its own decision instead (this client is tieu-hoc).
    const form = new URLSearchParams({
      ref: reference!,
      host: 'game.test',
      category: 'games',
      profile: 'giao-vien',
      note: 'Trang luyện toán cô giao',
    }).toString();
    const posted = await curl(gateway.port, `http://game.test:${origin.port}/__lachan__/review`, { args: ['--data', form] });
    expect(posted.status).toBe(200);
    expect(posted.body).toContain('Đã gửi đề nghị xem lại');
    // The thank-you page gives the reference to quote and says what happens next.
    expect(posted.body).toContain(`<b>${reference!}</b>`);
    expect(posted.body).toContain('Điều gì xảy ra tiếp theo?');
    expect(localRequests()).toEqual([expect.objectContaining({ kind: 'review', host: 'game.test', profile: 'tieu-hoc', shippedAt: null })]);

    collector = await startCollector(centralData, [], collectorPort);
    const rows = await eventually(() => (queued().length > 0 ? queued() : null), 'the review request at the collector');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      kind: 'review',
      host: 'game.test',
      path: '/bai-1',
      category: 'games',
      profile: 'tieu-hoc',
      reference,
      note: 'Trang luyện toán cô giao',
    });
    expect(rows[0]!.event_id).toMatch(/^[0-9A-Z]{26}$/);
    expect(rows[0]!.client).toMatch(/^[0-9a-f]{16}$/);
    expect(JSON.stringify(rows)).not.toContain('127.0.0.1');
    expect(JSON.stringify(rows)).not.toContain('lop=4a');
    await eventually(() => (localRequests()[0]!.shippedAt !== null ? true : null), 'the acknowledgement recorded at the gateway');
  });

  it('takes a report of a page that was not blocked, and sends it without its query string', async () => {
    const formPage = await curl(gateway.port, `http://hoc.test:${origin.port}/__lachan__/report`);
    expect(formPage.status).toBe(200);
    expect(formPage.body).toContain('Báo một trang xấu');
    expect(formPage.body).toContain('<option value="gambling">Cờ bạc, cá cược ăn tiền</option>');
    // Only harms a child recognises on a page: no network jargon.
    expect(formPage.body).not.toContain('value="vpn"');
    expect(formPage.body).not.toContain('value="doh"');
    expect(formPage.body).toContain('Đừng ghi họ tên');

    const typo = await curl(gateway.port, `http://hoc.test:${origin.port}/__lachan__/report`, { args: ['--data', 'url=khong+phai+dia+chi&note=abc'] });
    expect(typo.status).toBe(400);
    expect(typo.body).toContain('không phải một trang web');
    expect(typo.body).toContain('>abc</textarea>');

    const report = new URLSearchParams({ url: 'https://Tin-Xau.example/bai-viet/123?id=42&ten=em', category: 'gambling', note: 'Quảng cáo cá độ' }).toString();
    const sent = await curl(gateway.port, `http://hoc.test:${origin.port}/__lachan__/report`, { args: ['--data', report] });
    expect(sent.status).toBe(200);
    expect(sent.body).toContain('Đã gửi báo cáo');

    const row = await eventually(() => queued().find((r) => r.kind === 'report') ?? null, 'the report at the collector');
    expect(row).toMatchObject({
      kind: 'report',
      host: 'tin-xau.example',
      path: '/bai-viet/123',
      category: 'gambling',
      profile: 'tieu-hoc',
      event_id: null,
      reference: null,
      note: 'Quảng cáo cá độ',
    });
    expect(JSON.stringify(queued())).not.toContain('id=42');
    expect(localRequests().filter((r) => r.kind === 'report')).toHaveLength(1);
  });

  it('serves the report form on the proxy port itself and refuses a burst from one client with 429', async () => {
    const direct = await curl(null, `http://127.0.0.1:${gateway.port}/lachan/report`);
    expect(direct.status).toBe(200);
    expect(direct.body).toContain('action="/lachan/report"');

    const statuses: number[] = [];
    const retryAfter: (string | undefined)[] = [];
    for (let i = 0; i < 6; i++) {
      const result = await curl(gateway.port, `http://hoc.test:${origin.port}/__lachan__/report`, {
        from: '127.0.0.3',
        args: ['--data', `url=spam-${i}.example%2F`],
      });
      statuses.push(result.status);
      retryAfter.push(result.headers['retry-after'] as string | undefined);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    expect(Number(retryAfter[5])).toBeGreaterThan(0);
    // Another child on the same network is not held back by the first one's burst.
    const other = await curl(gateway.port, `http://hoc.test:${origin.port}/__lachan__/report`, { from: '127.0.0.4', args: ['--data', 'url=khac.example'] });
    expect(other.status).toBe(200);

    const hosts = localRequests().map((r) => r.host);
    expect(hosts).toEqual(expect.arrayContaining(['spam-0.example', 'spam-4.example', 'khac.example']));
    expect(hosts).not.toContain('spam-5.example');
  });

  it('sends nothing twice after a restart of the gateway', async () => {
    await eventually(() => (localRequests().every((r) => r.shippedAt !== null) ? true : null), 'every request acknowledged');
    const before = queued().map((r) => r.id);
    expect(new Set(before).size).toBe(before.length);
    await gateway.stop();
    gateway = await startSchoolGateway();
    // A fresh block: once its event reaches the collector, the shipper has been through a
    // cycle, and review requests go before events in each cycle.
    const blocked = await curl(gateway.port, `http://game.test:${origin.port}/sau-khi-khoi-dong-lai`);
    expect(blocked.status).toBe(403);
    await eventually(() => {
      const listed = lachan(['central', 'events', '--data', centralData, '--school', schoolId, '--json']);
      return listed.stdout.includes('/sau-khi-khoi-dong-lai') ? true : null;
    }, 'the new event at the collector');
    expect(queued().map((r) => r.id)).toEqual(before);
  });
});
