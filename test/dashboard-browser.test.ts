import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addSchool, addUser, type Collector, ingest, PASSWORD, REPO_ROOT, startCollector, stopCollector, wireEvent } from './harness/index.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'test/artifacts');
const DAY = 86_400_000;

// .ci/run installs Debian's chromium; a developer machine without it skips, loudly.
const describeWithBrowser = existsSync(CHROMIUM) ? describe : describe.skip;

const dataDir = mkdtempSync(path.join(tmpdir(), 'lachan-dash-browser-'));
let collector: Collector;
let browser: Browser;
let page: Page;

describeWithBrowser('the district dashboard in headless Chromium', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const tramTau = addSchool(dataDir, 'TH Trạm Tấu');
    addSchool(dataDir, 'THCS Mù Cang Chải'); // never calls in: a silent gateway
    addUser(dataDir, 'quantri', 'admin');
    collector = await startCollector(dataDir);
    // Just after a Vietnam midnight, step back so each batch stays within one Vietnam day.
    const sinceMidnight = (Date.now() + 7 * 3_600_000) % DAY;
    const now = Date.now() - (sinceMidnight < 120_000 ? 120_000 : 0);
    // 60 gambling blocks spread over three days, 5 games blocks today, 1 adult block yesterday.
    const events = [
      ...Array.from({ length: 60 }, (_, i) => wireEvent({ time: now - (i % 3) * DAY - i * 1000, path: `/cờ-bạc/${i}` })),
      ...Array.from({ length: 5 }, (_, i) =>
        wireEvent({
          time: now - i * 1000,
          category: 'games',
          host: 'game.example',
          rule: 'game.example',
          source: 'rules/categories/games/domains:7',
          profile: 'thcs',
        }),
      ),
      wireEvent({ time: now - DAY, category: 'adult', host: 'nguoilon.example', rule: 'nguoilon.example', source: 'rules/categories/adult/domains:42' }),
    ];
    await ingest(collector.url, tramTau, events);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    const context = await browser.newContext({ acceptDownloads: true, locale: 'vi-VN', viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    if (collector) await stopCollector(collector);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('sends an anonymous visitor to the Vietnamese login page, and logs in', async () => {
    await page.goto(`${collector.url}/`);
    expect(new URL(page.url()).pathname).toBe('/login');
    expect(await page.locator('html').getAttribute('lang')).toBe('vi');
    await page.fill('input[name=name]', 'quantri');
    await page.fill('input[name=password]', 'sai-mat-khau-roi');
    await page.click('button[type=submit]');
    await expect(page.locator('.error').textContent()).resolves.toContain('Sai tên đăng nhập hoặc mật khẩu');
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL(`${collector.url}/`);
    await expect(page.locator('h1').textContent()).resolves.toBe('Tổng quan');
  });

  it('charts the blocks per category per day from what was ingested', async () => {
    await page.waitForSelector('#chart svg g[data-category]');
    const series = await page.$$eval('#chart svg g[data-category]', (groups) =>
      groups.map((g) => ({
        category: g.getAttribute('data-category'),
        total: Number(g.getAttribute('data-total')),
        dots: g.querySelectorAll('circle').length,
      })),
    );
    expect(series).toEqual([
      { category: 'adult', total: 1, dots: 1 },
      { category: 'gambling', total: 60, dots: 3 },
      { category: 'games', total: 5, dots: 1 },
    ]);
    await expect(page.locator('#legend').innerText()).resolves.toContain('Cờ bạc, cá độ (60)');
    // Blocks per school, and the school whose gateway never called in.
    await page.waitForSelector('#by-school tbody tr');
    await expect(page.locator('#by-school tbody').innerText()).resolves.toContain('TH Trạm Tấu\t66');
    await page.waitForSelector('#silent li');
    await expect(page.locator('#silent').innerText()).resolves.toContain('THCS Mù Cang Chải — chưa từng liên lạc');
    await expect(page.locator('#silent').innerText()).resolves.not.toContain('Trạm Tấu');
    // Top hosts per category name the rule and the file:line that blocked them.
    await page.waitForSelector('#top-hosts table[data-category=adult]');
    await expect(page.locator('#top-hosts table[data-category=adult]').innerText()).resolves.toContain(
      'nguoilon.example\t1\tnguoilon.example\trules/categories/adult/domains:42',
    );
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-overview.png'), fullPage: true });
  });

  it('filters and pages the log explorer', async () => {
    await page.click('nav a[href="/logs"]');
    await page.waitForSelector('#events tbody tr');
    expect(await page.locator('#events tbody tr').count()).toBe(50);
    await page.click('#more');
    await page.waitForFunction(() => document.querySelectorAll('#events tbody tr').length === 66);
    await expect(page.locator('#count').innerText()).resolves.toContain('66');
    await page.selectOption('select[name=category]', { label: 'Trò chơi trực tuyến' });
    await page.click('#filters button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('#events tbody tr').length === 5);
    const hosts = await page.$$eval('#events tbody tr td:nth-child(5)', (cells) => cells.map((c) => c.textContent));
    expect(hosts).toEqual(Array(5).fill('game.example'));
    const schools = await page.$$eval('#events tbody tr td:nth-child(2)', (cells) => cells.map((c) => c.textContent));
    expect(schools).toEqual(Array(5).fill('TH Trạm Tấu'));
    // The silent school has nothing to show.
    await page.selectOption('select[name=school]', { label: 'THCS Mù Cang Chải' });
    await page.click('#filters button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('#events tbody tr').length === 0);
    await expect(page.locator('#count').innerText()).resolves.toContain('0 sự kiện');
    await page.selectOption('select[name=school]', { label: 'TH Trạm Tấu' });
    await page.click('#filters button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('#events tbody tr').length === 5);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-logs.png'), fullPage: true });
  });

  it('exports the filtered events as CSV that Excel reads as UTF-8', async () => {
    await page.selectOption('select[name=category]', { label: 'Cờ bạc, cá độ' });
    await page.click('#filters button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#events tbody td:nth-child(4)')?.textContent === 'Cờ bạc, cá độ');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
    const file = path.join(ARTIFACTS, 'dashboard-export.csv');
    await download.saveAs(file);
    const bytes = readFileSync(file);
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const lines = bytes.toString('utf8').slice(1).trimEnd().split('\r\n');
    expect(lines[0]).toBe('time (Asia/Ho_Chi_Minh),school,profile,category,reason,rule,source,host,path,method,client');
    // Vietnam time, as on the pages: dd/mm/yyyy HH:mm:ss.
    expect(lines.slice(1).every((l) => /^\d\d\/\d\d\/\d{4} \d\d:\d\d:\d\d,/.test(l))).toBe(true);
    expect(lines).toHaveLength(61);
    expect(lines.slice(1).every((l) => l.includes(',gambling,'))).toBe(true);
    expect(lines.some((l) => l.includes('/cờ-bạc/0,'))).toBe(true);

    // A time range (Vietnam wall-clock) narrows both the table and the export: up to 12 hours ago
    // leaves the 40 gambling blocks of the two previous days.
    const twelveHoursAgo = new Date(Date.now() + 7 * 3_600_000 - 12 * 3_600_000).toISOString().slice(0, 16);
    await page.fill('input[name=to]', twelveHoursAgo);
    await page.click('#filters button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('#events tbody tr').length === 40);
    const [narrowed] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
    const narrowedFile = path.join(ARTIFACTS, 'dashboard-export-range.csv');
    await narrowed.saveAs(narrowedFile);
    const rows = readFileSync(narrowedFile, 'utf8').trimEnd().split('\r\n').slice(1);
    expect(rows).toHaveLength(40);
    // dd/mm/yyyy HH:mm:ss in UTC+7 back to an instant.
    const instant = (text: string) => {
      const [, d, m, y, hms] = /^(\d\d)\/(\d\d)\/(\d{4}) (\d\d:\d\d:\d\d)/.exec(text)!;
      return Date.parse(`${y}-${m}-${d}T${hms}+07:00`);
    };
    expect(rows.every((r) => instant(r) < Date.now() - 12 * 3_600_000)).toBe(true);
  });

  it('adds a school-it account from the users page, which the audit page then lists', async () => {
    await page.click('nav a[href="/users"]');
    await page.fill('#add-user input[name=name]', 'cntt-tram-tau');
    await page.selectOption('#add-user select[name=role]', 'school-it');
    await page.fill('#add-user input[name=password]', 'ngắn');
    await page.click('#add-user button[type=submit]');
    // The browser refuses a password under 10 characters before sending; the server would too.
    await page.fill('#add-user input[name=password]', PASSWORD);
    await page.click('#add-user button[type=submit]');
    await page.waitForSelector('#add-user-result.error');
    await expect(page.locator('#add-user-result').textContent()).resolves.toContain('school-it user needs a school');
    await page.selectOption('#add-user select[name=school]', { index: 1 });
    await page.click('#add-user button[type=submit]');
    await page.waitForSelector('#users td:text-is("cntt-tram-tau")');
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-users.png'), fullPage: true });
    await page.click('nav a[href="/audit"]');
    const audit = await page.locator('#audit').innerText();
    expect(audit).toContain('user:cntt-tram-tau');
    expect(audit).toContain('quantri');
    expect(audit).not.toContain(PASSWORD);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-audit.png'), fullPage: true });
  });

  it('logs out', async () => {
    await page.click('header form button[type=submit]');
    await page.waitForURL(`${collector.url}/login`);
    await page.goto(`${collector.url}/logs`);
    expect(new URL(page.url()).pathname).toBe('/login');
  });
});
