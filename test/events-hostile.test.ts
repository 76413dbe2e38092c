import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { shortReference } from '../src/events/ids.js';
import { curl, type RunningGateway, startGateway, startHttpOrigin } from './harness/index.js';

/**
 * The event log under a hostile disk and a hostile end: a data folder that fills up, one
 * that is read-only from the start, and a proxy killed with SIGKILL under load. Filtering
 * must go on throughout, and every blocked request must be accounted for: written to the
 * store, or counted (and logged) as lost. Folders are real file systems the test mounts
 * (tests run as root, as CI does).
 */

const RULES = {
  'policy.yaml': `version: 1
default_profile: tieu-hoc
profiles:
  tieu-hoc:
    name: "Tiểu học"
    block_categories: [gambling]
`,
  'categories/gambling/domains': 'bet.test\n',
};

const mounts: string[] = [];
const dirs: string[] = [];
afterAll(() => {
  for (const dir of mounts.reverse()) {
    try {
      execFileSync('umount', ['-l', dir]);
    } catch {
      // already gone
    }
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A tmpfs of `size` (e.g. `4m`) on a fresh folder. Mounting must work here: a skipped test would hide a regression. */
function tmpfs(size: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'lachan-hostile-'));
  dirs.push(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0750`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

/** Fills the file system of `dir` to the last byte; returns the filler file. */
function fill(dir: string): string {
  const file = path.join(dir, 'filler');
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
    // The last partial block.
    try {
      for (;;) writeSync(fd, chunk, 0, 512);
    } catch {
      // full
    }
  } finally {
    closeSync(fd);
  }
  return file;
}

const agent = new Agent({ keepAlive: true, maxSockets: 8 });
afterAll(() => agent.destroy());

/** A GET through the proxy (absolute form); the status and the block page's reference. */
function get(proxyPort: number, url: string): Promise<{ status: number; reference: string | null }> {
  const host = new URL(url).host;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: proxyPort, path: url, headers: { host }, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        const match = /<dt>Mã số<\/dt><dd>([0-9A-Z]{4}-[0-9A-Z]{4})<\/dd>/.exec(body);
        resolve({ status: res.statusCode ?? 0, reference: match?.[1] ?? null });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function metrics(proxy: RunningGateway): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = /^(lachan_event[a-z_]*) (\d+)$/.exec(line);
    if (match) out[match[1]!] = Number(match[2]);
  }
  return out;
}

async function healthz(proxy: RunningGateway): Promise<{ status: number; text: string }> {
  const response = await fetch(`http://127.0.0.1:${proxy.adminPort}/healthz`);
  return { status: response.status, text: await response.text() };
}

async function waitFor(check: () => Promise<boolean>, what: string, tries = 300): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The events in the store, read as `lachan logs` would (beside the running proxy, or after it). */
function storedEvents(dataDir: string): { id: string; host: string }[] {
  const file = path.join(dataDir, 'events.db');
  if (!existsSync(file)) return [];
  const db = new Database(file);
  try {
    return db.prepare('SELECT id, host FROM events ORDER BY id').all() as { id: string; host: string }[];
  } finally {
    db.close();
  }
}

/** Sums the `lost` of every "events lost" log line. */
function loggedLosses(proxy: RunningGateway): number {
  return proxy.logs.filter((l) => l.msg === 'events lost: not recorded in the event store').reduce((sum, l) => sum + (l.lost as number), 0);
}

describe('the event log on a hostile disk', () => {
  it('keeps filtering on a full disk, bounds memory, counts and logs every lost event, says so in /healthz and /metrics, and recovers when space returns', async () => {
    const data = tmpfs('4m');
    const origin = await startHttpOrigin();
    const proxy = await startGateway({ rules: RULES, hosts: `127.0.0.1 bet.test ok.test\n`, args: ['--data', data, '--events-in-memory', '100'] });
    try {
      let sent = 0;
      for (let i = 0; i < 5; i++, sent++) expect((await get(proxy.port, `http://before${i}.bet.test/`)).status).toBe(403);
      await waitFor(async () => storedEvents(data).length === 5, 'the first events to be written');
      expect(await healthz(proxy)).toEqual({ status: 200, text: 'ok\n' });

      const filler = fill(data);
      // 400 blocked requests, each its own visit: every one gets its block page.
      const references = new Set<string>();
      for (let i = 0; i < 400; i += 8) {
        const replies = await Promise.all(Array.from({ length: 8 }, (_, j) => get(proxy.port, `http://full${i + j}.bet.test/page`)));
        for (const reply of replies) {
          expect(reply.status).toBe(403);
          references.add(reply.reference!);
          sent++;
        }
      }
      expect(references.size).toBe(400);
      // Allowed traffic still goes through, seen by a real client.
      expect((await curl(proxy.port, `http://ok.test:${origin.port}/`)).status).toBe(200);
      expect((await curl(proxy.port, 'http://again.bet.test/')).status).toBe(403);
      sent++;

      await waitFor(async () => (await metrics(proxy)).lachan_event_store_unwritable === 1, 'the store to be reported unwritable');
      const during = await metrics(proxy);
      // Memory holds at most --events-in-memory; the rest is counted.
      expect(during.lachan_events_dropped_total).toBeGreaterThan(0);
      expect(await healthz(proxy)).toEqual({ status: 200, text: 'ok\ndegraded: event-store-unwritable\n' });

      unlinkSync(filler);
      await waitFor(async () => (await metrics(proxy)).lachan_event_store_unwritable === 0, 'the store to recover by itself', 600);
      await waitFor(async () => (await metrics(proxy)).lachan_events_pending === storedEvents(data).length, 'the waiting events to be written');
      const after = await metrics(proxy);
      const stored = storedEvents(data);
      // Every blocked request accounted for: stored once, or counted as lost.
      expect(new Set(stored.map((e) => e.id)).size).toBe(stored.length);
      expect(stored.length + after.lachan_events_dropped_total).toBe(sent);
      expect(stored.length).toBeGreaterThanOrEqual(5 + 100);
      // ... and every loss logged, in a few lines rather than one each.
      expect(loggedLosses(proxy)).toBe(after.lachan_events_dropped_total);
      expect(proxy.logs.filter((l) => l.msg === 'event store unwritable: filtering continues; events wait in memory and the store is retried')).toHaveLength(1);
      expect(await healthz(proxy)).toEqual({ status: 200, text: 'ok\n' });

      // Written again as usual.
      expect((await get(proxy.port, 'http://later.bet.test/')).status).toBe(403);
      await waitFor(async () => storedEvents(data).some((e) => e.host === 'later.bet.test'), 'a new event to be written');
    } finally {
      await proxy.stop();
      origin.server.close();
    }
  }, 180_000);

  it('starts and filters on a read-only data folder, then writes what waited once the folder is writable', async () => {
    const data = tmpfs('8m');
    execFileSync('mount', ['-o', 'remount,ro', data]);
    const origin = await startHttpOrigin();
    const proxy = await startGateway({ rules: RULES, hosts: `127.0.0.1 bet.test ok.test\n`, args: ['--data', data] });
    try {
      const references: string[] = [];
      for (let i = 0; i < 20; i++) {
        const reply = await get(proxy.port, `http://ro${i}.bet.test/`);
        expect(reply.status).toBe(403);
        references.push(reply.reference!);
      }
      expect((await curl(proxy.port, `http://ok.test:${origin.port}/`)).status).toBe(200);
      expect((await metrics(proxy)).lachan_event_store_unwritable).toBe(1);
      expect(await healthz(proxy)).toEqual({ status: 200, text: 'ok\ndegraded: event-store-unwritable\n' });
      expect(existsSync(path.join(data, 'events.db'))).toBe(false);

      execFileSync('mount', ['-o', 'remount,rw', data]);
      await waitFor(async () => (await metrics(proxy)).lachan_event_store_unwritable === 0, 'the store to open by itself', 600);
      const stored = storedEvents(data);
      expect(stored.map((e) => shortReference(e.id)).sort()).toEqual([...references].sort());
      expect((await metrics(proxy)).lachan_events_dropped_total).toBe(0);
      // The key the run used is the folder's key now.
      expect(existsSync(path.join(data, 'client-key'))).toBe(true);
    } finally {
      await proxy.stop();
      origin.server.close();
    }
  }, 120_000);
});

describe('the event log when the proxy is killed', () => {
  it('loses at most the events of the turn in progress (one a client connection) to SIGKILL under load', async () => {
    const proxy = await startGateway({ rules: RULES, hosts: '127.0.0.1 bet.test\n' });
    const connections = 8;
    const received: string[] = [];
    let stop = false;
    let next = 0;
    const client = async (): Promise<void> => {
      while (!stop) {
        try {
          const reply = await get(proxy.port, `http://k${next++}.bet.test/`);
          if (reply.reference !== null) received.push(reply.reference);
        } catch {
          return; // the proxy is gone
        }
      }
    };
    const clients = Array.from({ length: connections }, client);
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (received.length >= 1_500) {
          clearInterval(check);
          resolve();
        }
      }, 5);
    });
    proxy.child.kill('SIGKILL');
    await proxy.stop();
    stop = true;
    await Promise.all(clients);
    const stored = new Set(storedEvents(proxy.dataDir).map((e) => shortReference(e.id)));
    const missing = received.filter((reference) => !stored.has(reference));
    expect(received.length).toBeGreaterThanOrEqual(1_500);
    expect(missing.length).toBeLessThanOrEqual(connections);
  }, 120_000);
});
