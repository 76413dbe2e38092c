import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { PASSWORD } from './dashboard.js';

/** Debian's chromium, which .ci/run installs; a developer machine without it skips, loudly. */
export const CHROMIUM = '/usr/bin/chromium';
/** In CI (which installs chromium) a missing browser fails the tests instead of skipping them. */
export const describeWithBrowser = existsSync(CHROMIUM) || process.env.CI !== undefined ? describe : describe.skip;

/** Headless Chromium for tests: no sandbox, GPU, QUIC or background traffic of its own. */
export const QUIET_CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface BehindProxyOptions {
  /**
   * Send loopback addresses through the proxy too (default). Off, Chromium reaches
   * 127.0.0.1 directly, as a school's browser reaches the gateway's own pages and the
   * district's collector.
   */
  readonly loopbackViaProxy?: boolean;
}

function proxyArgs(proxyPort: number, options: BehindProxyOptions): string[] {
  return [`--proxy-server=127.0.0.1:${proxyPort}`, ...(options.loopbackViaProxy === false ? [] : ['--proxy-bypass-list=<-loopback>'])];
}

/** A student's browser: headless Chromium sending everything, loopback names too unless told, through the proxy. */
export function launchBehindProxy(proxyPort: number, options: BehindProxyOptions = {}): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: [...proxyArgs(proxyPort, options), ...QUIET_CHROMIUM_ARGS] });
}

/**
 * A phone that installed the school CA in `certsDir` (trusted by its public key), behind
 * the proxy; loopback reached directly. Chromium honours the SPKI list only with a profile
 * folder of its own, hence a persistent context in a fresh folder.
 */
export async function launchTrustingSchoolCa(proxyPort: number, certsDir: string): Promise<BrowserContext> {
  const spki = new X509Certificate(readFileSync(path.join(certsDir, 'ca.crt'))).publicKey.export({ type: 'spki', format: 'der' });
  const spkiHash = createHash('sha256').update(spki).digest('base64');
  return chromium.launchPersistentContext(mkdtempSync(path.join(tmpdir(), 'lachan-chromium-')), {
    executablePath: CHROMIUM,
    viewport: { width: 390, height: 844 },
    args: [...proxyArgs(proxyPort, { loopbackViaProxy: false }), `--ignore-certificate-errors-spki-list=${spkiHash}`, ...QUIET_CHROMIUM_ARGS],
  });
}

/** A browser with no proxy: district staff on the collector's dashboard. */
export function launchDirect(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: [...QUIET_CHROMIUM_ARGS] });
}

/** A fresh context (Vietnamese, a laptop's screen) signed in to the dashboard at `url` as `name`. */
export async function signedInPage(browser: Browser, url: string, name: string, password = PASSWORD): Promise<Page> {
  const page = await (await browser.newContext({ locale: 'vi-VN', viewport: { width: 1280, height: 900 } })).newPage();
  await page.goto(`${url}/login`);
  await page.fill('input[name=name]', name);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.waitForLoadState();
  return page;
}
