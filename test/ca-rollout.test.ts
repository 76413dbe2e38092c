import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, lachan, type Origin, type RunningGateway, startGateway, startHttpsOrigin } from './harness/index.js';

/**
 * Rolling out HTTPS interception without breaking the school: the gateway serves its
 * CA and the install guide, intercepts only devices that showed they trust the CA
 * (unless a range says otherwise), and takes a new CA without a restart.
 * Devices are loopback addresses: 127.0.0.2 a pupil's laptop in no range (learned),
 * 127.0.0.4 a range set to never, 127.0.0.5 a lab set to always.
 */
const PROBE = 'https://lachan-probe.invalid/__lachan__/tin-cay.gif';

let origin: Origin & { caPem: string };
let proxy: RunningGateway;
let work: string;
let certs: string;
let originCa: string;
let schoolCa: string;

const policy = (originPort: number): string => `version: 1
default_profile: thcs
profiles:
  thcs:
    name: "THCS"
    block_categories: [gambling]
    inspect: true
connect_ports: [443, ${originPort}]
clients:
  - cidr: 127.0.0.4/32
    profile: thcs
    intercept: never
  - cidr: 127.0.0.5/32
    profile: thcs
    intercept: always
`;

/** curl to a file: for the binary certificate, which `curl -i` text would mangle. */
function download(url: string): Promise<{ status: number; type: string; bytes: Buffer }> {
  const file = path.join(work, `download-${Math.random().toString(36).slice(2)}`);
  return new Promise((resolve, reject) => {
    execFile('curl', ['-s', '--noproxy', '*', '-o', file, '-w', '%{http_code} %{content_type}', url], { encoding: 'utf8' }, (error, stdout) => {
      if (error) return reject(error);
      const [status, type] = stdout.split(' ');
      let bytes = Buffer.alloc(0);
      try {
        bytes = readFileSync(file);
      } catch {
        // no body
      }
      resolve({ status: Number(status), type: type ?? '', bytes });
    });
  });
}

interface StatusRange {
  cidr: string | null;
  intercept: string;
  trusted: string[];
  notTrusted: string[];
  refused: string[];
}

function caStatus(): { ca: { fingerprint: string } | null; ranges: StatusRange[] } {
  const result = lachan(['ca', 'status', '--rules', proxy.rulesDir, '--data', proxy.dataDir, '--certs', certs, '--json']);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as { ca: { fingerprint: string } | null; ranges: StatusRange[] };
}

/** The gateway saves what it learns a moment later; `ca status` reads the file. */
async function statusWhen(predicate: (ranges: StatusRange[]) => boolean): Promise<StatusRange[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const { ranges } = caStatus();
    if (predicate(ranges)) return ranges;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`ca status never matched: ${JSON.stringify(caStatus())}`);
}

const others = (ranges: StatusRange[]): StatusRange => ranges.find((r) => r.cidr === null)!;

async function caLoads(count: number): Promise<void> {
  await proxy.waitForLog(() => proxy.logs.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('school CA loaded')).length >= count, 20_000);
}

beforeAll(async () => {
  origin = await startHttpsOrigin('hoc.test', (req, res) => res.end(`origin ${req.url}`));
  work = mkdtempSync(path.join(tmpdir(), 'lachan-rollout-'));
  certs = path.join(work, 'certs');
  schoolCa = path.join(certs, 'ca.crt');
  originCa = path.join(work, 'origin-ca.pem');
  writeFileSync(originCa, origin.caPem);
  proxy = await startGateway({
    rules: { 'policy.yaml': policy(origin.port), 'categories/gambling/domains': 'bet.test\n' },
    hosts: '127.0.0.1 hoc.test bet.test\n',
    args: ['--certs', certs],
    env: { NODE_EXTRA_CA_CERTS: originCa },
  });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await origin?.close();
});

