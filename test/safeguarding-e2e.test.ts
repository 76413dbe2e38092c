/**
 * Safeguarding end to end, with the real processes (docs/safeguarding.md): a child's
 * self-harm search through a real gateway raises an alert that reaches the real
 * collector within a minute; the school's counsellor sees it in the dashboard (Chromium)
 * and turns its pseudonym back into a device only on the gateway; the school's IT staff
 * and another school's counsellor cannot see it; a collector outage delays an alert but
 * loses nothing.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readAudit } from '../src/privacy/audit.js';
import {
  addUser,
  type Collector,
  curl,
  describeWithBrowser,
  launchDirect,
  echoHandler,
  lachan,
  login,
  type Origin,
  REPO_ROOT,
  signedInPage,
  type RunningGateway,
  startCollector,
  startGateway,
  startHttpOrigin,
  stopCollector,
} from './harness/index.js';

const SAFEGUARDING_FILES = ['self-harm', 'grooming', 'bullying', 'violence'];

interface CollectorAlert {
  ref: string;
  school: string;
  severity: string;
  category: string;
  trigger: string;
  device: string;
  count: number;
  status: string;
}

const work = mkdtempSync(path.join(tmpdir(), 'lachan-safeguarding-e2e-'));
const centralData = path.join(work, 'central');
let collector: Collector;
let collectorPort: number;
let gateway: RunningGateway;
let origin: Origin;
let browser: Browser;
let schoolId: string;

const search = (terms: string): string => `http://www.google.com:${origin.port}/search?q=${encodeURIComponent(terms)}&hl=vi`;

function enrol(name: string): { id: string; token: string } {
  const result = lachan(['central', 'school', 'add', '--name', name, '--data', centralData, '--json']);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as { id: string; token: string };
}

async function collectorAlerts(): Promise<CollectorAlert[]> {
  const adminToken = readFileSync(path.join(centralData, 'admin-token'), 'utf8').trim();
  const response = await fetch(`${collector.url}/api/v1/alerts`, { headers: { authorization: `Bearer ${adminToken}` } });
  expect(response.status).toBe(200);
  return ((await response.json()) as { alerts: CollectorAlert[] }).alerts;
}

/** Polls until `ok`; the deadline is the product's promise (an alert arrives within a minute), not a speed check. */
async function until<T>(what: string, read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const loggedIn = (name: string): Promise<Page> => signedInPage(browser, collector.url, name);

describeWithBrowser('a child in danger reaches the school counsellor, and only them', () => {
  beforeAll(async () => {
    const school = enrol('THCS Trạm Tấu');
    const other = enrol('THCS Mù Cang Chải');
    schoolId = school.id;
    addUser(centralData, 'tuvan-tramtau', 'tu-van', school.id);
    addUser(centralData, 'it-tramtau', 'school-it', school.id);
    addUser(centralData, 'tuvan-mucang', 'tu-van', other.id);
    collector = await startCollector(centralData);
    collectorPort = collector.port;
    writeFileSync(path.join(work, 'token'), `${school.token}\n`, { mode: 0o600 });
    origin = await startHttpOrigin(echoHandler);
    const rules: Record<string, string> = {
      'policy.yaml':
        'version: 1\ndefault_profile: thcs\nprofiles:\n  thcs:\n    name: "Trung học cơ sở"\n    block_categories: [self-harm]\n    content_limit: 100\n',
      'categories/self-harm/domains': 'tu-hai.test\n',
    };
    // The shipped self-harm keywords and phrases score the search; the safeguarding phrases raise the alert.
    for (const name of ['keywords', 'phrases'])
      rules[`categories/self-harm/${name}`] = readFileSync(path.join(REPO_ROOT, 'rules/categories/self-harm', name), 'utf8');
    for (const name of SAFEGUARDING_FILES) rules[`safeguarding/${name}`] = readFileSync(path.join(REPO_ROOT, 'rules/safeguarding', name), 'utf8');
    gateway = await startGateway({
      rules,
      hosts: '127.0.0.1 www.google.com\n',
      args: ['--central', collector.url, '--school', school.id, '--token-file', path.join(work, 'token')],
    });
    browser = await launchDirect();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await gateway?.stop();
    if (collector) await stopCollector(collector);
    await origin?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('a self-harm search through the proxy is in the counsellor’s queue within a minute, with the terms and a pseudonym only', async () => {
    const answer = await curl(gateway.port, search('cách tự tử'));
    expect(answer.status).toBe(403);
    const [alert] = await until('the alert at the collector', collectorAlerts, (alerts) => alerts.length === 1, 60_000);
    expect(alert).toMatchObject({ school: schoolId, category: 'self-harm', trigger: 'cách tự tử', status: 'new' });
    expect(JSON.stringify(alert)).not.toContain('127.0.0.1');

    const page = await loggedIn('tuvan-tramtau');
    expect(new URL(page.url()).pathname).toBe('/alerts');
    const row = page.locator(`tr[data-ref="${alert!.ref}"]`);
    const cells = await row.locator('td').allTextContents();
    expect(cells[2]).toBe('Tự hại, tự tử');
    expect(cells[3]).toContain('cách tự tử');
    expect(cells[4]).toBe(alert!.device);
    mkdirSync(path.join(REPO_ROOT, 'test/artifacts'), { recursive: true });
    await page.screenshot({ path: path.join(REPO_ROOT, 'test/artifacts/safeguarding-e2e-queue.png'), fullPage: true });
    await page.context().close();
  });

  it('the counsellor turns the pseudonym into the device on the gateway, and the look-up is audited there', async () => {
    const [alert] = await collectorAlerts();
    const resolved = lachan(['alerts', 'resolve', alert!.ref, '--data', gateway.dataDir]);
    expect(resolved.code, resolved.stderr).toBe(0);
    expect(resolved.stdout).toContain('127.0.0.1');
    const audit = readAudit(gateway.dataDir);
    expect(audit.some((entry) => JSON.stringify(entry).includes(alert!.ref))).toBe(true);
  });

  it("the school's IT staff and another school's counsellor cannot see it", async () => {
    const staff = await login(collector.url, 'it-tramtau');
    expect((await fetch(`${collector.url}/api/v1/alerts`, { headers: { cookie: staff.cookie } })).status).toBe(403);
    const elsewhere = await login(collector.url, 'tuvan-mucang');
    const theirs = await fetch(`${collector.url}/api/v1/alerts`, { headers: { cookie: elsewhere.cookie } });
    if (theirs.status === 200) expect(((await theirs.json()) as { alerts: CollectorAlert[] }).alerts).toEqual([]);
    else expect(theirs.status).toBe(403);
    const asked = await fetch(`${collector.url}/api/v1/alerts?school=${schoolId}`, { headers: { cookie: elsewhere.cookie } });
    expect(asked.status).toBe(403);

    const page = await loggedIn('it-tramtau');
    expect((await page.goto(`${collector.url}/alerts`))?.status()).toBe(403);
    expect(await page.content()).not.toContain('cách tự tử');
    await page.context().close();
  });

  it('an alert raised while the collector is down waits at the gateway and arrives once it is back', async () => {
    await stopCollector(collector);
    expect((await curl(gateway.port, search('he wants me to send nudes'))).status).toBeLessThan(500);
    await gateway.waitForLog((line) => line.msg === 'shipping failed', 30_000);
    collector = await startCollector(centralData, [], collectorPort);
    const alerts = await until('the alert raised in the outage', collectorAlerts, (list) => list.some((a) => a.category === 'grooming'), 120_000);
    expect(alerts.filter((a) => a.category === 'grooming')).toHaveLength(1);
    expect(alerts.filter((a) => a.category === 'self-harm')).toHaveLength(1);
  });
});
