/**
 * Safeguarding alerts on the gateway (docs/safeguarding.md): a child's self-harm search
 * through the real proxy raises one local alert, further signals escalate that alert
 * instead of raising new ones, `lachan alerts resolve` names the device and audits the
 * look-up, a parent's export and erasure include the alert, and alerts reach a
 * collector at once, survive its outages and count as shipped only once it said 200.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAudit } from '../src/privacy/audit.js';
import {
  REPO_ROOT,
  curl,
  echoHandler,
  lachan,
  makeRulesDir,
  removeDir,
  startGateway,
  startHttpOrigin,
  writeRulesFiles,
  type Origin,
  type RulesFiles,
  type RunningGateway,
} from './harness/index.js';

/** Each test runs several CLI processes beside a gateway: slow on a loaded machine. */
const SLOW = { timeout: 90_000 };
const SAFEGUARDING_FILES = ['self-harm', 'grooming', 'bullying', 'violence'];
const HOSTS = '127.0.0.1 www.google.com tu-hai.test hoc.test\n';

/** A school's rules: the shipped self-harm category and safeguarding phrases, one inspected profile. */
function schoolRules(): RulesFiles {
  const files: Record<string, string> = {
    'policy.yaml': `version: 1
default_profile: thcs
profiles:
  thcs:
    name: "Trung học cơ sở"
    block_categories: [self-harm]
    content_limit: 100
`,
    'categories/self-harm/domains': 'tu-hai.test\n',
  };
  for (const name of ['keywords', 'phrases'])
    files[`categories/self-harm/${name}`] = readFileSync(path.join(REPO_ROOT, 'rules/categories/self-harm', name), 'utf8');
  for (const name of SAFEGUARDING_FILES) files[`safeguarding/${name}`] = readFileSync(path.join(REPO_ROOT, 'rules/safeguarding', name), 'utf8');
  return files;
}

interface ListedAlert {
  ref: string;
  device: string;
  category: string;
  severity: string;
  signal: string;
  trigger: string;
  host: string;
  count: number;
  version: number;
  shippedVersion: number;
}

function listAlerts(dataDir: string): ListedAlert[] {
  const result = lachan(['alerts', 'list', '--data', dataDir, '--json']);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as ListedAlert[];
}

