import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  addUser,
  type Collector,
  curl,
  districtGatewayArgs,
  describeWithBrowser,
  enrolSchool,
  lachan,
  launchBehindProxy,
  PASSWORD,
  REPO_ROOT,
  type RunningGateway,
  startCollector,
  startGateway,
  startHttpOrigin,
  stopCollector,
} from './harness/index.js';

// The review loop whole, with real processes: a student's browser behind a real gateway
// asks for a review on the block page; the request reaches the real collector; an
// administrator approves it in the dashboard; within a poll interval the gateway, having
// verified the newly signed policy, lets the page through for that profile.
const ARTIFACTS = path.join(REPO_ROOT, 'test/artifacts');
const POLL_SECONDS = 1;

const work = mkdtempSync(path.join(tmpdir(), 'lachan-review-loop-'));
const centralData = path.join(work, 'central');
let collector: Collector;
let gateway: RunningGateway;
let origin: Awaited<ReturnType<typeof startHttpOrigin>>;
let browser: Browser;
let student: Page;
let admin: Page;

const lessonUrl = () => `http://hoc-toan.test:${origin.port}/bai-tap/phan-so`;

async function eventually<T>(probe: () => Promise<T | null>, what: string, tries = 60): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const value = await probe();
    if (value !== null) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not seen within ${tries / 4} s`);
}

describeWithBrowser('from the block page to the district and back', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const school = enrolSchool(centralData, work, 'TH Trạm Tấu');
    addUser(centralData, 'quantri', 'admin');
    collector = await startCollector(centralData);
    origin = await startHttpOrigin((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!DOCTYPE html><html lang="vi"><title>Toán lớp 4</title><h1>Bài tập phân số</h1></html>');
    });
    gateway = await startGateway({
      rules: {
        'policy.yaml':
          'version: 1\ndefault_profile: tieu-hoc\nprofiles:\n  tieu-hoc:\n    name: "Tiểu học"\n    block_categories: [games]\n  thcs:\n    name: "Trung học cơ sở"\n    block_categories: [games]\n',
        // A maths site caught by a broad games list: the kind of block a teacher asks to lift.
        'categories/games/domains': 'hoc-toan.test\n',
      },
      hosts: '127.0.0.1 hoc-toan.test\n',
      args: districtGatewayArgs(collector.url, school, POLL_SECONDS),
    });
    // Student pages go through the gateway; the collector on 127.0.0.1 is reached directly.
    browser = await launchBehindProxy(gateway.port, { loopbackViaProxy: false });
    student = await (await browser.newContext({ locale: 'vi-VN' })).newPage();
    admin = await (await browser.newContext({ locale: 'vi-VN', viewport: { width: 1400, height: 900 } })).newPage();
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await gateway?.stop();
    if (collector) await stopCollector(collector);
    origin?.server.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('a student asks for a review from the block page', async () => {
    const blocked = await student.goto(lessonUrl());
    expect(blocked?.status()).toBe(403);
    await expect(student.locator('h1').textContent()).resolves.toBe('Trang này đã bị chặn');
    await student.fill('textarea[name=note]', 'Cô giáo giao bài tập trên trang này');
    await student.screenshot({ path: path.join(ARTIFACTS, 'review-loop-1-block-page.png'), fullPage: true });
    await student.click('button:has-text("Nhờ thầy cô xem lại")');
    await expect(student.locator('h1').textContent()).resolves.toBe('Đã gửi đề nghị xem lại');
  });

  it('the request appears in the district review queue', async () => {
    await admin.goto(`${collector.url}/login`);
    await admin.fill('input[name=name]', 'quantri');
    await admin.fill('input[name=password]', PASSWORD);
    await admin.click('button[type=submit]');
    await admin.waitForURL(`${collector.url}/`);
    const row = await eventually(async () => {
      await admin.goto(`${collector.url}/reviews`);
      const found = admin.locator('tr[data-host="hoc-toan.test"]');
      return (await found.count()) === 1 ? found : null;
    }, 'the review request in the queue');
    const text = await row.innerText();
    expect(text).toContain('Cô giáo giao bài tập trên trang này');
    expect(text).toContain('Tiểu học');
    expect(text).toContain('Trò chơi trực tuyến');
    await admin.screenshot({ path: path.join(ARTIFACTS, 'review-loop-2-queue.png'), fullPage: true });
  });

  it('an administrator approves it for the profile, and the gateway lets the page through within a poll interval', async () => {
    const row = admin.locator('tr[data-host="hoc-toan.test"]');
    await row.locator('form.approve select[name=profile]').selectOption('tieu-hoc');
    await row.locator('form.approve select[name=scope]').selectOption('school');
    await row.locator('form.approve button').click();
    await admin.waitForURL(/\/reviews\?done=approved$/);
    await expect(admin.locator('.notice').textContent()).resolves.toContain('Đã chấp thuận');
    await admin.screenshot({ path: path.join(ARTIFACTS, 'review-loop-3-approved.png'), fullPage: true });

    // The gateway polls every POLL_SECONDS; the bound of eventually() leaves slack for a busy machine.
    const response = await eventually(async () => {
      const attempt = await student.goto(lessonUrl());
      return attempt?.status() === 200 ? attempt : null;
    }, 'the page let through');
    expect(response.status()).toBe(200);
    await expect(student.locator('h1').textContent()).resolves.toBe('Bài tập phân số');
    await student.screenshot({ path: path.join(ARTIFACTS, 'review-loop-4-allowed.png') });

    // For that profile only: a lower-secondary device (by proxy auth it would be thcs) is still blocked.
    const check = JSON.parse(lachan(['check', '--rules', gateway.rulesDir, '--data', gateway.dataDir, '--profile', 'thcs', '--json', lessonUrl()]).stdout) as {
      action: string;
    };
    expect(check.action).toBe('block');
    const allowed = JSON.parse(
      lachan(['check', '--rules', gateway.rulesDir, '--data', gateway.dataDir, '--profile', 'tieu-hoc', '--json', lessonUrl()]).stdout,
    ) as { action: string; source: string };
    expect(allowed.action).toBe('allow');
    expect(allowed.source).toMatch(/^district-overlay:v1:/);
    expect((await curl(gateway.port, lessonUrl())).status).toBe(200);
  });
});
