import { createPublicKey, verify } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEventId } from '../src/events/ids.js';
import type { WireReviewRequest } from '../src/events/review-wire.js';
import { addUser, type Collector, collectorOnPostgres, lachan, type LoggedIn, login, startCollector, stopCollector } from './harness/index.js';

// The collector's side of the review queue and the district policy, through its real
// HTTP API: what gateways send and fetch, and what district staff do in the dashboard.
const dataDir = mkdtempSync(path.join(tmpdir(), 'lachan-district-'));
let collector: Collector;
let schoolA: { id: string; token: string; policyKey: string };
let schoolB: { id: string; token: string; policyKey: string };
let admin: LoggedIn;
let schoolIt: LoggedIn;
let viewer: LoggedIn;
let adminToken: string;

function addSchool(name: string): { id: string; token: string; policyKey: string } {
  const result = lachan(['central', 'school', 'add', '--name', name, '--data', dataDir, '--json']);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as { id: string; token: string; policyKey: string };
}

function request(overrides: Partial<WireReviewRequest> = {}): WireReviewRequest {
  return {
    id: newEventId(),
    kind: 'review',
    time: Date.now(),
    host: 'hoc-toan.example',
    path: '/bai-1',
    category: 'games',
    profile: 'tieu-hoc',
    event: null,
    reference: '7QK3-M9XD',
    note: 'Cô giáo giao bài trên trang này',
    client: '0123456789abcdef',
    ...overrides,
  };
}

async function sendRequests(school: { id: string; token: string }, requests: unknown[], token = school.token): Promise<Response> {
  return fetch(`${collector.url}/api/v1/reviews`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ school: school.id, requests }),
  });
}

async function fetchPolicy(school: { token: string }, etag?: string): Promise<{ status: number; body: Buffer; signature: string | null; etag: string | null }> {
  const response = await fetch(`${collector.url}/api/v1/policy`, {
    headers: { authorization: `Bearer ${school.token}`, ...(etag === undefined ? {} : { 'if-none-match': etag }) },
  });
  return {
    status: response.status,
    body: Buffer.from(await response.arrayBuffer()),
    signature: response.headers.get('x-lachan-signature'),
    etag: response.headers.get('etag'),
  };
}

interface Overlay {
  version: number;
  profiles: Record<
    string,
    { allow_domains: string[]; block_domains: string[]; block_keywords: string[]; allow_urls: { scope: string; url: string; keywords: boolean }[] }
  >;
  categories: Record<string, { block_domains: string[]; block_keywords: string[] }>;
}

/** The overlay a gateway would apply, after checking the signature with the key it pinned at enrolment. */
async function verifiedOverlay(school: { token: string; policyKey: string }): Promise<Overlay> {
  const fetched = await fetchPolicy(school);
  expect(fetched.status).toBe(200);
  expect(verify(null, fetched.body, createPublicKey(school.policyKey), Buffer.from(fetched.signature!, 'base64'))).toBe(true);
  return JSON.parse(fetched.body.toString()) as Overlay;
}

async function queue(
  who: LoggedIn,
  status = 'open',
): Promise<{ seq: number; school: string; host: string; kind: string; status: string; ruleId: number | null; note: string }[]> {
  const response = await fetch(`${collector.url}/api/v1/reviews?status=${status}`, { headers: { cookie: who.cookie } });
  expect(response.status).toBe(200);
  return (
    (await response.json()) as { requests: { seq: number; school: string; host: string; kind: string; status: string; ruleId: number | null; note: string }[] }
  ).requests;
}