async function until<T>(what: string, read: () => T | Promise<T>, ok: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A forum page that teaches self-harm, under a harmless title. */
const FORUM_PAGE = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Góc tâm sự</title></head><body>
<p>Hướng dẫn cách tự tử không đau, tự tử không đau bằng thuốc ngủ, cách chết không đau.</p></body></html>`;

const search = (origin: Origin, terms: string): string => `http://www.google.com:${origin.port}/search?q=${encodeURIComponent(terms)}&hl=vi`;

describe('alerts raised at the school', SLOW, () => {
  let origin: Origin;
  let gateway: RunningGateway;

  beforeAll(async () => {
    origin = await startHttpOrigin((req, res) => {
      if (req.url !== '/dien-dan') return echoHandler(req, res);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(FORUM_PAGE);
    });
    gateway = await startGateway({ rules: schoolRules(), hosts: HOSTS });
  });
  afterAll(async () => {
    await gateway?.stop();
    await origin?.close();
  });

  it('shows a child who searched for suicide the hotlines first, and never says anyone was told', async () => {
    const answer = await curl(gateway.port, search(origin, 'cách tự tử'));
    expect(answer.status).toBe(403);
    const hotline = answer.body.indexOf('tel:111');
    expect(hotline).toBeGreaterThan(0);
    expect(hotline).toBeLessThan(answer.body.indexOf('Thông tin để thầy cô tra cứu'));
    expect(answer.body).not.toMatch(/cảnh báo|đã báo|thông báo cho|tư vấn viên|counsellor/i);
  });

  it('raises one alert for that search, with the terms and the device pseudonym only', async () => {
    const [alert, ...others] = await until(
      'the first alert',
      () => listAlerts(gateway.dataDir),
      (list) => list.length > 0,
    );
    expect(others).toEqual([]);
    expect(alert).toMatchObject({ category: 'self-harm', severity: 'high', signal: 'phrase', trigger: 'cách tự tử', host: 'www.google.com', count: 1 });
    expect(alert!.ref).toMatch(/^AL-[A-Za-z0-9-]{6,61}$/);
    expect(alert!.device).toMatch(/^[0-9a-f]{16}$/);
  });

  it('folds three more searches into the same alert, counted and escalated, and a repeat within a minute counts once', async () => {
    const [first] = listAlerts(gateway.dataDir);
    for (const terms of ['cach tu tu khong dau', 'muốn chết đi', 'cách tự sát', 'cach tu tu khong dau']) {
      expect((await curl(gateway.port, search(origin, terms))).status).toBe(403);
    }
    const alerts = await until(
      'four signals folded',
      () => listAlerts(gateway.dataDir),
      (list) => list[0]?.count === 4,
    );
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ ref: first!.ref, count: 4, severity: 'critical' });
  });

  it('raises a separate alert for another category, from the phrases alone (the search itself is allowed)', async () => {
    const answer = await curl(gateway.port, search(origin, 'he wants me to send nudes'));
    expect(answer.status).toBe(200);
    const alerts = await until(
      'a grooming alert',
      () => listAlerts(gateway.dataDir),
      (list) => list.length === 2,
    );
    expect(alerts.find((a) => a.category === 'grooming')).toMatchObject({ severity: 'high', signal: 'phrase', count: 1 });
  });

  it('resolves an alert to the loopback address and records who asked in the audit log', () => {
    const alert = listAlerts(gateway.dataDir).find((a) => a.category === 'self-harm')!;
    const before = Date.now();
    const resolved = lachan(['alerts', 'resolve', alert.ref, '--data', gateway.dataDir]);
    expect(resolved.code, resolved.stderr).toBe(0);
    expect(resolved.stdout).toBe('127.0.0.1\n');
    expect(resolved.stderr).toContain('nhật ký kiểm tra');
    const entry = readAudit(gateway.dataDir).find((e) => e.action === 'alerts.resolve');
    expect(entry).toMatchObject({ actor: userInfo().username, target: alert.device, details: { ref: alert.ref } });
    expect(entry!.at).toBeGreaterThanOrEqual(before);
  });

  it('refuses an unknown reference in Vietnamese with exit 2, and audits nothing', () => {
    const audited = readAudit(gateway.dataDir).length;
    const result = lachan(['alerts', 'resolve', 'AL-KHONGCO123', '--data', gateway.dataDir]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('không có cảnh báo mã AL-KHONGCO123');
    expect(readAudit(gateway.dataDir)).toHaveLength(audited);
  });

  it('lists alerts for IT staff in Vietnamese', () => {
    const result = lachan(['alerts', 'list', '--data', gateway.dataDir]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/mức khẩn cấp {2}tự hại, tự tử {2}4 lần/);
    expect(result.stdout).not.toContain('127.0.0.1');
  });

  it("puts the device's alerts and address in a parent's export, and erases them with the device", () => {
    const exported = lachan(['privacy', 'export', '--device', '127.0.0.1', '--data', gateway.dataDir, '--json']);
    expect(exported.code, exported.stderr).toBe(0);
    const data = JSON.parse(exported.stdout) as { alerts: { ref: string; category: string }[]; alertAddress: string | null };
    expect(data.alerts.map((a) => a.category).sort()).toEqual(['grooming', 'self-harm']);
    expect(data.alertAddress).toBe('127.0.0.1');
    const erased = lachan(['privacy', 'erase', '--device', '127.0.0.1', '--data', gateway.dataDir]);
    expect(erased.code, erased.stderr).toBe(0);
    expect(erased.stdout).toContain('Đã xoá 2 cảnh báo an toàn và địa chỉ/tài khoản giữ kèm cảnh báo');
    expect(listAlerts(gateway.dataDir)).toEqual([]);
    expect(lachan(['alerts', 'resolve', data.alerts[0]!.ref, '--data', gateway.dataDir]).code).toBe(2);
  });

  it('raises an alert for a page blocked by content inspection in self-harm, named by its title', async () => {
    const answer = await curl(gateway.port, `http://hoc.test:${origin.port}/dien-dan`);
    expect(answer.status).toBe(403);
    const alerts = await until(
      'the content alert',
      () => listAlerts(gateway.dataDir),
      (list) => list.length === 1,
    );
    expect(alerts[0]).toMatchObject({ category: 'self-harm', signal: 'content', trigger: 'Góc tâm sự', host: 'hoc.test', severity: 'medium', count: 1 });
  });

  it('folds a blocked self-harm site into that alert, and keeps it across a clean stop', async () => {
    expect((await curl(gateway.port, `http://tu-hai.test:${origin.port}/`)).status).toBe(403);
    await gateway.stop();
    const alerts = listAlerts(gateway.dataDir);
    expect(alerts).toEqual([expect.objectContaining({ category: 'self-harm', signal: 'request', trigger: 'tu-hai.test', severity: 'medium', count: 2 })]);
  });
});

