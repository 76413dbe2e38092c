import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addSchool,
  addUser,
  type Collector,
  getAs,
  ingest,
  type LoggedIn,
  login,
  PASSWORD,
  postLogin,
  removeCollector,
  startCollector,
  wireEvent,
} from './harness/index.js';

const dataDir = mkdtempSync(path.join(tmpdir(), 'lachan-dash-sec-'));
let collector: Collector;
let schoolA: { id: string; token: string };
let schoolB: { id: string; token: string };
let admin: LoggedIn;
let schoolIt: LoggedIn;
let viewer: LoggedIn;

const PAGES = ['/', '/logs', '/reviews', '/policy', '/users', '/audit'];
const APIS = [
  '/api/v1/events',
  '/api/v1/stats',
  '/api/v1/events.csv',
  '/api/v1/dashboard/schools',
  '/api/v1/dashboard/top-hosts',
  '/api/v1/users',
  '/api/v1/audit',
  '/api/v1/reviews',
  '/api/v1/district-policy',
];

function get(pathname: string, who?: LoggedIn): Promise<Response> {
  return getAs(collector.url, pathname, who);
}

async function postUser(who: LoggedIn, body: unknown, csrf: string | null) {
  return fetch(`${collector.url}/api/v1/users`, {
    method: 'POST',
    headers: { cookie: who.cookie, 'content-type': 'application/json', ...(csrf === null ? {} : { 'x-csrf-token': csrf }) },
    body: JSON.stringify(body),
  });
}

beforeAll(async () => {
  schoolA = addSchool(dataDir, 'TH Trạm Tấu');
  schoolB = addSchool(dataDir, 'THCS Mù Cang Chải');
  addUser(dataDir, 'quantri', 'admin');
  addUser(dataDir, 'cntt-a', 'school-it', schoolA.id);
  addUser(dataDir, 'xem', 'viewer');
  addUser(dataDir, 'khoa', 'viewer');
  collector = await startCollector(dataDir);
  await ingest(collector.url, schoolA, [
    wireEvent({ host: 'a.nhacai.example' }),
    wireEvent({ host: 'a.nhacai.example', category: 'games', rule: 'game.example' }),
  ]);
  await ingest(collector.url, schoolB, [wireEvent({ host: 'b.nhacai.example', rule: 'b.nhacai.example', source: 'rules/categories/gambling/domains:9' })]);
  admin = await login(collector.url, 'quantri');
  schoolIt = await login(collector.url, 'cntt-a');
  viewer = await login(collector.url, 'xem');
}, 60_000);

afterAll(() => removeCollector(collector, dataDir));

describe('without a session', () => {
  it('redirects every page to /login', async () => {
    for (const page of PAGES) {
      const response = await get(page);
      expect(response.status, page).toBe(303);
      expect(response.headers.get('location'), page).toBe('/login');
    }
  });

  it('answers 401 on every dashboard API, also with a made-up session cookie', async () => {
    for (const api of APIS) expect((await get(api)).status, api).toBe(401);
    const forged = await fetch(`${collector.url}/api/v1/events`, { headers: { cookie: `lachan_session=${'A'.repeat(43)}` } });
    expect(forged.status).toBe(401);
  });

  it('keeps the admin bearer token working for scripts', async () => {
    const token = readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    const response = await fetch(`${collector.url}/api/v1/events`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    const page = (await response.json()) as { events: { school: string }[] };
    expect(new Set(page.events.map((e) => e.school))).toEqual(new Set([schoolA.id, schoolB.id]));
  });
});

describe('the session cookie', () => {
  it('is HttpOnly and SameSite=Strict, Secure only behind TLS', async () => {
    const plain = await postLogin(collector.url, 'xem', PASSWORD);
    const cookie = plain.headers.getSetCookie().find((c) => c.startsWith('lachan_session='))!;
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).not.toContain('Secure');
    // Behind a TLS reverse proxy that says so.
    const form = await fetch(`${collector.url}/login`, { headers: { 'x-forwarded-proto': 'https' } });
    expect(form.headers.getSetCookie()[0]).toContain('; Secure');
  });

  it('stops working after logout', async () => {
    const session = await login(collector.url, 'xem');
    const refused = await fetch(`${collector.url}/logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: session.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'csrf=wrong',
    });
    expect(refused.status).toBe(403);
    expect((await get('/api/v1/stats', session)).status).toBe(200);
    const out = await fetch(`${collector.url}/logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: session.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: session.csrf }).toString(),
    });
    expect(out.status).toBe(303);
    expect((await get('/api/v1/stats', session)).status).toBe(401);
  });
});

describe('roles', () => {
  it('keeps the audit log and user management to admins', async () => {
    for (const who of [schoolIt, viewer]) {
      expect((await get('/audit', who)).status).toBe(403);
      expect((await get('/users', who)).status).toBe(403);
      expect((await get('/logs', who)).status).toBe(200);
      expect((await get('/api/v1/audit', who)).status).toBe(403);
      expect((await get('/api/v1/users', who)).status).toBe(403);
      expect((await postUser(who, { name: 'moi', role: 'viewer', password: PASSWORD }, who.csrf)).status).toBe(403);
    }
    expect((await get('/audit', admin)).status).toBe(200);
    expect((await get('/api/v1/users', admin)).status).toBe(200);
  });

  it('lets a viewer read every school', async () => {
    const response = await get('/api/v1/events', viewer);
    expect(response.status).toBe(200);
    const page = (await response.json()) as { events: { school: string }[] };
    expect(page.events).toHaveLength(3);
  });
});

