import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { startOrigin, startProxy, type RunningProxy } from './support/proxy.js';
import { REPO_ROOT } from './support/rules-dir.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'test/artifacts');

// .ci/run installs Debian's chromium; a developer machine without it skips, loudly.
const describeWithBrowser = existsSync(CHROMIUM) ? describe : describe.skip;

let origin: { server: Server; port: number };
let proxy: RunningProxy;
let browser: Browser;

describeWithBrowser('a student browser (headless Chromium) behind the proxy', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    origin = await startOrigin((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!DOCTYPE html><html lang="vi"><title>Bài học</title><h1>Bài học hôm nay: phân số</h1></html>');
    });
    proxy = await startProxy({
      rules: {
        'policy.yaml': 'version: 1\ndefault_profile: tieu-hoc\nprofiles:\n  tieu-hoc:\n    name: "Tiểu học"\n    block_categories: [gambling]\n',
        'categories/gambling/domains': 'nhacai.test\n',
      },
      hosts: '127.0.0.1 hoc.test nhacai.test\n',
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        `--proxy-server=127.0.0.1:${proxy.port}`,
        '--proxy-bypass-list=<-loopback>',
        '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ],
    });
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
});