describe('alerts on a read-only data folder', () => {
  let data: string | null = null;
  afterAll(() => {
    if (data === null) return;
    execFileSync('umount', ['-l', data]);
    removeDir(data);
  });

  it('filter on, and are written once the folder is writable again', async () => {
    data = mkdtempSync(path.join(tmpdir(), 'lachan-safeguarding-ro-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0750', 'tmpfs', data]);
    execFileSync('mount', ['-o', 'remount,ro', data]);
    const origin = await startHttpOrigin();
    const gateway = await startGateway({ rules: schoolRules(), hosts: HOSTS, args: ['--data', data] });
    try {
      expect((await curl(gateway.port, search(origin, 'cách tự tử'))).status).toBe(403);
      expect((await curl(gateway.port, search(origin, 'thời tiết hôm nay'))).status).toBe(200);
      await gateway.waitForLog((line) => String(line.msg).startsWith('alert store unwritable: filtering continues'));
      expect(existsSync(path.join(data, 'alerts.db'))).toBe(false);
      execFileSync('mount', ['-o', 'remount,rw', data]);
      const written = await until(
        'the waiting signal written',
        () => (existsSync(path.join(data!, 'alerts.db')) ? listAlerts(data!) : []),
        (list) => list.length === 1,
        60_000,
      );
      expect(written[0]).toMatchObject({ category: 'self-harm', trigger: 'cách tự tử', count: 1 });
    } finally {
      await gateway.stop();
      await origin.close();
    }
  }, 120_000);
});

describe('the shipped phrase files', SLOW, () => {
  it('refuses to start on a broken line, naming FILE:LINE', async () => {
    const rules = { ...schoolRules(), 'safeguarding/bullying': '# ok\nhigh bị bắt nạt\nrất cao bị đánh\n' };
    await expect(startGateway({ rules })).rejects.toThrow(/safeguarding\/bullying:3: expected "<low\|medium\|high\|critical> <phrase>"/);
  });

  it('are checked by `lachan rules lint`, FILE:LINE and exit 1', () => {
    const rulesDir = makeRulesDir({ ...schoolRules(), 'safeguarding/violence': 'critical mang dao đến trường\nhigh ab\n' });
    try {
      const result = lachan(['rules', 'lint', '--rules', rulesDir]);
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(/^safeguarding\/violence:2: phrase "ab": /m);
    } finally {
      removeDir(rulesDir);
    }
  });

  it('keeps the phrases in force when a reload brings a broken file', async () => {
    const origin = await startHttpOrigin();
    const rulesDir = makeRulesDir(schoolRules());
    const gateway = await startGateway({ rulesDir, hosts: HOSTS });
    try {
      writeRulesFiles(rulesDir, { 'safeguarding/grooming': 'high send nudes\nhigh *\n' });
      const refused = await gateway.waitForLog((line) => line.msg === 'safeguarding phrases refused; the phrases already loaded keep serving');
      expect(refused.problems).toEqual([expect.stringMatching(/^safeguarding\/grooming:2: /)]);
      expect((await curl(gateway.port, search(origin, 'older guy wants to meet me'))).status).toBe(200);
      await until(
        'the alert of the phrase in force',
        () => listAlerts(gateway.dataDir),
        (list) => list.length === 1,
      );
    } finally {
      await gateway.stop();
      await origin.close();
      removeDir(rulesDir);
    }
  });
});

/**
 * A collector's alert ingest (docs/safeguarding.md) that the test can make answer 503
 * and that records when each batch arrived, which the real collector cannot be made to
 * do; test/safeguarding-e2e.test.ts runs the same path against the real collector. It
 * checks each batch against the contract and acknowledges events so that they do not
 * hold the alerts up.
 */
class StandInCollector {
  readonly batches: { alerts: Record<string, unknown>[]; raw: string; at: number }[] = [];
  readonly problems: string[] = [];
  attempts = 0;
  answer: 200 | 503 = 200;
  private server: Server | null = null;
  port = 0;

