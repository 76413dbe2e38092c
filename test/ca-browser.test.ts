import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser, BrowserContext } from 'playwright-core';
import { describeWithBrowser, lachan, launchBehindProxy, launchTrustingSchoolCa, REPO_ROOT, type RunningGateway, startGateway } from './harness/index.js';

const ARTIFACTS = path.join(REPO_ROOT, 'test/artifacts');

let proxy: RunningGateway;
let certs: string;
/** A device without the school CA. */
let stranger: Browser;
/** A device that installed it (trusted by its public key in this profile only). */
let trusting: BrowserContext;

describeWithBrowser('the CA install guide in a browser (headless Chromium)', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    certs = path.join(mkdtempSync(path.join(tmpdir(), 'lachan-guide-ca-')), 'certs');
    expect(lachan(['ca', 'init', '--certs', certs, '--name', 'THCS Trạm Tấu']).code).toBe(0);
    proxy = await startGateway({
      rules: { 'policy.yaml': 'version: 1\ndefault_profile: thcs\nprofiles:\n  thcs:\n    name: "THCS"\n    inspect: true\n' },
      args: ['--certs', certs],
    });
    stranger = await launchBehindProxy(proxy.port, { loopbackViaProxy: false });
    trusting = await launchTrustingSchoolCa(proxy.port, certs);
  }, 90_000);

  afterAll(async () => {
    await trusting?.close();
    await stranger?.close();
    await proxy?.stop();
  });

  it('tells a device without the CA that it does not trust it yet, with the steps (desktop)', async () => {
    const page = await stranger.newPage({ viewport: { width: 1280, height: 900 } });
    const response = await page.goto(`http://127.0.0.1:${proxy.port}/ca/huong-dan`);
    expect(response?.status()).toBe(200);
    await expect(page.locator('html').getAttribute('lang')).resolves.toBe('vi');
    await page.waitForFunction(() => document.querySelector('.state')?.textContent?.startsWith('✗'));
    expect(await page.locator('.state').innerText()).toContain('chưa tin cậy');
    // The download button serves the DER certificate.
    const download = await page.request.get(`http://127.0.0.1:${proxy.port}/ca`);
    expect(download.headers()['content-type']).toBe('application/x-x509-ca-cert');
    await page.locator('summary', { hasText: 'Android' }).click();
    await expect(page.locator('li', { hasText: 'Firefox trên Android' }).isVisible()).resolves.toBe(true);
    await page.screenshot({ path: path.join(ARTIFACTS, 'ca-guide-desktop.png'), fullPage: true });
    await page.close();
  });

  it('confirms a device that trusts the CA, and the gateway learns it (390 px)', async () => {
    const page = await trusting.newPage();
    await page.goto(`http://127.0.0.1:${proxy.port}/ca/huong-dan`);
    await page.waitForFunction(() => document.querySelector('.state')?.textContent?.startsWith('✓'));
    expect(await page.locator('.state').innerText()).toContain('đã tin cậy');
    // Nothing wider than the phone's screen.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.locator('summary', { hasText: 'Linux' }).click();
    await page.screenshot({ path: path.join(ARTIFACTS, 'ca-guide-390.png'), fullPage: true });
    await page.close();
    let status = '';
    for (let attempt = 0; attempt < 50 && !status.includes('"trusted":["127.0.0.1"]'); attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      status = lachan(['ca', 'status', '--rules', proxy.rulesDir, '--data', proxy.dataDir, '--certs', certs, '--json']).stdout;
    }
    expect(status).toContain('"trusted":["127.0.0.1"]');
  });
});
