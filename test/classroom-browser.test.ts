import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  addGatewayUser,
  curl,
  describeWithBrowser,
  launchBehindProxy,
  makeRulesDir,
  type Origin,
  policyYaml,
  REPO_ROOT,
  type RunningGateway,
  STAFF_PASSWORD,
  startGateway,
  startHttpOrigin,
} from './harness/index.js';

/**
 * A teacher using the staff page in Chromium, at desktop and phone width: sign in,
 * open a blocked site for a class with the page's own form, see it in force, end it.
 * The browser's device (127.0.0.1) is given the staff profile. Screenshots go to
 * test/artifacts/.
 */

const ARTIFACTS = path.join(REPO_ROOT, 'test/artifacts');

let origin: Origin;
let gateway: RunningGateway;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  origin = await startHttpOrigin((_req, res) => res.end('ok'));
  const rulesDir = makeRulesDir({
    'policy.yaml': policyYaml({
      defaultProfile: 'thcs',
      profiles: { thcs: { name: 'Trung học cơ sở', blockCategories: ['games'] }, 'giao-vien': { name: 'Giáo viên' } },
      clients: [{ cidr: '127.0.0.1/32', profile: 'giao-vien' }],
      extra: 'proxy_auth:\n  users_file: users\n  profiles:\n    cogiao: giao-vien\n',
    }),
    'categories/games/domains': 'game.test\n',
  });
  addGatewayUser(rulesDir, 'cogiao', STAFF_PASSWORD);
  gateway = await startGateway({ rulesDir, hosts: '127.0.0.1 game.test\n' });
  browser = await launchBehindProxy(gateway.port);
});

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
  await origin?.close();
});

describeWithBrowser('the staff page in Chromium', () => {
  it('signs a teacher in, opens a site for a class with its form, and ends it', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await page.goto(`http://127.0.0.1:${gateway.port}/__lachan__/lop-hoc`);
    await page.getByLabel('Tên tài khoản').fill('cogiao');
    await page.getByLabel('Mật khẩu').fill(STAFF_PASSWORD);
    await page.getByRole('button', { name: 'Đăng nhập' }).click();
    await expect.poll(() => page.locator('h1').innerText()).toContain('giờ kiểm tra và mở trang');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.screenshot({ path: path.join(ARTIFACTS, 'classroom-staff-phone.png'), fullPage: true });

    const student = `http://game.test:${origin.port}/`;
    const from = '127.0.0.2';
    expect((await curl(gateway.port, student, { from })).status).toBe(403);
    await page.getByLabel('Trang web').fill('game.test');
    await page.getByLabel('Cho nhóm học sinh').selectOption('thcs');
    await page.getByLabel('Lý do (bắt buộc)').fill('Tiết Tin học: lập trình trò chơi');
    await page.getByRole('button', { name: 'Mở trang' }).click();
    await expect.poll(() => page.locator('body').innerText()).toContain('Đã mở game.test');
    expect(await page.locator('body').innerText()).toContain('game.test cho nhóm Trung học cơ sở');
    expect((await curl(gateway.port, student, { from })).status).toBe(200);
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'classroom-staff-desktop.png'), fullPage: true });

    await page.getByRole('button', { name: 'Đóng lại' }).click();
    await expect.poll(() => page.locator('body').innerText()).toContain('Đã kết thúc');
    expect((await curl(gateway.port, student, { from })).status).toBe(403);
    await page.close();
  });
});
