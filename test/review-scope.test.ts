import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEventId } from '../src/events/ids.js';
import type { WireReviewRequest } from '../src/events/review-wire.js';
import {
  addUser,
  type Collector,
  curl,
  districtGatewayArgs,
  enrolSchool,
  type EnrolledSchool,
  lachan,
  type LoggedIn,
  login,
  type RunningGateway,
  startCollector,
  startGateway,
  startHttpOrigin,
  stopCollector,
} from './harness/index.js';

// Approving a review opens only what the administrator chose (this page, this folder or
// the whole site), and keyword rules keep blocking inside what was opened: through a real
// gateway that fetches the signed overlay from a real collector, with curl as the client.
const POLICY = `version: 1
default_profile: tieu-hoc
profiles:
  tieu-hoc:
    name: "Tiểu học"
    block_categories: [gambling, adult, games]
`;

const work = mkdtempSync(path.join(tmpdir(), 'lachan-review-scope-'));
const centralData = path.join(work, 'central');
let collector: Collector;
let gateway: RunningGateway;
let origin: { server: import('node:http').Server; port: number };
let school: EnrolledSchool;
let admin: LoggedIn;

const url = (host: string, pathAndQuery: string) => `http://${host}:${origin.port}${pathAndQuery}`;
const status = async (host: string, pathAndQuery: string) => (await curl(gateway.port, url(host, pathAndQuery))).status;

async function eventually(probe: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 80; i++) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not seen within 20 s`);
}

/** What the gateway would forward when a child asks for a review on the block page. */
async function askForReview(host: string, pathname: string, category: string): Promise<number> {
  const request: WireReviewRequest = {
    id: newEventId(),
    kind: 'review',
    time: Date.now(),
    host,
    path: pathname,
    category,
    profile: 'tieu-hoc',
    event: null,
    reference: null,
    note: 'Bài học của lớp 5',
    client: '0123456789abcdef',
  };
  const sent = await fetch(`${collector.url}/api/v1/reviews`, {
    method: 'POST',
    headers: { authorization: `Bearer ${school.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ school: school.id, requests: [request] }),
  });
  expect(sent.status).toBe(200);
  const queue = (await (await fetch(`${collector.url}/api/v1/reviews`, { headers: { cookie: admin.cookie } })).json()) as {
    requests: { seq: number; host: string; path: string }[];
  };
  return queue.requests.find((r) => r.host === host && r.path === pathname)!.seq;
}

