import { existsSync } from 'node:fs';
import { describe } from 'vitest';
import { chromium, type Browser } from 'playwright-core';

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
