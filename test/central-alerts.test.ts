import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CentralAlert, WireAlert } from '../src/central/alerts.js';
import { addSchool, addUser, type Collector, type LoggedIn, lachan, login, PASSWORD, postLogin, startCollector, stopCollector } from './harness/index.js';

/**
 * Safeguarding alerts through a real collector process (docs/safeguarding.md): a
 * gateway's batches with its school token, the upsert per (school, ref), who may read
 * them, acknowledge and close them, and the e-mail and webhook a school's contacts get.
 */
const dataDir = mkdtempSync(path.join(tmpdir(), 'lachan-alerts-'));
let collector: Collector;
let adminToken: string;
let tramTau: { id: string; token: string };
let muCang: { id: string; token: string };

interface Mail {
  readonly to: string[];
  readonly text: string;
}
const mails: Mail[] = [];
let smtp: SMTPServer;
let smtpPort: number;

interface Hook {
  readonly body: Record<string, unknown>;
  readonly answered: number;
}
const hooks: Hook[] = [];
/** The webhook fails its first call, so the collector must try again. */
let hookFailuresLeft = 1;
let webhook: Server;

const T0 = Date.now() - 60_000;

function alert(overrides: Partial<WireAlert> = {}): WireAlert {
  return {
    ref: 'AL-01JF00000000000000000001',
    time: T0,
    lastTime: T0,
    severity: 'medium',
    category: 'self-harm',
    signal: 'search',
    trigger: 'cách tự tử',
    host: 'www.google.com',
    device: '3f9a0c1d2e3f4a5b',
    profile: 'thcs',
    count: 1,
    ...overrides,
  };
}

/** The text of a single-part message, its transfer encoding undone. */
function mailText(raw: string): string {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split);
  const body = raw.slice(split + 4);
  const encoding = /content-transfer-encoding:\s*(\S+)/i.exec(head)?.[1]?.toLowerCase();
  if (encoding === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  const bytes =
    encoding === 'quoted-printable'
      ? body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
      : body;
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

function postAlerts(token: string, body: unknown): Promise<Response> {
  return fetch(`${collector.url}/api/v1/alerts/ingest`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function alertsAs(auth: { token: string } | LoggedIn, query = ''): Promise<Response> {
  const headers: Record<string, string> = 'token' in auth ? { authorization: `Bearer ${auth.token}` } : { cookie: auth.cookie };
  return fetch(`${collector.url}/api/v1/alerts${query}`, { headers });
}

async function adminAlerts(): Promise<CentralAlert[]> {
  const response = await alertsAs({ token: adminToken });
  expect(response.status).toBe(200);
  return ((await response.json()) as { alerts: CentralAlert[] }).alerts;
}

async function until<T>(what: string, probe: () => T | undefined, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

let counsellor: LoggedIn;
let otherCounsellor: LoggedIn;
let schoolIt: LoggedIn;
let viewer: LoggedIn;

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), text: mailText(Buffer.concat(chunks).toString('latin1')) });
        callback();
      });
    },
  });
  // The collector is stopped and restarted below with a mail connection open: its reset
  // is a client going away, not a failure of the test's server.
  smtp.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'ECONNRESET') throw error;
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  smtpPort = (smtp.server.address() as AddressInfo).port;
  webhook = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const status = hookFailuresLeft > 0 ? 503 : 204;
      if (hookFailuresLeft > 0) hookFailuresLeft--;
      hooks.push({ body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>, answered: status });
      response.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));

  tramTau = addSchool(dataDir, 'THCS Trạm Tấu');
  muCang = addSchool(dataDir, 'THCS Mù Cang Chải');
  addUser(dataDir, 'quantri', 'admin');
  addUser(dataDir, 'tuvan-tramtau', 'tu-van', tramTau.id);
  addUser(dataDir, 'tuvan-mucang', 'tu-van', muCang.id);
  addUser(dataDir, 'it-tramtau', 'school-it', tramTau.id);
  addUser(dataDir, 'xem', 'viewer');
  const contacts = lachan([
    'central',
    'school',
    'alerts',
    '--school',
    tramTau.id,
    '--email',
    'tuvan@thcs-tramtau.edu.vn',
    'hieutruong@thcs-tramtau.edu.vn',
    '--webhook',
    `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/canh-bao`,
    '--data',
    dataDir,
    '--json',
  ]);
  expect(contacts.code).toBe(0);
  expect(JSON.parse(contacts.stdout)).toMatchObject({ school: tramTau.id, emails: ['tuvan@thcs-tramtau.edu.vn', 'hieutruong@thcs-tramtau.edu.vn'] });

  collector = await startCollector(dataDir, ['--smtp', `smtp://127.0.0.1:${smtpPort}`, '--mail-from', 'lachan@phong-gd.edu.vn']);
  adminToken = readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
  counsellor = await loginCounsellor('tuvan-tramtau');
  otherCounsellor = await loginCounsellor('tuvan-mucang');
  schoolIt = await login(collector.url, 'it-tramtau');
  viewer = await login(collector.url, 'xem');
}, 180_000);

