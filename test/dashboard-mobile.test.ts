import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEventId } from '../src/events/ids.js';
import type { WireReviewRequest } from '../src/events/review-wire.js';
import { addSchool, addUser, type Collector, ingest, PASSWORD, REPO_ROOT, startCollector, stopCollector, wireEvent } from './harness/index.js';

// District staff on a phone (390 px wide, as an iPhone 12–15): every page fits the screen
// (tables scroll inside themselves), the review queue's buttons are on screen, the chart's
// labels keep a readable size, names and Vietnamese labels instead of ids and slugs, and
// times in Vietnam time. Screenshots land in test/artifacts/ for a person to look at.
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'test/artifacts');
const PHONE = { width: 390, height: 844 };
const VN_TIME = /\d\d\/\d\d\/\d{4} \d\d:\d\d/;
const describeWithBrowser = existsSync(CHROMIUM) ? describe : describe.skip;

const dataDir = mkdtempSync(path.join(tmpdir(), 'lachan-dash-mobile-'));
let collector: Collector;
let browser: Browser;
let page: Page;
let school: { id: string; token: string };

function reviewRequest(note: string, overrides: Partial<WireReviewRequest> = {}): WireReviewRequest {
  return {
    id: newEventId(),
    kind: 'review',
    time: Date.now(),
    host: 'hoc-toan.example',
    path: '/bai-tap/phan-so-va-so-thap-phan-lop-5',
    category: 'games',
    profile: 'tieu-hoc',
    event: null,
    reference: '7QK3-M9XD',
    note,
    client: '0123456789abcdef',
    ...overrides,
  };
}

/** Nothing of the page reaches past the right edge of the phone's screen. */
async function expectNoSidewaysScroll(): Promise<void> {
  const widths = await page.evaluate(() => ({ document: document.documentElement.scrollWidth, body: document.body.scrollWidth, viewport: window.innerWidth }));
  expect(widths.document, 'page wider than the screen').toBeLessThanOrEqual(widths.viewport);
  expect(widths.body, 'body wider than the screen').toBeLessThanOrEqual(widths.viewport);
}

/** The whole page, or (`fullPage` false) what the phone's screen shows. */
async function shoot(name: string, fullPage = true): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `mobile-390-${name}.png`), fullPage });
}

