/**
 * Content inspection as a child and a teacher see it in Chromium (docs/contract.md §8):
 * a betting page served on plain HTTP and on HTTPS (intercepted with the school CA)
 * is replaced by the block page, naming the category, for `tieu-hoc`, and reaches a
 * teacher (`giao-vien`, no content_limit) as the origin sent it.
 *
 * The teacher is told apart by address, as in a school: her browser reaches the
 * gateway through a TCP relay whose connections leave from 127.0.0.3.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chromium, type BrowserContext } from 'playwright-core';
import {
  CHROMIUM,
  QUIET_CHROMIUM_ARGS,
  REPO_ROOT,
  TEACHER_ADDRESS,
  contentPolicy,
  describeWithBrowser,
  fixture,
  lachan,
  type Origin,
  type RunningGateway,
  startGateway,
  startHttpOrigin,
  startHttpsOrigin,
} from './harness/index.js';

const ARTIFACTS = path.join(REPO_ROOT, 'test/artifacts');
const HARMFUL = Buffer.from(fixture('vi-gambling-site.html'));
/** Words of the betting page itself, which only a reader of the page would see. */
const PAGE_WORDS = 'Link vào nhà cái mới nhất';

let origin: Origin;
let tlsOrigin: Origin & { caPem: string };
let proxy: RunningGateway;
let relay: Server;
let student: BrowserContext;
let teacher: BrowserContext;

/** Chromium through `proxyPort`, trusting the school CA (by its key) in a profile folder of its own. */
function trustingBrowser(proxyPort: number, caFile: string): Promise<BrowserContext> {
  const spki = new X509Certificate(readFileSync(caFile)).publicKey.export({ type: 'spki', format: 'der' });
  return chromium.launchPersistentContext(mkdtempSync(path.join(tmpdir(), 'lachan-chromium-')), {
    executablePath: CHROMIUM,
    locale: 'vi-VN',
    viewport: { width: 1280, height: 800 },
    args: [
      `--proxy-server=127.0.0.1:${proxyPort}`,
      '--proxy-bypass-list=<-loopback>',
      `--ignore-certificate-errors-spki-list=${createHash('sha256').update(spki).digest('base64')}`,
      ...QUIET_CHROMIUM_ARGS,
    ],
  });
}

/** A relay to the gateway whose outgoing connections come from `address`. */
async function relayFrom(address: string, port: number): Promise<Server> {
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port, localAddress: address });
    client.pipe(upstream).pipe(client);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function visit(context: BrowserContext, url: string, screenshot: string): Promise<{ status: number | undefined; title: string; text: string }> {
  const page = await context.newPage();
  try {
    const response = await page.goto(url);
    const text = await page.locator('body').innerText();
    await page.screenshot({ path: path.join(ARTIFACTS, `${screenshot}.png`), fullPage: true });
    return { status: response?.status(), title: await page.title(), text };
  } finally {
    await page.close();
  }
}

describeWithBrowser('pages read on their way, in Chromium (docs/contract.md §8)', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const serve = (_req: unknown, res: import('node:http').ServerResponse): void =>
      void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': HARMFUL.length }).end(HARMFUL);
    origin = await startHttpOrigin(serve);
    tlsOrigin = await startHttpsOrigin('hoc.test', serve);
    const work = mkdtempSync(path.join(tmpdir(), 'lachan-content-browser-'));
    const certs = path.join(work, 'certs');
    expect(lachan(['ca', 'init', '--certs', certs, '--name', 'Tiểu học Kiểm thử']).code).toBe(0);
    const originCa = path.join(work, 'origin-ca.pem');
    writeFileSync(originCa, tlsOrigin.caPem);
    proxy = await startGateway({
      rules: {
        'policy.yaml': contentPolicy(tlsOrigin.port),
        'categories/gambling/phrases': readFileSync(path.join(REPO_ROOT, 'rules/categories/gambling/phrases'), 'utf8'),
        'categories/adult/phrases': readFileSync(path.join(REPO_ROOT, 'rules/categories/adult/phrases'), 'utf8'),
      },
      hosts: '127.0.0.1 trang.test hoc.test\n',
      args: ['--certs', certs],
      env: { NODE_EXTRA_CA_CERTS: originCa },
    });
    relay = await relayFrom(TEACHER_ADDRESS, proxy.port);
    student = await trustingBrowser(proxy.port, path.join(certs, 'ca.crt'));
    teacher = await trustingBrowser((relay.address() as { port: number }).port, path.join(certs, 'ca.crt'));
  }, 90_000);

  afterAll(async () => {
    await student?.close();
    await teacher?.close();
    relay?.close();
    await proxy?.stop();
    await origin?.close();
    await tlsOrigin?.close();
  });

  it('shows a tieu-hoc pupil the block page, naming gambling, for the betting page on HTTP and on HTTPS', async () => {
    for (const [url, name] of [
      [`http://trang.test:${origin.port}/keo-bong-da`, 'content-blocked-http'],
      [`https://hoc.test:${tlsOrigin.port}/keo-bong-da`, 'content-blocked-https'],
    ] as const) {
      const seen = await visit(student, url, name);
      expect(seen.status, url).toBe(403);
      expect(seen.text, url).toContain('Trang này đã bị chặn');
      expect(seen.text, url).toContain('Cờ bạc');
      expect(seen.text, url).not.toContain(PAGE_WORDS);
    }
  });

  it('shows a teacher the same page as the site sent it, on HTTP and on HTTPS', async () => {
    for (const [url, name] of [
      [`http://trang.test:${origin.port}/keo-bong-da`, 'content-teacher-http'],
      [`https://hoc.test:${tlsOrigin.port}/keo-bong-da`, 'content-teacher-https'],
    ] as const) {
      const seen = await visit(teacher, url, name);
      expect(seen.status, url).toBe(200);
      expect(seen.title, url).toBe('Nhà cái uy tín số 1 - Soi kèo bóng đá hôm nay');
      expect(seen.text, url).toContain(PAGE_WORDS);
    }
  });
});
