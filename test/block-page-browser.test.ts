import { mkdirSync } from 'node:fs';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import type { Server } from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { curl, describeWithBrowser, launchBehindProxy, REPO_ROOT, type RunningGateway, startGateway, startHttpOrigin } from './harness/index.js';

/**
 * The pages a ten-year-old meets, in Chromium at desktop and phone width, with the
 * school's organisation section in force (Lào Cai after the 2025 merger): screenshots
 * go to test/artifacts/ for a person to look at.
 */

const ARTIFACTS = path.join(REPO_ROOT, 'test/artifacts');
const VIEWPORTS = [
  { name: 'desktop', width: 1280, height: 800 },
  { name: 'phone', width: 390, height: 844 },
] as const;

const POLICY = `version: 1
default_profile: tieu-hoc
organisation:
  school: "Trường Tiểu học Kim Đồng"
  office:
    name: "Sở Giáo dục và Đào tạo tỉnh Lào Cai"
    level: tinh
    place: "Lào Cai"
  hotline:
    number: "0214 3840 111"
    label: "Đường dây nóng bảo vệ trẻ em tỉnh Lào Cai"
profiles:
  tieu-hoc:
    name: "Tiểu học"
    block_categories: [gambling, self-harm]
`;

let origin: { server: Server; port: number };
let silent: NetServer;
let silentPort: number;
let closedPort: number;
let proxy: RunningGateway;
let browser: Browser;

async function open(viewport: (typeof VIEWPORTS)[number], url: string): Promise<{ page: Page; status: number | undefined; text: string }> {
  const page = await browser.newPage({ viewport: { width: viewport.width, height: viewport.height } });
  const response = await page.goto(url);
  return { page, status: response?.status(), text: await page.locator('body').innerText() };
}