/** A counsellor's login lands on the alert queue; the CSRF token is read there. */
async function loginCounsellor(name: string): Promise<LoggedIn> {
  const response = await postLogin(collector.url, name, PASSWORD);
  expect(response.status).toBe(303);
  const cookie = /^(lachan_session=[^;]*)/.exec(response.headers.getSetCookie().find((c) => c.startsWith('lachan_session='))!)![1]!;
  const home = await fetch(`${collector.url}/`, { headers: { cookie }, redirect: 'manual' });
  expect(home.status).toBe(303);
  expect(home.headers.get('location')).toBe('/alerts');
  const page = await fetch(`${collector.url}/alerts`, { headers: { cookie } });
  expect(page.status).toBe(200);
  const csrf = /<meta name="csrf" content="([^"]+)"/.exec(await page.text())![1]!;
  return { cookie, csrf };
}

afterAll(async () => {
  if (collector) await stopCollector(collector);
  await new Promise<void>((resolve) => (smtp === undefined ? resolve() : smtp.close(() => resolve())));
  webhook?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('POST /api/v1/alerts/ingest', () => {
  it('refuses a bad token with 401 and a malformed batch with 400, storing nothing of it', async () => {
    expect((await postAlerts('not-a-token', { alerts: [alert()] })).status).toBe(401);
    const malformed = await postAlerts(tramTau.token, {
      alerts: [alert({ ref: 'AL-GOOD-0001' }), alert({ ref: 'AL-BAD-0002', severity: 'extreme' as never })],
    });
    expect(malformed.status).toBe(400);
    const refusal = (await malformed.json()) as { error: string; code: string };
    expect(refusal.code).toBe('bad_alert');
    expect(refusal.error).toContain('alerts[1].severity');
    expect((await postAlerts(tramTau.token, '{"alerts":')).status).toBe(400);
    expect((await postAlerts(tramTau.token, { alerts: Array.from({ length: 501 }, (_, i) => alert({ ref: `AL-MANY-${i}` })) })).status).toBe(400);
    expect(await adminAlerts()).toEqual([]);
  });

  it('stores a new alert and tells the school by e-mail and webhook, retrying the webhook that failed', async () => {
    const response = await postAlerts(tramTau.token, { alerts: [alert()] });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ accepted: 1 });
    const [stored] = await adminAlerts();
    expect(stored).toMatchObject({
      ref: 'AL-01JF00000000000000000001',
      school: tramTau.id,
      schoolName: 'THCS Trạm Tấu',
      severity: 'medium',
      count: 1,
      status: 'new',
      note: null,
      device: '3f9a0c1d2e3f4a5b',
    });
    const delivered = await until('two e-mails', () => (mails.length >= 2 ? mails : undefined));
    expect(delivered.flatMap((m) => m.to).sort()).toEqual(['hieutruong@thcs-tramtau.edu.vn', 'tuvan@thcs-tramtau.edu.vn']);
    expect(delivered[0]!.text).toContain('Mã cảnh báo: AL-01JF00000000000000000001');
    expect(delivered[0]!.text).toContain('Trường: THCS Trạm Tấu');
    expect(delivered[0]!.text).toContain('Mức độ: trung bình');
    // What leaves the collector by e-mail carries neither the search terms nor the device.
    expect(delivered[0]!.text).not.toContain('3f9a0c1d2e3f4a5b');
    expect(delivered[0]!.text).not.toContain('google');
    const hook = await until('a webhook delivered after a retry', () => (hooks.some((h) => h.answered === 204) ? hooks : undefined));
    expect(hook.map((h) => h.answered)).toEqual([503, 204]);
    expect(hook[1]!.body).toMatchObject({
      event: 'alert.new',
      ref: 'AL-01JF00000000000000000001',
      school: tramTau.id,
      category: 'self-harm',
      severity: 'medium',
    });
    expect(hook[1]!.body).not.toHaveProperty('device');
    expect(hook[1]!.body).not.toHaveProperty('trigger');
  });

  it('changes nothing when the same alert is sent again', async () => {
    const before = await adminAlerts();
    expect((await postAlerts(tramTau.token, { alerts: [alert()] })).status).toBe(200);
    expect(await adminAlerts()).toEqual(before);
  });

  it('folds an escalation into the alert: count, last time and severity grow, the larger send names the trigger', async () => {
    const mailsBefore = mails.length;
    const hooksBefore = hooks.length;
    const escalated = alert({
      lastTime: T0 + 30_000,
      count: 3,
      severity: 'high',
      signal: 'content',
      trigger: 'Những cách tự kết liễu',
      host: 'diendan.example',
    });
    expect((await postAlerts(tramTau.token, { alerts: [escalated] })).status).toBe(200);
    // An older, smaller send arriving late changes nothing.
    expect((await postAlerts(tramTau.token, { alerts: [alert({ lastTime: T0 + 10_000, count: 2, trigger: 'cũ hơn' })] })).status).toBe(200);
    const [stored] = await adminAlerts();
    expect(stored).toMatchObject({ ...escalated, time: T0, status: 'new' });
    // Escalation to high is sent again (two addresses, one webhook); the late smaller send is not.
    await until('escalation e-mails', () => (mails.length >= mailsBefore + 2 ? true : undefined));
    const hook = await until('escalation webhook', () => hooks.slice(hooksBefore).find((h) => h.body.event === 'alert.escalated'));
    expect(hook.body).toMatchObject({ severity: 'high', count: 3 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(mails.length).toBe(mailsBefore + 2);
  });

  it('keeps alerts of two schools apart even with the same ref', async () => {
    expect((await postAlerts(muCang.token, { alerts: [alert({ category: 'bullying', trigger: 'đồ béo', severity: 'low' })] })).status).toBe(200);
    const all = await adminAlerts();
    expect(all.map((a) => [a.school, a.category]).sort()).toEqual(
      [
        [muCang.id, 'bullying'],
        [tramTau.id, 'self-harm'],
      ].sort(),
    );
  });
});

describe('who reads and handles alerts', () => {
  it("shows a counsellor their own school's alerts only, and refuses another school", async () => {
    const own = await alertsAs(counsellor);
    expect(own.status).toBe(200);
    const alerts = ((await own.json()) as { alerts: CentralAlert[] }).alerts;
    expect(alerts.map((a) => a.school)).toEqual([tramTau.id]);
    expect((await alertsAs(counsellor, `?school=${muCang.id}`)).status).toBe(403);
    const other = ((await (await alertsAs(otherCounsellor)).json()) as { alerts: CentralAlert[] }).alerts;
    expect(other.map((a) => a.school)).toEqual([muCang.id]);
    expect((await alertsAs(otherCounsellor, `?school=${tramTau.id}`)).status).toBe(403);
  });

  it("refuses the school's IT staff and viewers (API and page), and keeps a counsellor out of the block log", async () => {
    expect((await alertsAs(schoolIt)).status).toBe(403);
    expect((await alertsAs(viewer)).status).toBe(403);
    const page = await fetch(`${collector.url}/alerts`, { headers: { cookie: schoolIt.cookie } });
    expect(page.status).toBe(403);
    expect(await page.text()).not.toContain('cách tự tử');
    const otherPage = await fetch(`${collector.url}/alerts`, { headers: { cookie: otherCounsellor.cookie } });
    expect(otherPage.status).toBe(200);
    expect(await otherPage.text()).not.toContain('kết liễu');
    expect((await fetch(`${collector.url}/api/v1/events`, { headers: { cookie: counsellor.cookie } })).status).toBe(403);
    expect((await fetch(`${collector.url}/logs`, { headers: { cookie: counsellor.cookie } })).status).toBe(403);
    expect((await fetch(`${collector.url}/api/v1/reviews`, { headers: { cookie: counsellor.cookie } })).status).toBe(403);
  });

  it('lets a counsellor acknowledge and close with a note (CSRF required), audited; another school cannot', async () => {
    const target = `${collector.url}/api/v1/alerts/${tramTau.id}/AL-01JF00000000000000000001`;
    const post = (who: LoggedIn, body: unknown, csrf: string | null = who.csrf) =>
      fetch(target, {
        method: 'POST',
        headers: { cookie: who.cookie, 'content-type': 'application/json', ...(csrf === null ? {} : { 'x-csrf-token': csrf }) },
        body: JSON.stringify(body),
      });
    expect((await post(counsellor, { status: 'acknowledged' }, null)).status).toBe(403);
    expect((await post(otherCounsellor, { status: 'closed' })).status).toBe(403);
    expect((await post(schoolIt, { status: 'closed' })).status).toBe(403);
    expect((await post(counsellor, { status: 'acknowledged', note: 'Đã gặp em, đã báo phụ huynh' })).status).toBe(200);
    expect((await post(counsellor, { status: 'closed' })).status).toBe(200);
    const [closed] = ((await (await alertsAs(counsellor)).json()) as { alerts: CentralAlert[] }).alerts;
    expect(closed).toMatchObject({ status: 'closed', note: 'Đã gặp em, đã báo phụ huynh' });
    const audit = (await (await fetch(`${collector.url}/api/v1/audit`, { headers: { authorization: `Bearer ${adminToken}` } })).json()) as {
      entries: { actor: string; action: string; target: string }[];
    };
    const handled = audit.entries.filter((e) => e.target === `alert:${tramTau.id}/AL-01JF00000000000000000001`);
    expect(handled.map((e) => [e.actor, e.action])).toEqual([
      ['tuvan-tramtau', 'alert.close'],
      ['tuvan-tramtau', 'alert.acknowledge'],
    ]);
    // The note's words stay with the alert, not in the audit log.
    expect(JSON.stringify(handled)).not.toContain('phụ huynh');
  });

  it('reopens a closed alert that comes back more severe, and a same-severity resend leaves it closed', async () => {
    expect((await postAlerts(tramTau.token, { alerts: [alert({ lastTime: T0 + 40_000, count: 4, severity: 'high' })] })).status).toBe(200);
    let [stored] = ((await (await alertsAs(counsellor)).json()) as { alerts: CentralAlert[] }).alerts;
    expect(stored).toMatchObject({ status: 'closed', count: 4 });
    expect((await postAlerts(tramTau.token, { alerts: [alert({ lastTime: T0 + 50_000, count: 5, severity: 'critical' })] })).status).toBe(200);
    [stored] = ((await (await alertsAs(counsellor)).json()) as { alerts: CentralAlert[] }).alerts;
    expect(stored).toMatchObject({ status: 'new', severity: 'critical', count: 5, note: 'Đã gặp em, đã báo phụ huynh' });
    await until('a reopened alert on the webhook', () => hooks.find((h) => h.body.severity === 'critical'));
  });
});

describe('delivery outlives the collector process', () => {
  it('sends after a restart what a webhook that was down could not take', async () => {
    hookFailuresLeft = 1_000;
    const ref = 'AL-RESTART-000001';
    expect((await postAlerts(tramTau.token, { alerts: [alert({ ref, severity: 'critical', category: 'violence', trigger: 'mang dao' })] })).status).toBe(200);
    await until('a refused webhook call', () => hooks.find((h) => h.body.ref === ref && h.answered === 503));
    await stopCollector(collector);
    hookFailuresLeft = 0;
    collector = await startCollector(dataDir, ['--smtp', `smtp://127.0.0.1:${smtpPort}`]);
    const delivered = await until('the webhook delivered by the restarted collector', () => hooks.find((h) => h.body.ref === ref && h.answered === 204));
    expect(delivered.body).toMatchObject({ event: 'alert.new', severity: 'critical', category: 'violence' });
  }, 60_000);
  it('stores a trigger with a NUL as U+FFFD, on either store, instead of refusing the batch', async () => {
    // A query or a page title a student typed or a page carries: PostgreSQL's text refuses NUL.
    const ref = 'AL-NUL-0000000001';
    expect((await postAlerts(tramTau.token, { alerts: [alert({ ref, trigger: 'cách tự\u0000tử', host: 'nul\u0000.example' })] })).status).toBe(200);
    const stored = (await adminAlerts()).find((a) => a.ref === ref);
    expect(stored).toMatchObject({ trigger: 'cách tự\uFFFDtử' });
  });
});