describe('rolling out the school CA', () => {
  it('without a CA: /ca and the guide are 404, a blocked HTTPS site gets 403 with X-Lachan-Block', async () => {
    expect((await download(`http://127.0.0.1:${proxy.port}/ca`)).status).toBe(404);
    expect((await download(`http://127.0.0.1:${proxy.port}/ca.pem`)).status).toBe(404);
    expect((await download(`http://127.0.0.1:${proxy.port}/ca/huong-dan`)).status).toBe(404);
    const blocked = await curl(proxy.port, `https://bet.test:${origin.port}/`, { caPem: originCa });
    expect(blocked.status).toBe(403);
    expect(blocked.headers['x-lachan-block']).toBe('gambling');
  });

  it('takes a CA created while it runs, and serves it at /ca (DER), /ca.pem and the Vietnamese guide', async () => {
    expect(lachan(['ca', 'init', '--certs', certs, '--name', 'THCS Thử nghiệm']).code).toBe(0);
    await caLoads(1);
    const der = await download(`http://127.0.0.1:${proxy.port}/ca`);
    expect(der.status).toBe(200);
    expect(der.type).toBe('application/x-x509-ca-cert');
    const exported = path.join(work, 'exported.cer');
    expect(lachan(['ca', 'export', '--certs', certs, '--der', '--out', exported]).code).toBe(0);
    expect(der.bytes.equals(readFileSync(exported))).toBe(true);
    const pem = await download(`http://127.0.0.1:${proxy.port}/ca.pem`);
    expect(pem.status).toBe(200);
    expect(pem.bytes.toString()).toBe(readFileSync(schoolCa, 'utf8'));
    // A browser set to use the proxy asks for the gateway's own page in absolute form.
    const guide = await curl(proxy.port, `http://127.0.0.1:${proxy.port}/ca/huong-dan`);
    expect(guide.status).toBe(200);
    expect(guide.body).toContain('<html lang="vi">');
    expect(guide.body).toContain(caStatus().ca!.fingerprint);
    expect(guide.body).toContain('Firefox trên Android');
    expect(guide.body).toContain('Linux');
    expect(guide.body).toContain(PROBE);
    // And the block page links to it, on whatever host it was shown for.
    const blockPage = await curl(proxy.port, 'http://bet.test/');
    expect(blockPage.body).toContain('href="/__lachan__/ca/huong-dan"');
    expect(blockPage.body).toContain(PROBE);
    const viaBlockedHost = await curl(proxy.port, 'http://bet.test/__lachan__/ca/huong-dan');
    expect(viaBlockedHost.status).toBe(200);
    expect(viaBlockedHost.body).toContain('Cài chứng chỉ của trường');
  });

  it('does not intercept a device that has not shown it trusts the CA: its HTTPS keeps working', async () => {
    const allowed = await curl(proxy.port, `https://hoc.test:${origin.port}/bai-hoc`, { from: '127.0.0.2', caPem: originCa });
    expect(allowed.code).toBe(0);
    expect(allowed.body).toBe('origin /bai-hoc');
    // The origin's own certificate, not one from the school CA: no interception.
    expect((await curl(proxy.port, `https://hoc.test:${origin.port}/`, { from: '127.0.0.2', caPem: schoolCa })).code).not.toBe(0);
    // A blocked site is still answered with the block page over TLS (the contract):
    // the site stays closed whether or not the device takes the certificate.
    const blocked = await curl(proxy.port, `https://bet.test:${origin.port}/`, { from: '127.0.0.2', caPem: schoolCa });
    expect(blocked.code).toBe(0);
    expect(blocked.status).toBe(403);
    expect(blocked.headers['x-lachan-block']).toBe('gambling');
    expect(blocked.body).toContain('Trang này đã bị chặn');
    // Its probe fails the TLS handshake: the gateway notes that this device refuses the CA.
    expect((await curl(proxy.port, PROBE, { from: '127.0.0.2' })).code).toBe(60);
    const ranges = await statusWhen((r) => others(r).refused.includes('127.0.0.2'));
    expect(others(ranges).trusted).not.toContain('127.0.0.2');
  });

  it('intercepts the device once it fetched the probe through the school CA', async () => {
    const probe = await curl(proxy.port, PROBE, { from: '127.0.0.2', caPem: schoolCa });
    expect(probe.status).toBe(200);
    expect(probe.headers['content-type']).toBe('image/gif');
    const inspected = await curl(proxy.port, `https://hoc.test:${origin.port}/bai-hoc`, { from: '127.0.0.2', caPem: schoolCa });
    expect(inspected.code).toBe(0);
    expect(inspected.body).toBe('origin /bai-hoc');
    expect(inspected.headers.via).toBe('1.1 lachan');
    const blocked = await curl(proxy.port, `https://bet.test:${origin.port}/dat-cuoc`, { from: '127.0.0.2', caPem: schoolCa });
    expect(blocked.code).toBe(0);
    expect(blocked.status).toBe(403);
    expect(blocked.body).toContain('Trang này đã bị chặn');
    await statusWhen((r) => others(r).trusted.includes('127.0.0.2'));
  });

  it('follows the range: never intercepts a "never" range, always intercepts an "always" one', async () => {
    expect((await curl(proxy.port, PROBE, { from: '127.0.0.4', caPem: schoolCa })).status).toBe(200);
    const never = await curl(proxy.port, `https://hoc.test:${origin.port}/`, { from: '127.0.0.4', caPem: originCa });
    expect(never.code).toBe(0);
    expect(never.headers.via).toBeUndefined();
    // A "never" range's blocked site is refused at the CONNECT, with no certificate of the school's.
    const neverBlocked = await curl(proxy.port, `https://bet.test:${origin.port}/`, { from: '127.0.0.4', caPem: schoolCa });
    expect(neverBlocked.status).toBe(403);
    expect(neverBlocked.code).not.toBe(0);
    expect(neverBlocked.headers['x-lachan-block']).toBe('gambling');
    const always = await curl(proxy.port, `https://hoc.test:${origin.port}/`, { from: '127.0.0.5', caPem: schoolCa });
    expect(always.code).toBe(0);
    expect(always.headers.via).toBe('1.1 lachan');
  });

  it('lachan ca status lists each range with its mode and its devices', async () => {
    const ranges = await statusWhen((r) => r.find((x) => x.cidr === '127.0.0.4/32')!.trusted.length === 1);
    expect(ranges.map((r) => [r.cidr, r.intercept])).toEqual([
      ['127.0.0.4/32', 'never'],
      ['127.0.0.5/32', 'always'],
      [null, 'learned'],
    ]);
    expect(others(ranges).trusted).toEqual(['127.0.0.2']);
    const text = lachan(['ca', 'status', '--rules', proxy.rulesDir, '--data', proxy.dataDir, '--certs', certs]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/127\.0\.0\.4\/32\s+thcs\s+never \(không giải mã\)\s+1\s+0\s+0/);
    expect(text.stdout).toMatch(/\(địa chỉ khác\)\s+thcs\s+learned \(chỉ thiết bị đã tin cậy CA\)\s+1/);
  });

  it('a replaced CA takes effect without a restart, and devices must show trust in the new one', async () => {
    const before = readFileSync(schoolCa, 'utf8');
    expect(lachan(['ca', 'init', '--certs', certs, '--name', 'THCS Thử nghiệm', '--force']).code).toBe(0);
    await caLoads(2);
    const pem = await download(`http://127.0.0.1:${proxy.port}/ca.pem`);
    expect(pem.bytes.toString()).not.toBe(before);
    expect(pem.bytes.toString()).toBe(readFileSync(schoolCa, 'utf8'));
    // 127.0.0.2 trusted the old CA: it is tunnelled again until its next probe.
    const tunnelled = await curl(proxy.port, `https://hoc.test:${origin.port}/`, { from: '127.0.0.2', caPem: originCa });
    expect(tunnelled.code).toBe(0);
    expect(tunnelled.headers.via).toBeUndefined();
    // The "always" lab gets certificates from the new CA at once.
    // A "never" range's blocked site is refused at the CONNECT, with no certificate of the school's.
    const neverBlocked = await curl(proxy.port, `https://bet.test:${origin.port}/`, { from: '127.0.0.4', caPem: schoolCa });
    expect(neverBlocked.status).toBe(403);
    expect(neverBlocked.code).not.toBe(0);
    expect(neverBlocked.headers['x-lachan-block']).toBe('gambling');
    const always = await curl(proxy.port, `https://hoc.test:${origin.port}/`, { from: '127.0.0.5', caPem: schoolCa });
    expect(always.code).toBe(0);
    expect(always.headers.via).toBe('1.1 lachan');
    await statusWhen((r) => others(r).trusted.length === 0 && others(r).notTrusted.includes('127.0.0.2'));
  });
});

