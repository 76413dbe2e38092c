import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, lachan, type RunningGateway, startGateway, startHttpOrigin } from './harness/index.js';

// A stand-in for the collector's GET /api/v1/policy, so that the test can publish what
// the real one never would: tampered, unsigned, foreign-signed, another school's, older.
// (test/district-review-browser.test.ts runs the real collector end to end.)
const collectorKeys = generateKeyPairSync('ed25519');
const strangerKeys = generateKeyPairSync('ed25519');
let served: { body: Buffer; signature: string | null; etag: string } = { body: Buffer.from('{}'), signature: null, etag: '"0"' };
let notModified = 0;

function publish(overlay: object, signer: typeof collectorKeys.privateKey | null = collectorKeys.privateKey, tamper = false): void {
  const body = Buffer.from(JSON.stringify(overlay));
  const signature = signer === null ? null : sign(null, body, signer).toString('base64');
  served = {
    body: tamper ? Buffer.from(body.toString().replace('"block_domains"', '"allow_domains"')) : body,
    signature,
    etag: `"${Date.now()}-${Math.random()}"`,
  };
}

let collector: Server;
let origin: { server: Server; port: number };
let gateway: RunningGateway;

beforeAll(async () => {
  collector = createServer((req, res) => {
    if (req.url === '/api/v1/policy') {
      if (req.headers.authorization !== 'Bearer school-token') return void res.writeHead(401).end();
      if (req.headers['if-none-match'] === served.etag) {
        notModified++;
        return void res.writeHead(304).end();
      }
      const headers: Record<string, string> = { 'content-type': 'application/json', etag: served.etag };
      if (served.signature !== null) headers['x-lachan-signature'] = served.signature;
      return void res.writeHead(200, headers).end(served.body);
    }
    let text = '';
    req.on('data', (c) => (text += c));
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ acked: [], stored: 0, duplicates: 0 })));
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
  const work = mkdtempSync(path.join(tmpdir(), 'lachan-overlay-'));
  writeFileSync(path.join(work, 'token'), 'school-token\n');
  writeFileSync(path.join(work, 'collector.pub'), collectorKeys.publicKey.export({ type: 'spki', format: 'pem' }));
  origin = await startHttpOrigin();
  publish({ version: 1, profiles: {} });
  gateway = await startGateway({
    rules: {
      'policy.yaml': 'version: 1\ndefault_profile: tieu-hoc\nprofiles:\n  tieu-hoc:\n    name: "Tiểu học"\n    block_categories: [gambling]\n',
      'categories/gambling/domains': 'nhacai.test\n',
    },
    hosts: '127.0.0.1 lo-de.test game.test xoso.test\n',
    args: [
      '--central',
      `http://127.0.0.1:${(collector.address() as { port: number }).port}`,
      '--school',
      'th-tram-tau',
      '--token-file',
      path.join(work, 'token'),
      '--central-key',
      path.join(work, 'collector.pub'),
      '--policy-interval',
      '0.3',
    ],
  });
});

afterAll(async () => {
  await gateway?.stop();
  collector?.close();
  origin?.server.close();
});

async function statusOf(host: string): Promise<number> {
  return (await curl(gateway.port, `http://${host}:${origin.port}/`)).status;
}

async function eventually(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 40; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('condition not reached within 10 s');
}

describe('district policy overlay on a gateway', () => {
  it('applies a signed overlay within a poll interval, and lachan check names it', async () => {
    expect(await statusOf('lo-de.test')).toBe(200);
    publish({ version: 2, profiles: { 'tieu-hoc': { block_domains: ['lo-de.test'], block_keywords: ['soi cầu'] } } });
    await eventually(async () => (await statusOf('lo-de.test')) === 403);
    const blocked = await curl(gateway.port, `http://lo-de.test:${origin.port}/`);
    expect(blocked.headers['x-lachan-block']).toBe('district');
    expect((await curl(gateway.port, `http://game.test:${origin.port}/soi-cau-hom-nay`)).status).toBe(403);
    const check = JSON.parse(
      lachan(['check', '--profile', 'tieu-hoc', '--rules', gateway.rulesDir, '--data', gateway.dataDir, '--json', 'http://lo-de.test/']).stdout,
    );
    expect(check).toMatchObject({ action: 'block', category: 'district', source: 'district-overlay:v2:1' });
  });

  it('asks with the ETag, so an unchanged policy costs a 304', async () => {
    const before = notModified;
    await new Promise((r) => setTimeout(r, 1000));
    expect(notModified).toBeGreaterThan(before);
    // v1 at start, v2 once: unchanged answers apply nothing.
    expect(gateway.logs.filter((l) => l.msg === 'district policy overlay applied').map((l) => l.version)).toEqual([1, 2]);
  });

  it('refuses a tampered, an unsigned or a foreign-signed overlay and keeps the last good one', async () => {
    publish({ version: 3, profiles: { 'tieu-hoc': { block_domains: [] } } }, collectorKeys.privateKey, true);
    await gateway.waitForLog((l) => l.msg === 'district policy refused; the last good overlay stays');
    publish({ version: 4, profiles: {} }, null);
    publish({ version: 5, profiles: {} }, strangerKeys.privateKey);
    await new Promise((r) => setTimeout(r, 1000));
    expect(gateway.logs.filter((l) => l.msg === 'district policy refused; the last good overlay stays').length).toBeGreaterThanOrEqual(2);
    expect(await statusOf('lo-de.test')).toBe(403);
  });

  it('adds district rules to a local category, and refuses an overlay signed for another school or older than the one in force', async () => {
    expect(await statusOf('xoso.test')).toBe(200);
    publish({
      version: 6,
      school: 'th-tram-tau',
      profiles: { 'tieu-hoc': { block_domains: ['lo-de.test'] } },
      // A reported page the district blocked as gambling; a category this school does not have is skipped.
      categories: { gambling: { block_domains: ['xoso.test'] }, 'khong-co-o-truong': { block_domains: ['khac.test'] } },
    });
    await eventually(async () => (await statusOf('xoso.test')) === 403);
    expect((await curl(gateway.port, `http://xoso.test:${origin.port}/`)).headers['x-lachan-block']).toBe('gambling');
    const check = JSON.parse(
      lachan(['check', '--profile', 'tieu-hoc', '--rules', gateway.rulesDir, '--data', gateway.dataDir, '--json', 'http://xoso.test/']).stdout,
    );
    expect(check).toMatchObject({ action: 'block', category: 'gambling', source: 'district-overlay:v6:2' });

    // Correctly signed, but for another school (which may allow more): refused.
    publish({ version: 7, school: 'th-ban-mu', profiles: {}, categories: {} });
    await gateway.waitForLog((l) => String(l.msg).includes('signed for another school'));
    // An old overlay replayed (it did not block xoso.test yet): refused.
    publish({ version: 2, school: 'th-tram-tau', profiles: {} });
    await gateway.waitForLog((l) => String(l.msg).includes('older than the one in force'));
    expect(await statusOf('xoso.test')).toBe(403);
    expect(await statusOf('lo-de.test')).toBe(403);
  });
});
