import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { CentralStore } from '../src/central/store.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEventLog } from '../src/events/log.js';
import { readAudit } from '../src/privacy/audit.js';
import { ErasureQueue } from '../src/privacy/erasure-queue.js';
import { execFile } from 'node:child_process';
import {
  CLI,
  type Collector,
  collectorRows,
  lachan,
  openCollectorStore,
  makeRulesDir,
  removeDir,
  REPO_ROOT,
  startCollector,
  startGateway,
  stopCollector,
} from './harness/index.js';

/** The CLI run without blocking this process: the collector below answers from it. */
function lachanAsync(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
}

const CHILD = '10.30.0.7';
const OTHER = '10.30.0.8';
const DAY = 86_400_000;

let dataDir: string;
let rulesDir: string;
let childPseudonym: string;
let otherPseudonym: string;

/** A gateway's data folder written by the real event log: the child's device and another. */
async function gatewayData(dir: string): Promise<void> {
  const log = openEventLog({ dataDir: dir, school: 'th-kim-dong', shipping: true });
  const now = Date.now();
  const event = (clientAddress: string, host: string, time: number) =>
    log.record({
      time,
      profile: 'thpt',
      category: 'gambling',
      reason: 'domain',
      rule: host,
      source: 'rules/categories/gambling/domains:1',
      host,
      path: '/dang-ky',
      method: 'GET',
      clientAddress,
    });
  event(CHILD, 'nhacai-cua-em.example', now - 3 * DAY);
  event(CHILD, 'casino-cua-em.example', now - DAY);
  event(OTHER, 'nhacai-ban-khac.example', now - DAY);
  log.flush();
  log.recordReviewRequest({
    kind: 'report',
    eventRef: '',
    host: 'trang-xau.example',
    category: null,
    profile: 'thpt',
    note: 'em thấy trang này có hại',
    clientAddress: CHILD,
  });
  log.recordReviewRequest({
    kind: 'report',
    eventRef: '',
    host: 'trang-khac.example',
    category: null,
    profile: 'thpt',
    note: 'của bạn khác',
    clientAddress: OTHER,
  });
  childPseudonym = log.clientPseudonym(CHILD);
  otherPseudonym = log.clientPseudonym(OTHER);
  await log.close();
  const seen = now - 2 * DAY;
  writeFileSync(
    path.join(dir, 'device-trust.json'),
    JSON.stringify({ version: 1, ca: 'ab', devices: { [CHILD]: { seen, trusted: seen }, [OTHER]: { seen } } }),
  );
}

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'lachan-privacy-'));
  rulesDir = makeRulesDir({
    'policy.yaml': `version: 1
default_profile: thpt
profiles:
  thpt:
    name: "THPT"
    block_categories: [gambling]
organisation:
  school: "Trường THPT Kim Đồng"
`,
    'categories/gambling/domains': 'nhacai.example\n',
  });
  await gatewayData(dataDir);
});
afterAll(() => {
  removeDir(dataDir);
  removeDir(rulesDir);
});