  async start(port = 0): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body = Buffer.concat(chunks);
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
    const send = (status: number, value: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    if (req.method === 'POST' && req.url === '/api/v1/events') {
      const { events } = JSON.parse(body.toString()) as { events: { id: string }[] };
      return send(200, { acked: events.map((e) => e.id) });
    }
    if (req.method !== 'POST' || req.url !== '/api/v1/alerts/ingest') return send(404, { error: 'not found' });
    this.attempts++;
    if (req.headers.authorization !== 'Bearer school-token') this.problems.push(`authorization ${req.headers.authorization}`);
    if (req.headers['content-type'] !== 'application/json') this.problems.push(`content-type ${req.headers['content-type']}`);
    const raw = body.toString();
    const alerts = (JSON.parse(raw) as { alerts: Record<string, unknown>[] }).alerts;
    for (const alert of alerts) this.checkAlert(alert);
    if (this.answer === 503) return send(503, { error: 'busy', code: 'UNAVAILABLE' });
    this.batches.push({ alerts, raw, at: Date.now() });
    send(200, { accepted: alerts.length });
  }

  private checkAlert(alert: Record<string, unknown>): void {
    const keys = ['ref', 'time', 'lastTime', 'severity', 'category', 'signal', 'trigger', 'host', 'device', 'profile', 'count'];
    if (JSON.stringify(Object.keys(alert).sort()) !== JSON.stringify([...keys].sort())) this.problems.push(`fields ${Object.keys(alert).join(',')}`);
    if (!/^[A-Za-z0-9-]{6,64}$/.test(String(alert.ref))) this.problems.push(`ref ${alert.ref}`);
    if (!['low', 'medium', 'high', 'critical'].includes(String(alert.severity))) this.problems.push(`severity ${alert.severity}`);
    if (!['self-harm', 'grooming', 'bullying', 'violence'].includes(String(alert.category))) this.problems.push(`category ${alert.category}`);
    if (!['request', 'search', 'content', 'phrase'].includes(String(alert.signal))) this.problems.push(`signal ${alert.signal}`);
    if (typeof alert.trigger !== 'string' || alert.trigger.length > 200) this.problems.push(`trigger ${alert.trigger}`);
    if (!(Number(alert.count) >= 1) || !(Number(alert.lastTime) >= Number(alert.time))) this.problems.push(`count/time ${JSON.stringify(alert)}`);
  }

  /** The latest copy of each ref received. */
  latest(): Map<string, Record<string, unknown>> {
    const byRef = new Map<string, Record<string, unknown>>();
    for (const batch of this.batches) for (const alert of batch.alerts) byRef.set(String(alert.ref), alert);
    return byRef;
  }
}

/** The stand-in collector, an origin, and a gateway shipping to the collector with the school's token. */
async function startShipping(collector: StandInCollector, workers: number): Promise<{ origin: Origin; gateway: RunningGateway }> {
  await collector.start();
  const origin = await startHttpOrigin();
  const tokenFile = path.join(mkdtempSync(path.join(tmpdir(), 'lachan-safeguarding-')), 'token');
  writeFileSync(tokenFile, 'school-token\n');
  const gateway = await startGateway({
    rules: schoolRules(),
    hosts: HOSTS,
    workers,
    // The shipper looks for new events once a minute here: only the wake-up of a new alert brings it sooner.
    args: ['--central', `http://127.0.0.1:${collector.port}`, '--school', 'thcs-test', '--token-file', tokenFile, '--ship-interval', '60'],
  });
  return { origin, gateway };
}

async function stopShipping(collector: StandInCollector, origin: Origin | undefined, gateway: RunningGateway | undefined): Promise<void> {
  await gateway?.stop();
  await origin?.close();
  await collector.stop();
}

