import { existsSync } from 'node:fs';
import { describe } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
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

/** A student's browser: headless Chromium sending everything, loopback names too, through the proxy. */
export function launchBehindProxy(proxyPort: number): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [`--proxy-server=127.0.0.1:${proxyPort}`, '--proxy-bypass-list=<-loopback>', ...QUIET_CHROMIUM_ARGS],
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
