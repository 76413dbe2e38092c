import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { openEventLog } from '../src/events/log.js';
import { startShipper } from '../src/events/shipper.js';
import type { BlockEventInput } from '../src/events/types.js';
import { CLI, lachan, REPO_ROOT, withCollectorDatabase } from './harness/index.js';

const SHIPPER_MODULE = path.join(REPO_ROOT, 'dist/src/events/shipper.js');

const dirs: string[] = [];
const children: ChildProcess[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  dirs.forEach((dir) => {
    rmSync(dir, { recursive: true, force: true });
  });
});

async function startCollector(dataDir: string, port = 0): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [CLI, ...withCollectorDatabase(['central', 'serve', '--port', String(port), '--data', dataDir, '--rate-limit', '1000'])],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  const bound = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`collector exited with ${code}`)));
    lines.on('line', (line) => {
      if (!line.startsWith('{')) return;
      const entry = JSON.parse(line) as { msg?: string; port?: number };
      if (entry.msg === 'listening' && typeof entry.port === 'number') resolve(entry.port);
    });
  });
  return { port: bound, child };
}

async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

/** A port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function addSchool(dataDir: string): { id: string; token: string; tokenFile: string } {
  const result = lachan(['central', 'school', 'add', '--name', 'TH Trạm Tấu', '--data', dataDir, '--json']);
  expect(result.code).toBe(0);
  const school = JSON.parse(result.stdout) as { id: string; token: string };
  const tokenFile = path.join(dataDir, `${school.id}.token`);
  writeFileSync(tokenFile, `${school.token}\n`, { mode: 0o600 });
  return { ...school, tokenFile };
}

function collectorIds(dataDir: string, school: string): string[] {
  const result = lachan(['central', 'events', '--data', dataDir, '--school', school, '--json']);
  expect(result.code).toBe(0);
  return result.stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => (JSON.parse(l) as { id: string }).id);
}

function localRows(dataDir: string): { id: string; shipped_at: number | null; client: string; path: string }[] {
  const db = new Database(path.join(dataDir, 'events.db'), { readonly: true });
  try {
    return db.prepare('SELECT id, shipped_at, client, path FROM events ORDER BY id').all() as {
      id: string;
      shipped_at: number | null;
      client: string;
      path: string;
    }[];
  } finally {
    db.close();
  }
}

async function waitFor(check: () => boolean, what: string, tries = 400): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function block(i: number): BlockEventInput {
  return {
    time: Date.now(),
    profile: i % 3 ? 'tieu-hoc' : 'thcs',
    category: i % 2 ? 'gambling' : 'adult',
    reason: 'domain',
    rule: 'nhacai.example',
    source: 'rules/categories/gambling/domains:3',
    // A host of its own: repeats from one device to one host and category would be folded into one visit.
    host: `h${i}.nhacai.example`,
    path: `/trang/${i}?ma=${i}`,
    method: 'GET',
    clientAddress: `10.10.0.${i % 200}`,
  };
}

describe('the shipper', () => {
  it('keeps events while the collector is down and delivers each once when it comes up', async () => {
    const central = tempDir('lachan-central-');
    const gateway = tempDir('lachan-gateway-');
    const school = addSchool(central);
    const port = await freePort();
    const log = openEventLog({ dataDir: gateway, school: school.id });
    const shipper = startShipper({
      eventLog: log,
      centralUrl: `http://127.0.0.1:${port}`,
      schoolId: school.id,
      tokenFile: school.tokenFile,
      minBackoffMs: 50,
      maxBackoffMs: 300,
      idleIntervalMs: 50,
    });
    for (let i = 0; i < 1200; i++) log.record(block(i));
    await waitFor(() => shipper.stats().failures >= 2, 'failed attempts against the missing collector');
    expect(log.stats().pending).toBe(1200);
    expect(shipper.stats().shipped).toBe(0);

    const collector = await startCollector(central, port);
    await waitFor(() => log.stats().pending === 0, 'the backlog to drain');
    for (let i = 1200; i < 1300; i++) log.record(block(i));
    await waitFor(() => log.stats().pending === 0, 'new events to ship');
    await shipper.stop();
    await log.close();
    await stop(collector.child);

    const local = localRows(gateway);
    const arrived = collectorIds(central, school.id);
    expect(arrived).toHaveLength(1300);
    expect(new Set(arrived)).toEqual(new Set(local.map((r) => r.id)));
    expect(local.every((r) => r.shipped_at !== null)).toBe(true);
    // What left the gateway: pseudonyms and paths without queries.
    const shown = lachan(['central', 'events', '--data', central, '--json']).stdout;
    expect(shown).not.toMatch(/10\.10\.0\./);
    expect(shown).not.toContain('?ma=');
  });

  it('loses and doubles nothing when the shipping process is killed mid-stream and restarted', async () => {
    const central = tempDir('lachan-central-');
    const gateway = tempDir('lachan-gateway-');
    const school = addSchool(central);
    const collector = await startCollector(central);
    const total = 6000;
    const log = openEventLog({ dataDir: gateway, school: school.id });
    for (let i = 0; i < total; i++) log.record(block(i));
    await log.close();

    const script = path.join(gateway, 'ship.mjs');
    writeFileSync(
      script,
      `import { startShipper } from ${JSON.stringify(SHIPPER_MODULE)};
const [dataDir, centralUrl, schoolId, tokenFile] = process.argv.slice(2);
startShipper({ dataDir, centralUrl, schoolId, tokenFile, batchSize: 100, maxEventsPerSecond: 1500, idleIntervalMs: 50 });
setInterval(() => {}, 1000);
`,
    );
    const run = () => {
      const child = spawn(process.execPath, [script, gateway, `http://127.0.0.1:${collector.port}`, school.id, school.tokenFile], { stdio: 'inherit' });
      children.push(child);
      return child;
    };

    const first = run();
    await waitFor(() => localRows(gateway).filter((r) => r.shipped_at !== null).length >= 1000, 'the first thousand to ship');
    await stop(first, 'SIGKILL');
    const shippedBeforeKill = localRows(gateway).filter((r) => r.shipped_at !== null).length;
    expect(shippedBeforeKill).toBeLessThan(total);

    const second = run();
    await waitFor(() => localRows(gateway).every((r) => r.shipped_at !== null), 'the rest to ship after restart', 600);
    await stop(second);
    await stop(collector.child);

    const arrived = collectorIds(central, school.id);
    expect(arrived).toHaveLength(total);
    expect(new Set(arrived).size).toBe(total);
    expect(new Set(arrived)).toEqual(new Set(localRows(gateway).map((r) => r.id)));
  });

  it('stores a NUL in an event or a review request as U+FFFD on either store, once, and the gateway stops sending it', async () => {
    const central = tempDir('lachan-central-');
    const gateway = tempDir('lachan-gateway-');
    const school = addSchool(central);
    const collector = await startCollector(central);
    const log = openEventLog({ dataDir: gateway, school: school.id });
    // Made now: the gateway replaces the NUL where it records the event.
    log.record({ ...block(0), rule: 'cá\u0000độ', source: 'rules/x\u0000y', path: '/a\u0000b' });
    // As a gateway from before kept it: the NUL in its log (PostgreSQL refused such a batch, 22021, and it came again forever).
    log.record(block(1));
    log.flush();
    const db = new Database(path.join(gateway, 'events.db'));
    db.prepare("UPDATE events SET rule = 'cũ' || char(0) || 'luật', path = '/c' || char(0) WHERE host = ?").run('h1.nhacai.example');
    db.close();
    // A student's review request: its note typed with %00 now, and one kept with NUL from before. Reviews ship
    // before events, so one PostgreSQL refused would hold up every event behind it.
    const review = { eventRef: 'ABCD1234', host: 'h0.nhacai.example', category: 'gambling', profile: 'tieu-hoc', clientAddress: '10.0.0.7' };
    log.recordReviewRequest({ ...review, note: 'xin m\u0000ở' });
    const old = log.recordReviewRequest({ ...review, note: 'trang học' })!;
    const reviews = new Database(path.join(gateway, 'events.db'));
    reviews.prepare("UPDATE reviews SET note = 'bài' || char(0) || 'tập' WHERE id = ?").run(old);
    reviews.close();
    const shipper = startShipper({
      eventLog: log,
      centralUrl: `http://127.0.0.1:${collector.port}`,
      schoolId: school.id,
      tokenFile: school.tokenFile,
      minBackoffMs: 50,
      maxBackoffMs: 300,
      idleIntervalMs: 50,
    });
    await waitFor(() => log.stats().pending === 0, 'both events to be acknowledged');
    // Given time to send again, it does not: nothing was refused, and nothing is left.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(shipper.stats()).toMatchObject({ shipped: 2, reviewsShipped: 2, failures: 0 });
    await shipper.stop();
    await log.close();
    await stop(collector.child);

    expect(localRows(gateway).find((r) => r.path.startsWith('/a'))?.path).toBe('/a\uFFFDb');
    const stored = lachan(['central', 'events', '--data', central, '--school', school.id, '--json'])
      .stdout.split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as { host: string; rule: string; source: string; path: string });
    expect(stored.map((e) => [e.host, e.rule, e.source, e.path]).sort()).toEqual([
      ['h0.nhacai.example', 'cá\uFFFDđộ', 'rules/x\uFFFDy', '/a\uFFFDb'],
      ['h1.nhacai.example', 'cũ\uFFFDluật', 'rules/categories/gambling/domains:3', '/c\uFFFD'],
    ]);
  });

  it('marks shipped only the ids the collector acknowledged', async () => {
    const gateway = tempDir('lachan-gateway-');
    const tokenFile = path.join(gateway, 'token');
    writeFileSync(tokenFile, 'lct_test\n');
    const acked = new Set<string>();
    let requests = 0;
    // A collector that acknowledges every other id it receives and one id it never got,
    // twice, then answers 503.
    const collector = createHttpServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        requests++;
        if (requests > 2) {
          response.writeHead(503, { 'retry-after': '60' });
          return void response.end();
        }
        const batch = JSON.parse(gunzipSync(Buffer.concat(chunks)).toString()) as { events: { id: string }[] };
        const ids = batch.events.map((e) => e.id).filter((_, i) => i % 2 === 0);
        ids.forEach((id) => {
          acked.add(id);
        });
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ acked: [...ids, '01ZZZZZZZZZZZZZZZZZZZZZZZZ'], stored: ids.length, duplicates: 0 }));
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const { port } = collector.address() as { port: number };
    const log = openEventLog({ dataDir: gateway, school: 'sch' });
    for (let i = 0; i < 10; i++) log.record(block(i));
    log.flush();
    const shipper = startShipper({
      eventLog: log,
      centralUrl: `http://127.0.0.1:${port}`,
      schoolId: 'sch',
      tokenFile,
      idleIntervalMs: 50,
      maxEventsPerSecond: 100,
    });
    await waitFor(() => shipper.stats().batches >= 2, 'two acknowledged batches');
    await shipper.stop();
    await log.close();
    collector.close();
    const shipped = localRows(gateway)
      .filter((r) => r.shipped_at !== null)
      .map((r) => r.id);
    expect(new Set(shipped)).toEqual(acked);
    expect(shipped.length).toBeLessThan(10);
    expect(localRows(gateway)).toHaveLength(10);
  });

  it('refuses to start without a readable token file', () => {
    const gateway = tempDir('lachan-gateway-');
    expect(() => startShipper({ dataDir: gateway, centralUrl: 'http://127.0.0.1:9', schoolId: 'x', tokenFile: path.join(gateway, 'missing') })).toThrow(
      /token file/,
    );
  });
});