describe('shipping alerts to the collector', SLOW, () => {
  const collector = new StandInCollector();
  let origin: Origin;
  let gateway: RunningGateway;

  beforeAll(async () => {
    ({ origin, gateway } = await startShipping(collector, 1));
  });
  afterAll(() => stopShipping(collector, origin, gateway));

  it('sends a new alert at once, not at the next round of events, as the contract has it', async () => {
    // Not blocked (no rule of the category matches it), yet the clearest signal of all.
    expect((await curl(gateway.port, search(origin, 'tôi muốn chết'))).status).toBe(200);
    // Well before the shipper's next round (a minute away), however loaded the machine.
    await until(
      'the alert at the collector',
      () => collector.batches.length,
      (n) => n > 0,
      20_000,
    );
    const [alert] = collector.batches[0]!.alerts;
    expect(alert).toMatchObject({
      category: 'self-harm',
      severity: 'critical',
      signal: 'phrase',
      trigger: 'tôi muốn chết',
      host: 'www.google.com',
      profile: 'thcs',
      count: 1,
    });
    expect(alert!.device).toMatch(/^[0-9a-f]{16}$/);
    expect(collector.batches[0]!.raw).not.toContain('127.0.0.1');
    expect(collector.problems).toEqual([]);
    await until(
      'marked shipped',
      () => listAlerts(gateway.dataDir)[0]!,
      (a) => a.shippedVersion === a.version,
    );
  });

  it('sends an escalation again with the same ref', async () => {
    const [sent] = listAlerts(gateway.dataDir);
    expect((await curl(gateway.port, search(origin, 'cách tự tử'))).status).toBe(403);
    const again = await until(
      'the escalation',
      () => collector.latest().get(sent!.ref),
      (a) => a?.count === 2,
      20_000,
    );
    expect(again).toMatchObject({ ref: sent!.ref, count: 2, severity: 'critical', time: (collector.batches[0]!.alerts[0] as { time: number }).time });
  });

  it('does not count an alert answered 503 as shipped, and delivers it once the collector answers 200', async () => {
    collector.answer = 503;
    const attempts = collector.attempts;
    expect((await curl(gateway.port, search(origin, 'bị bắt nạt ở trường'))).status).toBe(200);
    await until(
      'a refused attempt',
      () => collector.attempts,
      (n) => n > attempts,
      20_000,
    );
    const waiting = listAlerts(gateway.dataDir).find((a) => a.category === 'bullying')!;
    expect(waiting.shippedVersion).toBeLessThan(waiting.version);
    collector.answer = 200;
    await until(
      'the bullying alert delivered',
      () => collector.latest().get(waiting.ref),
      (a) => a !== undefined,
      30_000,
    );
    await until(
      'marked shipped',
      () => listAlerts(gateway.dataDir).find((a) => a.ref === waiting.ref)!,
      (a) => a.shippedVersion === a.version,
    );
    expect(collector.problems).toEqual([]);
  });

  it('keeps alerts while the collector is unreachable and delivers them when it is back', async () => {
    const port = collector.port;
    await collector.stop();
    expect((await curl(gateway.port, search(origin, 'mang dao đến trường'))).status).toBe(200);
    const waiting = await until(
      'the violence alert stored',
      () => listAlerts(gateway.dataDir).find((a) => a.category === 'violence'),
      (a) => a !== undefined,
    );
    await gateway.waitForLog((line) => line.msg === 'shipping failed' && String(line.err).includes('unreachable'));
    expect(listAlerts(gateway.dataDir).find((a) => a.ref === waiting!.ref)!.shippedVersion).toBe(0);
    await collector.start(port);
    // A new signal wakes the shipper from its backoff; without it the next retry comes within the backoff.
    await until(
      'the violence alert delivered',
      () => collector.latest().get(waiting!.ref),
      (a) => a !== undefined,
      60_000,
    );
    expect(collector.latest().get(waiting!.ref)).toMatchObject({ category: 'violence', severity: 'critical', count: 1 });
  });
});

describe('alerts from a gateway with two proxy workers', SLOW, () => {
  const collector = new StandInCollector();
  let origin: Origin;
  let gateway: RunningGateway;

  beforeAll(async () => {
    ({ origin, gateway } = await startShipping(collector, 2));
  });
  afterAll(() => stopShipping(collector, origin, gateway));

  it('folds the searches the workers saw into one alert, which the primary ships', async () => {
    for (const terms of ['cách tự tử', 'muốn chết đi', 'cách tự sát', 'tự tử không đau']) await curl(gateway.port, search(origin, terms));
    const alerts = await until(
      'four signals folded',
      () => listAlerts(gateway.dataDir),
      (list) => list[0]?.count === 4,
    );
    expect(alerts).toHaveLength(1);
    const shipped = await until(
      'the escalated alert at the collector',
      () => collector.latest().get(alerts[0]!.ref),
      (a) => a?.count === 4,
      30_000,
    );
    expect(shipped).toMatchObject({ severity: 'critical', category: 'self-harm' });
    expect(collector.problems).toEqual([]);
  });
});
