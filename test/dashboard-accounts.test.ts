import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addSchool,
  addUser,
  type Collector,
  fetchFrom,
  getAs,
  lachan,
  type LoggedIn,
  login,
  PASSWORD,
  postLogin,
  removeCollector,
  startCollector,
} from './harness/index.js';

// Dashboard accounts as a district administrator manages them (CLI and the users page),
// and login throttling as an attacker and the real administrator meet it: through the
// real collector's HTTP API, with other loopback addresses standing in for other machines.
const dataDir = mkdtempSync(path.join(tmpdir(), 'lachan-accounts-'));
const NEW_PASSWORD = 'mật-khẩu-mới-rất-dài-2027';
let collector: Collector;
let admin: LoggedIn;

function get(pathname: string, who?: LoggedIn): Promise<Response> {
  return getAs(collector.url, pathname, who);
}

/** A form on the users page, posted as the browser does. */
async function postUserForm(who: LoggedIn, name: string, action: string, fields: Record<string, string> = {}): Promise<Response> {
  return fetch(`${collector.url}/api/v1/users/${encodeURIComponent(name)}/${action}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: who.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf: who.csrf, ...fields }).toString(),
  });
}

async function auditActions(): Promise<{ action: string; target: string; actor: string }[]> {
  return ((await (await get('/api/v1/audit', admin)).json()) as { entries: { action: string; target: string; actor: string }[] }).entries;
}

beforeAll(async () => {
  addSchool(dataDir, 'TH Trạm Tấu');
  for (const name of ['quantri', 'quantri2']) addUser(dataDir, name, 'admin');
  for (const name of ['giaovien', 'thuky', 'tamthoi', 'nhanvien']) addUser(dataDir, name, 'viewer');
  collector = await startCollector(dataDir);
  admin = await login(collector.url, 'quantri');
}, 60_000);

afterAll(() => removeCollector(collector, dataDir));

describe('login throttling by address', () => {
  it('stops one address spraying many names, and does not let it in even with a right password', async () => {
    const sprayer = '127.0.0.3';
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await postLogin(collector.url, `nguoi-dung-${i}`, 'matkhau123456', sprayer)).status);
    expect(statuses.slice(0, 19).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(19).every((s) => s === 429)).toBe(true);
    const right = await postLogin(collector.url, 'nhanvien', PASSWORD, sprayer);
    expect(right.status).toBe(429);
    expect(right.headers.getSetCookie().some((c) => c.startsWith('lachan_session='))).toBe(false);
    // The same account from its owner's machine is not held up.
    await login(collector.url, 'nhanvien', PASSWORD, '127.0.0.5');
  });

  it('lets the real administrator in from another address while someone guesses the password', async () => {
    const attacker = '127.0.0.4';
    for (let i = 0; i < 4; i++) expect((await postLogin(collector.url, 'quantri', `doan-${i}-sai-roi`, attacker)).status).toBe(401);
    const held = await postLogin(collector.url, 'quantri', 'doan-5-sai-roi', attacker);
    expect(held.status).toBe(429);
    expect(await held.text()).toContain('Đăng nhập sai nhiều lần từ máy này');
    // Still guessing: refused without the password being tried.
    expect((await postLogin(collector.url, 'quantri', PASSWORD, attacker)).status).toBe(429);
    // The administrator, elsewhere, logs in as usual.
    await login(collector.url, 'quantri', PASSWORD, '127.0.0.6');
    expect((await auditActions()).some((e) => e.action === 'login.throttle' && e.target === 'user:quantri')).toBe(true);
  });
});

describe('login throttling behind a reverse proxy', () => {
  it('throttles by the client the trusted proxy names, not by the proxy, and ignores what others forward', async () => {
    const behind = mkdtempSync(path.join(tmpdir(), 'lachan-accounts-proxy-'));
    addSchool(behind, 'TH Trạm Tấu');
    addUser(behind, 'quantri', 'admin');
    // 127.0.0.9 plays the TLS reverse proxy.
    const proxied = await startCollector(behind, ['--trusted-proxy', '127.0.0.9']);
    try {
      const viaProxy = fetchFrom('127.0.0.9');
      const attempt = async (client: string, password: string, from = viaProxy) => {
        const form = await from(`${proxied.url}/login`);
        const csrf = /name="csrf" value="([^"]+)"/.exec(await form.text())![1]!;
        const cookie = form.headers
          .getSetCookie()
          .find((c) => c.startsWith('lachan_login_csrf='))!
          .split(';')[0]!;
        return from(`${proxied.url}/login`, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, 'x-forwarded-for': client },
          body: new URLSearchParams({ csrf, name: 'quantri', password }).toString(),
        });
      };
      for (let i = 0; i < 4; i++) expect((await attempt('203.0.113.7', 'sai-mat-khau-roi')).status).toBe(401);
      expect((await attempt('203.0.113.7', 'sai-mat-khau-roi')).status).toBe(429);
      // The administrator's own address, through the same proxy, is let in.
      expect((await attempt('198.51.100.20', PASSWORD)).status).toBe(303);
      // A client cannot pick its own address: the proxy's appended one counts.
      expect((await attempt('198.51.100.20, 203.0.113.7', PASSWORD)).status).toBe(429);
      // Not through the trusted proxy, X-Forwarded-For means nothing: 127.0.0.10 is not the throttled client.
      expect((await attempt('203.0.113.7', PASSWORD, fetchFrom('127.0.0.10'))).status).toBe(303);
    } finally {
      await removeCollector(proxied, behind);
    }
  });
});

describe('disabling, deleting and resetting accounts', () => {
  it('lachan central user disable ends the session at once; enable lets the user log in again', async () => {
    const teacher = await login(collector.url, 'giaovien');
    expect((await get('/logs', teacher)).status).toBe(200);
    const disabled = lachan(['central', 'user', 'disable', 'giaovien', '--data', dataDir]);
    expect(disabled.code, disabled.stderr).toBe(0);
    expect(disabled.stderr).toContain('đã khóa tài khoản giaovien');
    const page = await get('/logs', teacher);
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/login');
    expect((await get('/api/v1/events', teacher)).status).toBe(401);
    expect((await postLogin(collector.url, 'giaovien', PASSWORD)).status).toBe(401);
    const listed = lachan(['central', 'user', 'list', '--data', dataDir, '--json'])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { name: string; disabledAt: string | null });
    expect(listed.find((u) => u.name === 'giaovien')!.disabledAt).not.toBeNull();
    expect(lachan(['central', 'user', 'enable', 'giaovien', '--data', dataDir]).code).toBe(0);
    await login(collector.url, 'giaovien');
    expect(lachan(['central', 'user', 'disable', 'khong-co-ai', '--data', dataDir]).code).toBe(2);
    // A new password from the command line (stdin, never echoed) ends the session just opened.
    const session = await login(collector.url, 'giaovien');
    const reset = lachan(['central', 'user', 'reset-password', 'giaovien', '--data', dataDir], `${NEW_PASSWORD}\n`);
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stdout + reset.stderr).not.toContain(NEW_PASSWORD);
    expect((await get('/', session)).status).toBe(303);
    await login(collector.url, 'giaovien', NEW_PASSWORD);
  });

  it('an administrator disables an account on the users page: its open session is refused at the next request', async () => {
    const clerk = await login(collector.url, 'thuky');
    const page = await (await get('/users', admin)).text();
    expect(page).toContain('action="/api/v1/users/thuky/disable"');
    const response = await postUserForm(admin, 'thuky', 'disable');
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/users?done=disable');
    expect((await get('/', clerk)).status).toBe(303);
    const after = await (await get('/users?done=disable', admin)).text();
    expect(after).toContain('Đã khóa tài khoản');
    expect(after).toMatch(/Đã khóa \(\d\d\/\d\d\/\d{4} \d\d:\d\d\)/);
  });

  it('a new password set on the users page ends the old sessions; the old password no longer works', async () => {
    const old = await login(collector.url, 'tamthoi');
    expect((await postUserForm(admin, 'tamthoi', 'password', { password: 'ngan' })).status).toBe(400);
    expect((await postUserForm(admin, 'tamthoi', 'password', { password: NEW_PASSWORD })).status).toBe(303);
    expect((await get('/', old)).status).toBe(303);
    expect((await postLogin(collector.url, 'tamthoi', PASSWORD, '127.0.0.7')).status).toBe(401);
    await login(collector.url, 'tamthoi', NEW_PASSWORD, '127.0.0.7');
  });

  it('deleting an account ends its session and frees nothing else; the last active administrator stays', async () => {
    const victim = await login(collector.url, 'tamthoi', NEW_PASSWORD, '127.0.0.7');
    expect((await postUserForm(admin, 'tamthoi', 'delete')).status).toBe(303);
    expect((await get('/', victim)).status).toBe(303);
    expect(await (await get('/users', admin)).text()).not.toContain('data-user="tamthoi"');
    // quantri2 disabled: quantri is then the last active administrator and cannot go.
    expect((await postUserForm(admin, 'quantri2', 'disable')).status).toBe(303);
    const refused = await postUserForm(admin, 'quantri', 'disable');
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('quản trị viên cuối cùng');
    expect(lachan(['central', 'user', 'delete', 'quantri', '--data', dataDir]).code).toBe(2);
    // A viewer cannot change accounts; a missing CSRF token is refused.
    const viewer = await login(collector.url, 'nhanvien', PASSWORD, '127.0.0.8');
    expect((await postUserForm(viewer, 'quantri2', 'enable')).status).toBe(403);
    expect((await postUserForm({ cookie: admin.cookie, csrf: 'sai' }, 'quantri2', 'enable')).status).toBe(403);
    const audit = await auditActions();
    for (const action of ['user.disable', 'user.enable', 'user.password.reset', 'user.delete'])
      expect(
        audit.some((e) => e.action === action),
        action,
      ).toBe(true);
    expect(audit.some((e) => e.action === 'user.disable' && e.actor.startsWith('cli:'))).toBe(true);
  });

  it('the JSON API does the same for scripts with the admin token', async () => {
    const token = (await import('node:fs')).readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    const response = await fetchFrom(undefined)(`${collector.url}/api/v1/users/quantri2/enable`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ name: 'quantri2', action: 'enable' });
  });
});