/** Posts a dashboard form the way the browser does (urlencoded, CSRF field, cookie). */
async function postForm(who: LoggedIn, pathname: string, fields: Record<string, string>, csrf: string | null = who.csrf): Promise<Response> {
  return fetch(`${collector.url}${pathname}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: who.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(csrf === null ? fields : { ...fields, csrf }).toString(),
  });
}

beforeAll(async () => {
  schoolA = addSchool('TH Trạm Tấu');
  schoolB = addSchool('THCS Bản Công');
  addUser(dataDir, 'quantri', 'admin');
  addUser(dataDir, 'cntt-a', 'school-it', schoolA.id);
  addUser(dataDir, 'xem', 'viewer');
  collector = await startCollector(dataDir);
  admin = await login(collector.url, 'quantri');
  schoolIt = await login(collector.url, 'cntt-a');
  viewer = await login(collector.url, 'xem');
  adminToken = readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
}, 60_000);

afterAll(async () => {
  if (collector) await stopCollector(collector);
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the signing key', () => {
  it('is private to the collector, and enrolment hands out its public half', () => {
    // On PostgreSQL the key is a row of the database, shared by every collector process.
    if (collectorOnPostgres()) expect(existsSync(path.join(dataDir, 'policy-signing.key'))).toBe(false);
    else expect(statSync(path.join(dataDir, 'policy-signing.key')).mode & 0o777).toBe(0o600);
    expect(schoolA.policyKey).toContain('BEGIN PUBLIC KEY');
    expect(schoolB.policyKey).toBe(schoolA.policyKey);
    const key = lachan(['central', 'key', '--data', dataDir]);
    expect(key.code).toBe(0);
    expect(key.stdout).toBe(schoolA.policyKey);
    expect(key.stderr).toMatch(/fingerprint [0-9a-f]{4}(:[0-9a-f]{4}){7}/);
    expect(key.stdout + key.stderr).not.toContain('PRIVATE');
  });

  // A key file's mode: on PostgreSQL the key is in the database, and this is the file's test.
  it.skipIf(collectorOnPostgres())('stops a collector whose key others can read', async () => {
    const other = mkdtempSync(path.join(tmpdir(), 'lachan-district-key-'));
    try {
      expect(lachan(['central', 'key', '--data', other]).code).toBe(0);
      chmodSync(path.join(other, 'policy-signing.key'), 0o644);
      const refused = lachan(['central', 'key', '--data', other]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('chmod 600');
      await expect(startCollector(other)).rejects.toThrow(/exited/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

describe('review requests from gateways', () => {
  it('stores each request once, whatever the resends, and acknowledges every id', async () => {
    const review = request();
    const report = request({ kind: 'report', host: 'soi-cau.example', path: '/hom-nay', category: 'gambling', reference: null, note: 'trang lô đề' });
    for (let i = 0; i < 2; i++) {
      const response = await sendRequests(schoolA, [review, report]);
      expect(response.status).toBe(200);
      expect(((await response.json()) as { acked: string[] }).acked).toEqual([review.id, report.id]);
    }
    const open = await queue(admin);
    expect(open.filter((r) => r.host === 'hoc-toan.example' || r.host === 'soi-cau.example')).toHaveLength(2);
    expect(open.find((r) => r.host === 'soi-cau.example')!.kind).toBe('report');
  });

  it("refuses a wrong token, another school's batch and a malformed request, storing nothing", async () => {
    const before = (await queue(admin, 'all')).length;
    expect((await sendRequests(schoolA, [request()], 'not-a-token')).status).toBe(401);
    expect((await sendRequests({ id: schoolB.id, token: schoolA.token }, [request()])).status).toBe(403);
    const withAddress = await sendRequests(schoolA, [request({ client: '10.0.0.7' })]);
    expect(withAddress.status).toBe(400);
    expect(((await withAddress.json()) as { message: string }).message).toContain('requests[0].client');
    expect((await sendRequests(schoolA, [request({ kind: 'complaint' as 'review' })])).status).toBe(400);
    expect((await queue(admin, 'all')).length).toBe(before);
  });

  it('shows a school-it user the requests of its school only', async () => {
    await sendRequests(schoolB, [request({ host: 'chi-truong-b.example' })]);
    expect((await queue(admin)).some((r) => r.host === 'chi-truong-b.example')).toBe(true);
    const own = await queue(schoolIt);
    expect(own.length).toBeGreaterThan(0);
    expect(own.every((r) => r.school === schoolA.id)).toBe(true);
    const page = await (await fetch(`${collector.url}/reviews`, { headers: { cookie: schoolIt.cookie } })).text();
    expect(page).toContain('hoc-toan.example');
    expect(page).not.toContain('chi-truong-b.example');
    expect((await fetch(`${collector.url}/api/v1/reviews?school=${schoolB.id}`, { headers: { cookie: schoolIt.cookie } })).status).toBe(403);
  });
});

describe('the signed policy a gateway fetches', () => {
  it('is signed with the enrolment key, and unchanged costs a 304', async () => {
    const first = await fetchPolicy(schoolA);
    expect(first.status).toBe(200);
    expect(verify(null, first.body, createPublicKey(schoolA.policyKey), Buffer.from(first.signature!, 'base64'))).toBe(true);
    const again = await fetchPolicy(schoolA, first.etag!);
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect((await fetchPolicy({ token: 'nope' })).status).toBe(401);
  });
});

describe('deciding requests', () => {
  it('needs the CSRF token and a role that may decide', async () => {
    const target = (await queue(admin)).find((r) => r.host === 'hoc-toan.example')!;
    expect((await postForm(admin, `/api/v1/reviews/${target.seq}`, { action: 'approve', profile: 'tieu-hoc', scope: 'all' }, null)).status).toBe(403);
    expect((await postForm(viewer, `/api/v1/reviews/${target.seq}`, { action: 'approve', profile: 'tieu-hoc', scope: 'school' })).status).toBe(403);
    // A school's IT decides for its school only: not for every school, not another school's request.
    expect((await postForm(schoolIt, `/api/v1/reviews/${target.seq}`, { action: 'approve', profile: 'tieu-hoc', scope: 'all' })).status).toBe(403);
    const other = (await queue(admin)).find((r) => r.host === 'chi-truong-b.example')!;
    expect((await postForm(schoolIt, `/api/v1/reviews/${other.seq}`, { action: 'reject', reason: 'không' })).status).toBe(403);
    expect((await queue(admin)).find((r) => r.seq === target.seq)!.status).toBe('open');
  });

  it('approving allows the page asked about (the narrowest scope) for that profile at that school, in a new signed version', async () => {
    const before = await verifiedOverlay(schoolA);
    const target = (await queue(admin)).find((r) => r.host === 'hoc-toan.example')!;
    const response = await postForm(schoolIt, `/api/v1/reviews/${target.seq}`, { action: 'approve', profile: 'tieu-hoc', scope: 'school' });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/reviews?done=approved');
    const after = await verifiedOverlay(schoolA);
    expect(after.version).toBeGreaterThan(before.version);
    expect(after.profiles['tieu-hoc']!.allow_urls).toContainEqual({ scope: 'page', url: 'hoc-toan.example/bai-1', keywords: true });
    expect(after.profiles['tieu-hoc']!.allow_domains).not.toContain('hoc-toan.example');
    // Only at that school.
    expect(JSON.stringify(await verifiedOverlay(schoolB))).not.toContain('hoc-toan.example');
    const decided = (await queue(admin, 'decided')).find((r) => r.seq === target.seq)!;
    expect(decided.status).toBe('approved');
    expect(decided.ruleId).not.toBeNull();
    // Deciding twice is refused, in Vietnamese on the form.
    const twice = await postForm(admin, `/api/v1/reviews/${target.seq}`, { action: 'reject', reason: 'nhầm' });
    expect(twice.status).toBe(409);
    expect(await twice.text()).toContain('đã được xử lý');
  });

  it('a report blocks the host in a category at every school', async () => {
    const report = (await queue(admin)).find((r) => r.host === 'soi-cau.example')!;
    const response = await postForm(admin, `/api/v1/reviews/${report.seq}`, { action: 'block', category: 'gambling', scope: 'all' });
    expect(response.status).toBe(303);
    for (const school of [schoolA, schoolB]) {
      expect((await verifiedOverlay(school)).categories.gambling!.block_domains).toContain('soi-cau.example');
    }
  });

  it('rejecting needs a reason, and is kept with it', async () => {
    const other = (await queue(admin)).find((r) => r.host === 'chi-truong-b.example')!;
    const empty = await postForm(admin, `/api/v1/reviews/${other.seq}`, { action: 'reject', reason: '  ' });
    expect(empty.status).toBe(400);
    expect(await empty.text()).toContain('lý do');
    expect((await postForm(admin, `/api/v1/reviews/${other.seq}`, { action: 'reject', reason: 'Trang có quảng cáo cờ bạc' })).status).toBe(303);
    const decided = (await queue(admin, 'decided')).find((r) => r.seq === other.seq)!;
    expect(decided.status).toBe('rejected');
    const page = await (await fetch(`${collector.url}/reviews?status=decided`, { headers: { cookie: admin.cookie } })).text();
    expect(page).toContain('Trang có quảng cáo cờ bạc');
  });
});

describe('editing the district policy', () => {
  async function addRule(body: Record<string, string>, auth: Record<string, string>): Promise<Response> {
    return fetch(`${collector.url}/api/v1/district-policy/rules`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify(body),
    });
  }

  it('lets admins add and remove rules, each change a version, every change in the audit log', async () => {
    const start = (await verifiedOverlay(schoolB)).version;
    const added = await addRule(
      { action: 'block', kind: 'keyword', value: 'soi cầu', profile: 'thcs', note: 'lô đề' },
      { authorization: `Bearer ${adminToken}` },
    );
    expect(added.status).toBe(200);
    const { rule } = (await added.json()) as { rule: { id: number } };
    const withKeyword = await verifiedOverlay(schoolB);
    expect(withKeyword.version).toBe(start + 1);
    expect(withKeyword.profiles.thcs!.block_keywords).toEqual(['soi cầu']);
    // A URL pasted as a domain is taken for its host.
    const pasted = await postForm(admin, '/api/v1/district-policy/rules', {
      action: 'block',
      kind: 'domain',
      value: 'https://WWW.Lode88.example./dang-ky',
      category: 'gambling',
    });
    expect(pasted.status).toBe(303);
    expect((await verifiedOverlay(schoolB)).categories.gambling!.block_domains).toContain('www.lode88.example');
    const removed = await postForm(admin, `/api/v1/district-policy/rules/${rule.id}/remove`, {});
    expect(removed.status).toBe(303);
    const after = await verifiedOverlay(schoolB);
    expect(after.version).toBe(start + 3);
    expect(after.profiles.thcs?.block_keywords ?? []).toEqual([]);
    const audit = (await (await fetch(`${collector.url}/api/v1/audit`, { headers: { cookie: admin.cookie } })).json()) as {
      entries: { action: string; target: string; actor: string; before: string | null }[];
    };
    expect(audit.entries.find((e) => e.action === 'policy.rule.remove' && e.target === `policy-rule:${rule.id}`)!.before).toContain('soi cầu');
    expect(audit.entries.some((e) => e.action === 'review.approve' && e.actor === 'cntt-a')).toBe(true);
    const page = await (await fetch(`${collector.url}/policy`, { headers: { cookie: admin.cookie } })).text();
    expect(page).toContain(`v${after.version}`);
    expect(page).toContain('www.lode88.example');
  });

  it('refuses bad rules with the reason, and non-admins outright', async () => {
    const bad = await addRule({ action: 'block', kind: 'domain', value: 'not a domain!', profile: 'thcs' }, { authorization: `Bearer ${adminToken}` });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toContain('not a domain name');
    const both = await addRule(
      { action: 'block', kind: 'domain', value: 'x.example', profile: 'thcs', category: 'games' },
      { authorization: `Bearer ${adminToken}` },
    );
    expect(both.status).toBe(400);
    expect((await postForm(schoolIt, '/api/v1/district-policy/rules', { action: 'block', kind: 'domain', value: 'x.example', profile: 'thcs' })).status).toBe(
      403,
    );
    expect((await postForm(viewer, '/api/v1/district-policy/rules', { action: 'block', kind: 'domain', value: 'x.example', profile: 'thcs' })).status).toBe(
      403,
    );
    expect(JSON.stringify(await verifiedOverlay(schoolA))).not.toContain('x.example');
  });
});