describe('several proxy workers (--workers 2)', () => {
  let workers: RunningGateway;
  let workersCerts: string;

  beforeAll(async () => {
    workersCerts = path.join(work, 'workers-certs');
    expect(lachan(['ca', 'init', '--certs', workersCerts, '--name', 'THCS Thử nghiệm']).code).toBe(0);
    workers = await startGateway({
      rules: { 'policy.yaml': policy(origin.port), 'categories/gambling/domains': 'bet.test\n' },
      hosts: '127.0.0.1 hoc.test bet.test\n',
      workers: 2,
      args: ['--certs', workersCerts],
      env: { NODE_EXTRA_CA_CERTS: originCa },
    });
  }, 60_000);

  afterAll(async () => {
    await workers?.stop();
  });

  it('share what one of them learned: every connection of a trusting device is intercepted', async () => {
    const ca = path.join(workersCerts, 'ca.crt');
    expect((await curl(workers.port, PROBE, { from: '127.0.0.2', caPem: ca })).status).toBe(200);
    // The primary saved it once every worker had been told.
    const status = (): string => lachan(['ca', 'status', '--rules', workers.rulesDir, '--data', workers.dataDir, '--certs', workersCerts, '--json']).stdout;
    for (let attempt = 0; attempt < 50 && !status().includes('"trusted":["127.0.0.2"]'); attempt++) await new Promise((resolve) => setTimeout(resolve, 200));
    // Connections alternate between the workers: each one must intercept.
    for (let i = 0; i < 4; i++) {
      const inspected = await curl(workers.port, `https://hoc.test:${origin.port}/bai-${i}`, { from: '127.0.0.2', caPem: ca });
      expect(inspected.code, inspected.stderr).toBe(0);
      expect(inspected.headers.via).toBe('1.1 lachan');
    }
  });

  it('all take a replaced CA without a restart', async () => {
    expect(lachan(['ca', 'init', '--certs', workersCerts, '--name', 'THCS Thử nghiệm', '--force']).code).toBe(0);
    const fresh = readFileSync(path.join(workersCerts, 'ca.crt'), 'utf8');
    // The primary and both workers say so.
    await workers.waitForLog(() => workers.logs.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('school CA loaded')).length >= 3, 20_000);
    for (let i = 0; i < 4; i++) {
      const always = await curl(workers.port, `https://hoc.test:${origin.port}/`, { from: '127.0.0.5', caPem: path.join(workersCerts, 'ca.crt') });
      expect(always.code, always.stderr).toBe(0);
      expect((await download(`http://127.0.0.1:${workers.port}/ca.pem`)).bytes.toString()).toBe(fresh);
    }
  });
});