describe('a school-it user', () => {
  it('sees only its own school, whatever the query asks', async () => {
    const own = (await (await get('/api/v1/events', schoolIt)).json()) as { events: { school: string; host: string }[] };
    expect(own.events.map((e) => e.school)).toEqual([schoolA.id, schoolA.id]);
    expect(own.events.some((e) => e.host.startsWith('b.'))).toBe(false);
    // Crafted parameters for the other school are refused, not quietly widened.
    for (const api of ['/api/v1/events', '/api/v1/stats', '/api/v1/events.csv', '/api/v1/dashboard/top-hosts']) {
      expect((await get(`${api}?school=${schoolB.id}`, schoolIt)).status, api).toBe(403);
    }
    expect((await get(`/api/v1/events?host=b.nhacai.example`, schoolIt)).status).toBe(200);
    const byHost = (await (await get(`/api/v1/events?host=b.nhacai.example`, schoolIt)).json()) as { events: unknown[] };
    expect(byHost.events).toHaveLength(0);
  });

  it('gets statistics, schools, top hosts and CSV of its school only', async () => {
    const stats = (await (await get('/api/v1/stats', schoolIt)).json()) as { total: number; bySchool: { school: string }[] };
    expect(stats.total).toBe(2);
    expect(stats.bySchool.map((s) => s.school)).toEqual([schoolA.id]);
    const schools = (await (await get('/api/v1/dashboard/schools', schoolIt)).json()) as { schools: { id: string }[] };
    expect(schools.schools.map((s) => s.id)).toEqual([schoolA.id]);
    const top = JSON.stringify(await (await get('/api/v1/dashboard/top-hosts', schoolIt)).json());
    expect(top).toContain('a.nhacai.example');
    expect(top).not.toContain('b.nhacai.example');
    const csv = await (await get('/api/v1/events.csv', schoolIt)).text();
    expect(csv).toContain('a.nhacai.example');
    expect(csv).not.toContain('b.nhacai.example');
    // The admin sees both.
    const all = await (await get('/api/v1/events.csv', admin)).text();
    expect(all).toContain('b.nhacai.example');
  });
});

describe('CSRF', () => {
  it('refuses a state-changing request without the session token', async () => {
    const body = { name: 'giamsat', role: 'viewer', password: PASSWORD };
    expect((await postUser(admin, body, null)).status).toBe(403);
    expect((await postUser(admin, body, 'x'.repeat(admin.csrf.length))).status).toBe(403);
    expect((await get('/api/v1/users', admin)).status).toBe(200);
    const users = (await (await get('/api/v1/users', admin)).json()) as { users: { name: string }[] };
    expect(users.users.map((u) => u.name)).not.toContain('giamsat');
    const created = await postUser(admin, body, admin.csrf);
    expect(created.status).toBe(201);
    const audit = (await (await get('/api/v1/audit', admin)).json()) as { entries: { actor: string; action: string; target: string; after: string | null }[] };
    const entry = audit.entries.find((e) => e.target === 'user:giamsat')!;
    expect(entry.actor).toBe('quantri');
    expect(entry.action).toBe('user.add');
    expect(JSON.parse(entry.after!)).toEqual({ name: 'giamsat', role: 'viewer', school: null });
    expect(entry.after).not.toContain(PASSWORD);
    // The CLI's additions are in the log too, and the page shows them.
    expect(audit.entries.some((e) => e.target === 'user:cntt-a' && e.actor.startsWith('cli:'))).toBe(true);
    const page = await (await get('/audit', admin)).text();
    expect(page).toContain('user:giamsat');
  });

  it('refuses a login form posted without its token', async () => {
    const response = await fetch(`${collector.url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ name: 'quantri', password: PASSWORD }).toString(),
    });
    expect(response.status).toBe(403);
    expect(response.headers.getSetCookie().some((c) => c.startsWith('lachan_session='))).toBe(false);
  });
});

describe('login throttling', () => {
  it('holds an address that failed 5 times for a name, even with the right password from there', async () => {
    for (let attempt = 1; attempt <= 4; attempt++) {
      const response = await postLogin(collector.url, 'khoa', 'sai-mat-khau-roi');
      expect(response.status).toBe(401);
      expect(await response.text()).toContain('Sai tên đăng nhập hoặc mật khẩu');
    }
    const fifth = await postLogin(collector.url, 'khoa', 'sai-mat-khau-roi');
    expect(fifth.status).toBe(429);
    const right = await postLogin(collector.url, 'khoa', PASSWORD);
    expect(right.status).toBe(429);
    expect(await right.text()).toContain('Đăng nhập sai nhiều lần từ máy này');
    expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(right.headers.getSetCookie().some((c) => c.startsWith('lachan_session='))).toBe(false);
    // Other accounts are unaffected.
    await login(collector.url, 'xem');
    const audit = (await (await get('/api/v1/audit', admin)).json()) as { entries: { action: string; target: string }[] };
    expect(audit.entries.some((e) => e.action === 'login.throttle' && e.target === 'user:khoa')).toBe(true);
  });
});