describeWithBrowser('the district dashboard on a 390 px phone', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    school = addSchool(dataDir, 'TH Trạm Tấu');
    addSchool(dataDir, 'THCS Mù Cang Chải');
    addUser(dataDir, 'quantri', 'admin');
    collector = await startCollector(dataDir);
    const now = Date.now();
    await ingest(collector.url, school, [
      ...Array.from({ length: 30 }, (_, i) =>
        wireEvent({ time: now - (i % 14) * 86_400_000 - i * 1000, path: `/dang-ky-tai-khoan-ca-cuoc-bong-da-truc-tuyen/${i}` }),
      ),
      ...Array.from({ length: 8 }, (_, i) =>
        wireEvent({
          time: now - (i % 5) * 86_400_000,
          category: 'games',
          host: 'game-online-rat-dai.example',
          rule: 'game-online-rat-dai.example',
          source: 'rules/categories/games/domains:7',
          profile: 'thcs',
        }),
      ),
    ]);
    // Three pupils of one class ask for the same lesson; a teacher reports a page.
    const requests = [
      reviewRequest('Cô giáo giao bài tập trên trang này', { time: now - 3000 }),
      reviewRequest('Bài tập về nhà', { time: now - 2000 }),
      reviewRequest('Cô giáo giao bài tập trên trang này', { time: now - 1000 }),
      reviewRequest('Trang lô đề', { kind: 'report', host: 'soi-cau.example', path: '/hom-nay', category: 'gambling', reference: null }),
    ];
    const sent = await fetch(`${collector.url}/api/v1/reviews`, {
      method: 'POST',
      headers: { authorization: `Bearer ${school.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ school: school.id, requests }),
    });
    expect(sent.status).toBe(200);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    const context = await browser.newContext({
      locale: 'vi-VN',
      viewport: PHONE,
      isMobile: true,
      hasTouch: true,
      deviceScaleFactor: 2,
      timezoneId: 'Europe/London',
    });
    page = await context.newPage();
    await page.goto(`${collector.url}/login`);
    await expectNoSidewaysScroll();
    await page.fill('input[name=name]', 'quantri');
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL(`${collector.url}/`);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    if (collector) await stopCollector(collector);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('overview: fits the screen, and the chart labels stay readable', async () => {
    await page.waitForSelector('#chart svg text');
    await page.waitForSelector('#by-school tbody tr');
    await expectNoSidewaysScroll();
    // Rendered label height in CSS pixels: 11 px type shrunk to a third would be ~4 px.
    const heights = await page.$$eval('#chart svg text', (labels) => labels.map((l) => l.getBoundingClientRect().height));
    expect(Math.min(...heights)).toBeGreaterThanOrEqual(10);
    // Day labels do not run into each other.
    const boxes = await page.$$eval('#chart svg text[text-anchor]', (labels) =>
      labels
        .filter((l) => /\d\d\/\d\d/.test(l.textContent ?? ''))
        .map((l) => {
          const r = l.getBoundingClientRect();
          return [r.left, r.right];
        }),
    );
    for (let i = 1; i < boxes.length; i++) expect(boxes[i]![0]).toBeGreaterThanOrEqual(boxes[i - 1]![1]);
    await expect(page.locator('#by-school').innerText()).resolves.toContain('TH Trạm Tấu');
    await shoot('1-overview');
  });

  it('review queue: identical requests show once, the approve form is on screen with the narrowest scope chosen', async () => {
    await page.click('nav a[href="/reviews"]');
    await expectNoSidewaysScroll();
    const rows = page.locator('tr[data-host="hoc-toan.example"]');
    expect(await rows.count()).toBe(1);
    const row = rows.first();
    await expect(row.locator('.count').innerText()).resolves.toBe('3 lượt đề nghị giống nhau');
    await expect(row.innerText()).resolves.toMatch(VN_TIME);
    await expect(page.locator('nav.tabs').innerText()).resolves.toContain('Đang chờ (2)');
    const viewport = page.viewportSize()!;
    for (const control of ['form.approve select[name=profile]', 'form.approve select[name=match]', 'form.approve button', 'form.reject button']) {
      const box = (await row.locator(control).boundingBox())!;
      expect(box, control).not.toBeNull();
      expect(box.x, control).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width, control).toBeLessThanOrEqual(viewport.width);
    }
    expect(await row.locator('form.approve select[name=match]').inputValue()).toBe('page');
    expect(await row.locator('form.approve select[name=keywords]').inputValue()).toBe('on');
    await shoot('2-reviews');
    await row.locator('form.approve button').click();
    await page.waitForURL(/\/reviews\?done=approved$/);
    expect(await page.locator('tr[data-host="hoc-toan.example"]').count()).toBe(0);
    await expect(page.locator('nav.tabs').innerText()).resolves.toContain('Đang chờ (1)');
    await page.click('nav.tabs a[href="/reviews?status=decided"]');
    expect(await page.locator('tr[data-host="hoc-toan.example"][data-status=approved]').count()).toBe(3);
    await expectNoSidewaysScroll();
    await shoot('3-reviews-decided');
  });

  it('policy: the rule made shows as one page, history names the school, and the tables scroll inside themselves', async () => {
    await page.click('nav a[href="/policy"]');
    await expectNoSidewaysScroll();
    const rule = await page.locator('#rules tbody tr').first().innerText();
    expect(rule).toContain('hoc-toan.example/bai-tap/phan-so-va-so-thap-phan-lop-5');
    expect(rule).toContain('Trang');
    expect(rule).toContain('từ khóa vẫn chặn');
    const history = await page.locator('#versions').innerText();
    expect(history).toContain('TH Trạm Tấu');
    expect(history).not.toContain(school.id);
    expect(history).toContain('nhóm Tiểu học');
    expect(history).toMatch(VN_TIME);
    await shoot('4-policy');
  });

  it('logs: filters offer Vietnamese names, the table scrolls inside itself, times are Vietnam time', async () => {
    await page.click('nav a[href="/logs"]');
    await page.waitForSelector('#events tbody tr');
    await expectNoSidewaysScroll();
    const categories = await page.$$eval('select[name=category] option', (options) => options.map((o) => o.textContent));
    expect(categories).toContain('Cờ bạc, cá độ');
    expect(categories).not.toContain('gambling');
    const profiles = await page.$$eval('select[name=profile] option', (options) => options.map((o) => o.textContent));
    expect(profiles).toContain('Tiểu học');
    const first = await page.locator('#events tbody tr').first().innerText();
    expect(first).toMatch(VN_TIME);
    expect(first).toContain('TH Trạm Tấu');
    expect(first).toMatch(/Tiểu học|Trung học cơ sở/);
    // The browser runs in London time: the page still shows Vietnam time.
    const shown = await page.locator('#events tbody tr td').first().innerText();
    const [, d, m, y, hm] = /^(\d\d)\/(\d\d)\/(\d{4}) (\d\d:\d\d)$/.exec(shown)!;
    expect(Math.abs(Date.parse(`${y}-${m}-${d}T${hm}:00+07:00`) - Date.now())).toBeLessThan(3 * 60_000);
    // The table scrolls inside its own box; the page does not.
    const table = await page.$eval('#events', (t) => ({ table: t.scrollWidth, box: t.parentElement!.clientWidth }));
    expect(table.table).toBeGreaterThan(table.box);
    await shoot('5-logs', false);
  });

  it('users and audit: readable on the phone, in Vietnam time, actions in Vietnamese', async () => {
    await page.click('nav a[href="/users"]');
    await expectNoSidewaysScroll();
    await shoot('6-users');
    await page.click('nav a[href="/audit"]');
    await expectNoSidewaysScroll();
    const audit = await page.locator('#audit tbody').innerText();
    expect(audit).toContain('Chấp thuận đề nghị');
    expect(audit).toMatch(VN_TIME);
    expect(audit).not.toMatch(/\d{4}-\d\d-\d\dT/);
    // The rule the approval made names its school by name.
    expect(audit).toContain('school: TH Trạm Tấu');
    await shoot('7-audit');
  });
});