describe('lachan privacy export', () => {
  it('lists the device’s events and requests in a Vietnamese receipt, and nobody else’s', () => {
    const result = lachan(['privacy', 'export', '--device', CHILD, '--data', dataDir, '--rules', rulesDir]);
    expect(result.code).toBe(0);
    const receipt = result.stdout;
    expect(receipt).toContain('BIÊN NHẬN');
    expect(receipt).toContain('Trường THPT Kim Đồng');
    expect(receipt).toContain(`mã ẩn danh ${childPseudonym}`);
    expect(receipt).toContain('Sự kiện chặn (lần truy cập bị chặn): 2');
    expect(receipt).toContain('nhacai-cua-em.example/dang-ky');
    expect(receipt).toContain('casino-cua-em.example');
    expect(receipt).toContain('em thấy trang này có hại');
    expect(receipt).toMatch(/device-trust\.json.*: có, lần cuối thấy/);
    expect(receipt).toContain('91/2025/QH15');
    expect(receipt).not.toContain('ban-khac');
    expect(receipt).not.toContain('của bạn khác');
  });

  it('finds the same data by pseudonym, as JSON, and records the request in the audit log', () => {
    const result = lachan(['privacy', 'export', '--device', childPseudonym, '--data', dataDir, '--json']);
    expect(result.code).toBe(0);
    const data = JSON.parse(result.stdout) as { device: { address: string | null }; events: unknown[]; reviews: unknown[] };
    expect(data.device.address).toBeNull();
    expect(data.events).toHaveLength(2);
    expect(data.reviews).toHaveLength(1);
    const audit = readAudit(dataDir).filter((e) => e.action === 'privacy.export');
    expect(audit.at(-1)).toMatchObject({ target: childPseudonym, details: { events: 2, reviews: 1 } });
    expect(readFileSync(path.join(dataDir, 'audit.jsonl'), 'utf8')).not.toContain(CHILD);
  });

  it('refuses what is neither an address nor a pseudonym with exit 2', () => {
    const result = lachan(['privacy', 'export', '--device', 'may-cua-em', '--data', dataDir]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--device');
  });
});

describe('lachan privacy erase', () => {
  let collector: Collector;
  let collectorUrl: string;
  let collectorDir: string;
  let store: CentralStore;
  let tokenFile: string;

  beforeAll(async () => {
    // The collector's real store with the events the gateway shipped, behind the erasure endpoint.
    collectorDir = mkdtempSync(path.join(tmpdir(), 'lachan-privacy-central-'));
    store = await openCollectorStore(collectorDir);
    const school = await store.addSchool('THPT Kim Đồng');
    tokenFile = path.join(collectorDir, 'token');
    writeFileSync(tokenFile, school.token);
    const shipped = (client: string, id: string, host: string) => ({
      id,
      time: Date.now() - DAY,
      profile: 'thpt',
      category: 'gambling',
      reason: 'domain',
      rule: host,
      source: null,
      host,
      path: '/',
      method: 'GET',
      client,
    });
    await store.ingest(
      school.id,
      [
        shipped(childPseudonym, '01JCHILD0000000000000000A1', 'nhacai-cua-em.example'),
        shipped(otherPseudonym, '01JOTHER0000000000000000B1', 'nhacai-ban-khac.example'),
      ],
      Date.now(),
    );
    // An alert about the child: the counsellor keeps the case, the collector loses the pseudonym.
    const alert = (device: string, ref: string) => ({
      ref,
      time: Date.now() - DAY,
      lastTime: Date.now() - DAY,
      severity: 'high' as const,
      category: 'self-harm' as const,
      signal: 'search' as const,
      trigger: 'cách tự tử',
      host: 'www.google.com',
      device,
      profile: 'thpt',
      count: 1,
    });
    await store.alerts.ingest(school.id, [alert(childPseudonym, 'AL-CHILD-0001'), alert(otherPseudonym, 'AL-OTHER-0001')], Date.now());
    await store.close();
    // The real collector serves the erasure endpoint over that database.
    collector = await startCollector(collectorDir);
    collectorUrl = collector.url;
    schoolId = school.id;
  });
  let schoolId = '';
  afterAll(async () => {
    if (collector !== undefined) await stopCollector(collector);
    removeDir(collectorDir);
  });

  it('erases the device at the school and at the collector, keeps everyone else’s, and audits it', async () => {
    const result = await lachanAsync([
      'privacy',
      'erase',
      '--device',
      CHILD,
      '--data',
      dataDir,
      '--rules',
      rulesDir,
      '--central',
      collectorUrl,
      '--school',
      schoolId,
      '--token-file',
      tokenFile,
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Đã xoá 2 sự kiện chặn và 1 đề nghị');
    expect(result.stdout).toContain('Phòng đã xác nhận');

    // The gateway's own files.
    const db = new Database(path.join(dataDir, 'events.db'), { readonly: true });
    try {
      expect(db.prepare('SELECT client, host FROM events ORDER BY host').all()).toEqual([{ client: otherPseudonym, host: 'nhacai-ban-khac.example' }]);
      expect(db.prepare('SELECT client FROM reviews').all()).toEqual([{ client: otherPseudonym }]);
    } finally {
      db.close();
    }
    const trust = JSON.parse(readFileSync(path.join(dataDir, 'device-trust.json'), 'utf8')) as { devices: Record<string, unknown> };
    expect(Object.keys(trust.devices)).toEqual([OTHER]);

    // The collector's database.
    expect(collectorRows(collectorDir, 'SELECT client FROM events')).toEqual([{ client: otherPseudonym }]);
    expect(collectorRows(collectorDir, 'SELECT ref, device FROM alerts ORDER BY ref')).toEqual([
      { ref: 'AL-CHILD-0001', device: 'erased' },
      { ref: 'AL-OTHER-0001', device: otherPseudonym },
    ]);

    // The queue says the collector acknowledged; the audit log names the pseudonym only.
    const queue = new ErasureQueue(dataDir);
    try {
      expect(queue.all()).toEqual([expect.objectContaining({ client: childPseudonym, sentAt: expect.any(Number) })]);
    } finally {
      queue.close();
    }
    const erase = readAudit(dataDir).find((e) => e.action === 'privacy.erase');
    expect(erase).toMatchObject({ target: childPseudonym, details: { events: 2, reviews: 1, deviceTrust: true } });
    expect(readFileSync(path.join(dataDir, 'audit.jsonl'), 'utf8')).not.toContain(CHILD);

    const after = lachan(['privacy', 'export', '--device', CHILD, '--data', dataDir]);
    expect(after.stdout).toContain('Sự kiện chặn (lần truy cập bị chặn): 0');
  });

  it('keeps the request queued when the collector cannot be reached', () => {
    const result = lachan([
      'privacy',
      'erase',
      '--device',
      OTHER,
      '--data',
      dataDir,
      '--central',
      'http://127.0.0.1:9',
      '--school',
      schoolId,
      '--token-file',
      tokenFile,
    ]);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('chưa gửi được');
    expect(result.stdout).toContain('đã được xếp hàng');
    const queue = new ErasureQueue(dataDir);
    try {
      expect(queue.pending()).toEqual([expect.objectContaining({ client: otherPseudonym })]);
      expect(queue.all()).toHaveLength(2);
    } finally {
      queue.close();
    }
  });

  it('lachan serve --central sends what is still queued', async () => {
    const pending = () => {
      const queue = new ErasureQueue(dataDir);
      try {
        return queue.pending().length;
      } finally {
        queue.close();
      }
    };
    expect(pending()).toBe(1);
    const gateway = await startGateway({ rulesDir, args: ['--data', dataDir, '--central', collectorUrl, '--school', schoolId, '--token-file', tokenFile] });
    try {
      const deadline = Date.now() + 20_000;
      while (pending() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(pending()).toBe(0);
      expect(collectorRows(collectorDir, 'SELECT count(*) AS n FROM events')).toEqual([{ n: 0 }]);
    } finally {
      await gateway.stop();
    }
  });
});