/** Nothing sticks out sideways on a phone: the child never scrolls left and right to read. */
async function fitsWidth(page: Page, width: number): Promise<void> {
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(width);
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

describeWithBrowser('the pages a child meets (Chromium, desktop and 390 px)', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    origin = await startHttpOrigin((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!DOCTYPE html><html lang="vi"><title>Bài học</title><h1>Bài học</h1></html>');
    });
    // An origin that accepts and never answers (the timed-out case) and a port nobody listens on (refused).
    silent = createNetServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as { port: number }).port;
    const probe = createNetServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    closedPort = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
    proxy = await startGateway({
      rules: {
        'policy.yaml': POLICY,
        'categories/gambling/domains': 'nhacai.test\n',
        'categories/gambling/keywords': 'cá độ\n',
        'categories/self-harm/domains': 'buon.test\n',
      },
      hosts: '127.0.0.1 hoc.test nhacai.test buon.test www.google.com cham.test tat.test\n',
      args: ['--upstream-timeout', '1'],
    });
    browser = await launchBehindProxy(proxy.port);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await proxy?.stop();
    origin?.server.close();
    silent?.close();
  });

  it('on the wire: a blocked search is a 403 with the category header, and the words searched are not echoed', async () => {
    const result = await curl(proxy.port, `http://www.google.com:${origin.port}/search?q=${encodeURIComponent('cá độ bóng đá')}`);
    expect(result.status).toBe(403);
    expect(result.headers['x-lachan-block']).toBe('gambling');
    expect(result.body).toContain('<html lang="vi">');
    expect(result.body).toContain('<h1>Tìm kiếm này đã bị chặn</h1>');
    expect(result.body).not.toContain('bóng đá');
    expect(result.body).toContain('tel:111');
  });

  for (const viewport of VIEWPORTS) {
    it(`a blocked site, then asking for review (${viewport.name})`, async () => {
      const { page, status, text } = await open(viewport, `http://nhacai.test:${origin.port}/ca-do`);
      expect(status).toBe(403);
      expect(text).toContain('Trang này đã bị chặn');
      expect(text).toContain('nhacai.test');
      expect(text).toContain('Em không làm gì sai cả');
      expect(text).toContain('Cờ bạc');
      expect(text).toContain('Tiểu học');
      for (const jargon of ['Nhóm truy cập', 'Mã tham chiếu', 'mã 403']) expect(text).not.toContain(jargon);
      // The hotlines: 111 always, the province's from the organisation section; no Yên Bái left.
      expect(text).toContain('111');
      expect(text).toContain('Đường dây nóng bảo vệ trẻ em tỉnh Lào Cai');
      expect(text).not.toContain('Yên Bái');
      expect(await page.locator('a[href="tel:02143840111"]').isVisible()).toBe(true);
      expect(text).toContain('Trường Tiểu học Kim Đồng');
      expect(await page.getByRole('link', { name: '← Quay lại trang trước' }).isVisible()).toBe(true);
      expect(text).toContain('Đừng ghi họ tên');
      await fitsWidth(page, viewport.width);
      await shot(page, `child-blocked-site-${viewport.name}`);
      const reference = (await page.locator('dt:has-text("Mã số") + dd').textContent())!;
      expect(reference).toMatch(/^[0-9A-Z]{4}-[0-9A-Z]{4}$/);

      await page.fill('textarea[name=note]', 'Em cần trang này cho bài tập');
      await page.click('button:has-text("Nhờ thầy cô xem lại")');
      await expect(page.locator('h1').textContent()).resolves.toBe('Đã gửi đề nghị xem lại');
      const thanks = await page.locator('body').innerText();
      expect(thanks).toContain(reference);
      expect(thanks).toContain('Điều gì xảy ra tiếp theo?');
      expect(thanks).toContain('Sở Giáo dục và Đào tạo tỉnh Lào Cai');
      await fitsWidth(page, viewport.width);
      await shot(page, `child-review-thanks-${viewport.name}`);
      await page.close();
    });

    it(`a blocked search says the search was blocked (${viewport.name})`, async () => {
      const { page, status, text } = await open(viewport, `http://www.google.com:${origin.port}/search?q=${encodeURIComponent('cá độ bóng đá')}`);
      expect(status).toBe(403);
      expect(text).toContain('Tìm kiếm này đã bị chặn');
      expect(text).not.toContain('Trang này đã bị chặn');
      expect(await page.getByRole('link', { name: 'Tìm bằng từ khác' }).isVisible()).toBe(true);
      await fitsWidth(page, viewport.width);
      await shot(page, `child-blocked-search-${viewport.name}`);
      await page.close();
    });

    it(`self-harm puts the hotlines first, in kind words (${viewport.name})`, async () => {
      const { page, status, text } = await open(viewport, `http://buon.test:${origin.port}/`);
      expect(status).toBe(403);
      expect(text).toContain('Em không một mình');
      expect(text.indexOf('111')).toBeLessThan(text.indexOf('buon.test'));
      // The first call button is on screen without scrolling, even on a phone.
      expect(
        await page
          .locator('a[href="tel:111"]')
          .boundingBox()
          .then((box) => box !== null && box.y + box.height <= viewport.height),
      ).toBe(true);
      await fitsWidth(page, viewport.width);
      await shot(page, `child-self-harm-${viewport.name}`);
      await page.close();
    });

    it(`the report form offers only harms a child recognises (${viewport.name})`, async () => {
      const { page, status, text } = await open(viewport, `http://hoc.test:${origin.port}/__lachan__/report`);
      expect(status).toBe(200);
      expect(text).toContain('Báo một trang xấu');
      const options = await page.locator('select[name=category] option').allTextContents();
      expect(options).toContain('Bạo lực, đánh nhau, hình ảnh đáng sợ');
      for (const jargon of ['VPN', 'DNS', 'DoH', 'Mạng xã hội']) expect(options.join('|')).not.toContain(jargon);
      expect(text).toContain('Đừng ghi họ tên');
      await fitsWidth(page, viewport.width);
      await shot(page, `child-report-form-${viewport.name}`);
      await page.close();
    });

    it(`a site that refuses and one that does not answer get different words (${viewport.name})`, async () => {
      const refused = await open(viewport, `http://tat.test:${closedPort}/`);
      expect(refused.status).toBe(502);
      expect(refused.text).toContain('Trang web đang tắt');
      expect(refused.text).not.toContain('chậm');
      await shot(refused.page, `child-refused-${viewport.name}`);
      await refused.page.close();
      const slow = await open(viewport, `http://cham.test:${silentPort}/`);
      expect(slow.status).toBe(504);
      expect(slow.text).toContain('Trang web trả lời quá chậm');
      expect(slow.text).not.toContain('đang tắt');
      await fitsWidth(slow.page, viewport.width);
      await shot(slow.page, `child-timeout-${viewport.name}`);
      await slow.page.close();
    });
  }
});
