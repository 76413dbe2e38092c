import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { WireAlert } from '../src/central/alerts.js';
import {
  addSchool,
  addUser,
  type Collector,
  describeWithBrowser,
  launchDirect,
  REPO_ROOT,
  signedInPage,
  startCollector,
  stopCollector,
} from './harness/index.js';

/** The counsellor's alert queue in headless Chromium (docs/safeguarding.md §3). */
const dataDir = mkdtempSync(path.join(tmpdir(), 'lachan-alerts-browser-'));
let collector: Collector;
let browser: Browser;

// 20:45 on 4 December 2026 in Vietnam (13:45 UTC).
const LAST = Date.UTC(2026, 11, 4, 13, 45, 0);

function alert(overrides: Partial<WireAlert>): WireAlert {
  return {
    ref: 'AL-BROWSER-0001',
    time: LAST - 600_000,
    lastTime: LAST,
    severity: 'high',
    category: 'self-harm',
    signal: 'search',
    trigger: 'cách tự tử không đau',
    host: 'www.google.com',
    device: '3f9a0c1d2e3f4a5b',
    profile: 'thcs',
    count: 3,
    ...overrides,
  };
}

async function send(token: string, alerts: WireAlert[]): Promise<void> {
  const response = await fetch(`${collector.url}/api/v1/alerts/ingest`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ alerts }),
  });
  expect(response.status).toBe(200);
}

const loggedIn = (name: string): Promise<Page> => signedInPage(browser, collector.url, name);

describeWithBrowser('the counsellor’s alert queue in Chromium', () => {
  beforeAll(async () => {
    const tramTau = addSchool(dataDir, 'THCS Trạm Tấu');
    const muCang = addSchool(dataDir, 'THCS Mù Cang Chải');
    addUser(dataDir, 'tuvan-tramtau', 'tu-van', tramTau.id);
    addUser(dataDir, 'tuvan-mucang', 'tu-van', muCang.id);
    addUser(dataDir, 'it-tramtau', 'school-it', tramTau.id);
    collector = await startCollector(dataDir);
    await send(tramTau.token, [
      alert({}),
      alert({ ref: 'AL-BROWSER-0002', severity: 'low', category: 'bullying', trigger: 'đồ ngốc', lastTime: LAST + 60_000, count: 1 }),
    ]);
    await send(muCang.token, [alert({ ref: 'AL-MUCANG-0001', category: 'grooming', trigger: 'gửi ảnh cho anh' })]);
    browser = await launchDirect();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    if (collector) await stopCollector(collector);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('lands a counsellor on the queue: most severe first, Vietnam time, Vietnamese labels, the pseudonym, the count', async () => {
    const page = await loggedIn('tuvan-tramtau');
    expect(new URL(page.url()).pathname).toBe('/alerts');
    await expect(page.locator('h1').textContent()).resolves.toBe('Cảnh báo an toàn');
    // Only the queue in the menu: no block log, no reviews.
    expect(await page.locator('header nav a').allTextContents()).toEqual(['Cảnh báo']);
    const rows = page.locator('table.alerts tbody tr');
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-ref')))).toEqual(['AL-BROWSER-0001', 'AL-BROWSER-0002']);
    const first = rows.nth(0);
    const cells = await first.locator('td').allTextContents();
    expect(cells[0]).toContain('04/12/2026 20:45');
    expect(cells[1]).toBe('cao');
    expect(cells[2]).toBe('Tự hại, tự tử');
    expect(cells[3]).toContain('cách tự tử không đau');
    expect(cells[4]).toBe('3f9a0c1d2e3f4a5b');
    expect(cells[5]).toBe('3');
    expect(cells[6]).toBe('Mới');
    expect(await page.content()).not.toContain('gửi ảnh cho anh');
    mkdirSync(path.join(REPO_ROOT, 'test/artifacts'), { recursive: true });
    await page.screenshot({ path: path.join(REPO_ROOT, 'test/artifacts/alerts-queue.png'), fullPage: true });
    await page.context().close();
  });

  it('acknowledges with a note and then closes the alert', async () => {
    const page = await loggedIn('tuvan-tramtau');
    const row = () => page.locator('tr[data-ref="AL-BROWSER-0001"]');
    await row().locator('textarea[name=note]').fill('Đã gặp em và báo gia đình');
    await row().locator('button[value=acknowledged]').click();
    await page.waitForURL(/\/alerts\?done=acknowledged$/);
    await expect(page.locator('p.done').textContent()).resolves.toBe('Đã tiếp nhận cảnh báo.');
    await expect(row().locator('td.status').textContent()).resolves.toContain('Đã tiếp nhận');
    await expect(row().locator('.note').textContent()).resolves.toBe('Đã gặp em và báo gia đình');
    await row().locator('button[value=closed]').click();
    await page.waitForURL(/\/alerts\?done=closed$/);
    await expect(row().getAttribute('data-status')).resolves.toBe('closed');
    // A closed alert goes below the open ones.
    expect(await page.locator('table.alerts tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-ref')))).toEqual([
      'AL-BROWSER-0002',
      'AL-BROWSER-0001',
    ]);
    const adminToken = readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    const audit = (await (await fetch(`${collector.url}/api/v1/audit`, { headers: { authorization: `Bearer ${adminToken}` } })).json()) as {
      entries: { actor: string; action: string }[];
    };
    expect(audit.entries.filter((e) => e.action.startsWith('alert.')).map((e) => [e.actor, e.action])).toEqual([
      ['tuvan-tramtau', 'alert.close'],
      ['tuvan-tramtau', 'alert.acknowledge'],
    ]);
    await page.context().close();
  });

  it("shows another school's counsellor none of it, and the school's IT staff a refusal", async () => {
    const other = await loggedIn('tuvan-mucang');
    expect(await other.locator('table.alerts tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-ref')))).toEqual(['AL-MUCANG-0001']);
    expect(await other.content()).not.toContain('cách tự tử không đau');
    await other.context().close();
    const staff = await loggedIn('it-tramtau');
    const response = await staff.goto(`${collector.url}/alerts`);
    expect(response?.status()).toBe(403);
    expect(await staff.content()).not.toContain('cách tự tử không đau');
    await staff.goto(`${collector.url}/`);
    expect(await staff.locator('header nav a').count()).toBeGreaterThan(0);
    expect(await staff.locator('header nav a', { hasText: 'Cảnh báo' }).count()).toBe(0);
    await staff.context().close();
  });
});
