import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Server } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Browser } from 'playwright-core';
import {
  describeWithBrowser,
  lachan,
  launchBehindProxy,
  launchTrustingSchoolCa,
  REPO_ROOT,
  type RunningGateway,
  startGateway,
  startHttpOrigin,
} from './harness/index.js';

const ARTIFACTS = path.join(REPO_ROOT, 'test/artifacts');

let origin: { server: Server; port: number };
let proxy: RunningGateway;
let browser: Browser;

describeWithBrowser('a student browser (headless Chromium) behind the proxy', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    origin = await startHttpOrigin((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!DOCTYPE html><html lang="vi"><title>Bài học</title><h1>Bài học hôm nay: phân số</h1></html>');
    });
    proxy = await startGateway({
      rules: {
        'policy.yaml': 'version: 1\ndefault_profile: tieu-hoc\nprofiles:\n  tieu-hoc:\n    name: "Tiểu học"\n    block_categories: [gambling]\n',
        'categories/gambling/domains': 'nhacai.test\n',
      },
      hosts: '127.0.0.1 hoc.test nhacai.test\n',
    });
    browser = await launchBehindProxy(proxy.port);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await proxy?.stop();
    origin?.server.close();
  });

  it('loads an allowed page', async () => {
    const page = await browser.newPage();
    const response = await page.goto(`http://hoc.test:${origin.port}/`);
    expect(response?.status()).toBe(200);
    await expect(page.locator('h1').textContent()).resolves.toBe('Bài học hôm nay: phân số');
    await page.screenshot({ path: path.join(ARTIFACTS, 'browser-allowed.png') });
    await page.close();
  });

  it('shows the Vietnamese block page for a gambling site', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    const response = await page.goto(`http://nhacai.test:${origin.port}/ca-do`);
    expect(response?.status()).toBe(403);
    const text = await page.locator('body').innerText();
    expect(text).toContain('Trang này đã bị chặn');
    expect(text).toContain('nhacai.test');
    expect(text).toContain('Cờ bạc');
    expect(text).toContain('111');
    expect(text).toContain('1800 1776');
    await page.screenshot({ path: path.join(ARTIFACTS, 'browser-blocked.png'), fullPage: true });
    // The review button works from the rendered page.
    await page.fill('textarea[name=note]', 'Em cần trang này cho bài tập');
    await page.click('button[type=submit]');
    await expect(page.locator('h1').textContent()).resolves.toBe('Đã gửi đề nghị xem lại');
    await page.close();
  });

  it('shows the block page for a blocked HTTPS site, over TLS from the school CA', async () => {
    const certs = path.join(mkdtempSync(path.join(tmpdir(), 'lachan-browser-ca-')), 'certs');
    expect(lachan(['ca', 'init', '--certs', certs, '--name', 'TH Thử nghiệm']).code).toBe(0);
    const intercepting = await startGateway({
      rules: {
        'policy.yaml':
          'version: 1\ndefault_profile: tieu-hoc\nprofiles:\n  tieu-hoc:\n    name: "Tiểu học"\n    block_categories: [gambling]\nintercept: always\n',
        'categories/gambling/domains': 'nhacai.test\n',
      },
      hosts: '127.0.0.1 nhacai.test\n',
      args: ['--certs', certs],
    });
    // Trust the school CA in this fresh browser profile only, by its public key hash.
    const trusting = await launchTrustingSchoolCa(intercepting.port, certs);
    try {
      const page = await trusting.newPage();
      const response = await page.goto('https://nhacai.test/ca-do-bong-da');
      expect(response?.status()).toBe(403);
      expect(page.url()).toBe('https://nhacai.test/ca-do-bong-da');
      const text = await page.locator('body').innerText();
      expect(text).toContain('Trang này đã bị chặn');
      expect(text).toContain('nhacai.test');
      expect(text).toContain('111');
      const security = await response?.securityDetails();
      expect(security?.subjectName).toBe('nhacai.test');
      await page.screenshot({ path: path.join(ARTIFACTS, 'browser-blocked-https.png'), fullPage: true });
    } finally {
      await trusting.close();
      await intercepting.stop();
    }
  });
});