/** The approve form as the dashboard posts it. */
async function approve(seq: number, fields: Record<string, string>): Promise<void> {
  const response = await fetch(`${collector.url}/api/v1/reviews/${seq}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: admin.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ action: 'approve', profile: 'tieu-hoc', scope: 'school', csrf: admin.csrf, ...fields }).toString(),
  });
  expect(response.status, await response.text()).toBe(303);
}

beforeAll(async () => {
  school = enrolSchool(centralData, work, 'TH Trạm Tấu');
  addUser(centralData, 'quantri', 'admin');
  collector = await startCollector(centralData);
  admin = await login(collector.url, 'quantri');
  origin = await startHttpOrigin();
  gateway = await startGateway({
    rules: {
      'policy.yaml': POLICY,
      'categories/gambling/keywords': 'cờ bạc\n',
      'categories/adult/keywords': 'sex\n',
      // A maths site caught by a broad games list.
      'categories/games/domains': 'hoc-toan.test\n',
    },
    hosts: '127.0.0.1 vnexpress.test hoc-toan.test tin-tuc.test\n',
    args: districtGatewayArgs(collector.url, school, 1),
  });
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  if (collector) await stopCollector(collector);
  origin?.server.close();
  rmSync(work, { recursive: true, force: true });
});

describe('approving a review opens only what was asked', () => {
  it('this page (the default): the page opens, a search and other pages of the site stay blocked', async () => {
    const page = '/bai-hoc/tac-hai-cua-co-bac';
    expect(await status('vnexpress.test', page)).toBe(403);
    const seq = await askForReview('vnexpress.test', page, 'gambling');
    await approve(seq, {});
    await eventually(async () => (await status('vnexpress.test', page)) === 200, 'the approved page through the gateway');
    // The same page with a query read by keyword rules, a search on the site, another page.
    expect(await status('vnexpress.test', `${page}?utm=1`)).toBe(200);
    expect(await status('vnexpress.test', `${page}?q=xem+phim+sex`)).toBe(403);
    expect(await status('vnexpress.test', '/search?q=xem+phim+sex')).toBe(403);
    expect(await status('vnexpress.test', '/bai-hoc/cach-choi-co-bac-online')).toBe(403);
    expect(await status('vnexpress.test', `${page}/trang-2-co-bac`)).toBe(403);

    // `lachan check` with the gateway's data shows the page, not the domain, and where the rule is.
    const check = lachan([
      'check',
      '--rules',
      gateway.rulesDir,
      '--data',
      gateway.dataDir,
      '--profile',
      'tieu-hoc',
      '--json',
      url('vnexpress.test', page),
      url('vnexpress.test', '/search?q=xem+phim+sex'),
    ]);
    expect(check.code, check.stderr).toBe(0);
    const [allowed, search] = check.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, string>);
    expect(allowed).toMatchObject({ action: 'allow', reason: 'url', rule: 'vnexpress.test/bai-hoc/tac-hai-cua-co-bac' });
    expect(allowed!.source).toMatch(/^district-overlay:v\d+:\d+$/);
    expect(search).toMatchObject({ action: 'block', reason: 'keyword', category: 'adult' });
  });

  it('this folder: every page under it opens, the rest of the site stays blocked, keywords still apply', async () => {
    expect(await status('hoc-toan.test', '/bai-tap/phan-so')).toBe(403);
    const seq = await askForReview('hoc-toan.test', '/bai-tap/phan-so', 'games');
    await approve(seq, { match: 'path' });
    await eventually(async () => (await status('hoc-toan.test', '/bai-tap/phan-so')) === 200, 'the approved folder through the gateway');
    expect(await status('hoc-toan.test', '/bai-tap/hinh-hoc')).toBe(200);
    expect(await status('hoc-toan.test', '/tro-choi/ban-sung')).toBe(403);
    expect(await status('hoc-toan.test', '/')).toBe(403);
    expect(await status('hoc-toan.test', '/bai-tap/tim-kiem?q=sex')).toBe(403);
  });

  it('the whole site, keywords kept: every page opens except those keyword rules block', async () => {
    expect(await status('tin-tuc.test', '/thoi-su/co-bac-trai-phep')).toBe(403);
    const seq = await askForReview('tin-tuc.test', '/thoi-su/co-bac-trai-phep', 'gambling');
    await approve(seq, { match: 'site' });
    await eventually(async () => (await status('tin-tuc.test', '/')) === 200, 'the site version of the policy');
    // Opening the site does not switch keyword rules off there.
    expect(await status('tin-tuc.test', '/thoi-su/co-bac-trai-phep')).toBe(403);
    expect(await status('tin-tuc.test', '/the-thao')).toBe(200);
  });

  it('the whole site with keywords switched off, only when the administrator says so', async () => {
    const seq = await askForReview('tin-tuc.test', '/thoi-su/dieu-tra-co-bac', 'gambling');
    await approve(seq, { match: 'site', keywords: 'off' });
    await eventually(async () => (await status('tin-tuc.test', '/thoi-su/dieu-tra-co-bac')) === 200, 'the trusted site through the gateway');
    expect(await status('tin-tuc.test', '/search?q=xem+phim+sex')).toBe(200);
    // The page-scoped site is untouched by this.
    expect(await status('vnexpress.test', '/search?q=xem+phim+sex')).toBe(403);
  });

  it('takes the same choices as JSON from a script, and refuses a scope it does not know', async () => {
    const json = await fetch(`${collector.url}/api/v1/reviews/${await askForReview('hoc-toan.test', '/on-tap/', 'games')}`, {
      method: 'POST',
      headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf, 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'approve', profile: 'tieu-hoc', scope: 'school', match: 'path', keywords: false }),
    });
    expect(json.status).toBe(200);
    expect((await json.json()) as unknown).toMatchObject({ rule: { kind: 'url', match: 'path', value: 'hoc-toan.test/on-tap/', keywords: false } });
    const seq = await askForReview('vnexpress.test', '/bai-hoc/khac', 'gambling');
    const response = await fetch(`${collector.url}/api/v1/reviews/${seq}`, {
      method: 'POST',
      headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf, 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'approve', profile: 'tieu-hoc', scope: 'school', match: 'everything' }),
    });
    expect(response.status).toBe(400);
  });
});
