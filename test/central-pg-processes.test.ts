/**
 * Two `lachan central serve` processes on one PostgreSQL database, as behind a reverse
 * proxy (docs/contract.md §10): each with a data folder of its own (two machines), so all
 * they share is the database. The same batch sent to both at once is stored and counted
 * once; a session opened on one works, CSRF included, on the other; both sign the policy
 * with the one key the database holds, at the same version.
 */
import { createPublicKey, verify } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Collector, lachan, login, PASSWORD, type PostgresServer, startCollector, startPostgres, stopCollector, wireEvent } from './harness/index.js';

let server: PostgresServer;
let database: string;
const dirs: string[] = [];
const collectors: Collector[] = [];
let school: { id: string; token: string };

function central(args: string[], input?: string) {
  const result = lachan(['central', ...args, '--data', dirs[0]!, '--database', database], input);
  expect(result.code, result.stderr).toBe(0);
  return result;
}

/** The one admin token of the database, in the folder of whichever process made it (docs/scaling.md). */
const adminToken = () => readFileSync(path.join(dirs.find((dir) => existsSync(path.join(dir, 'admin-token')))!, 'admin-token'), 'utf8').trim();

beforeAll(async () => {
  server = await startPostgres();
  database = await server.createDatabase();
  for (let i = 0; i < 2; i++) dirs.push(mkdtempSync(path.join(tmpdir(), `lachan-pg-process-${i}-`)));
  // Both start together: the schema is applied once, under the advisory lock.
  collectors.push(...(await Promise.all(dirs.map((dir) => startCollector(dir, ['--database', database, '--rate-limit', '1000'])))));
  school = JSON.parse(central(['school', 'add', '--name', 'TH Hai Tiến Trình', '--json']).stdout) as { id: string; token: string };
  central(['user', 'add', 'quantri', '--role', 'admin'], `${PASSWORD}\n`);
});

afterAll(async () => {
  await Promise.all(collectors.map(stopCollector));
  await server?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('two collector processes on one PostgreSQL database', () => {
  it('store and count a batch sent to both at once exactly once', async () => {
    const events = Array.from({ length: 400 }, (_, i) =>
      wireEvent({ host: `h${i % 7}.example`, category: i % 2 === 0 ? 'gambling' : 'adult', client: `${String(i % 10).padStart(16, '0')}` }),
    );
    const send = (collector: Collector) =>
      fetch(`${collector.url}/api/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${school.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ school: school.id, events }),
      }).then(async (r) => {
        expect(r.status).toBe(200);
        return (await r.json()) as { acked: string[]; stored: number; duplicates: number };
      });
    // Each process several times, all at once: only the database can keep them apart.
    const replies = await Promise.all([...collectors, ...collectors, ...collectors].map(send));
    for (const reply of replies) expect(reply.acked).toHaveLength(events.length);
    expect(replies.reduce((n, r) => n + r.stored, 0)).toBe(events.length);
    expect(replies.reduce((n, r) => n + r.duplicates, 0)).toBe(events.length * (replies.length - 1));

    for (const collector of collectors) {
      const stats = (await (
        await fetch(`${collector.url}/api/v1/stats?school=${school.id}`, { headers: { authorization: `Bearer ${adminToken()}` } })
      ).json()) as {
        total: number;
        pendingRollup: number;
        byCategoryDay: { category: string | null; count: number }[];
      };
      expect(stats).toMatchObject({ total: events.length, pendingRollup: 0 });
      expect(stats.byCategoryDay.filter((r) => r.category === 'gambling').reduce((n, r) => n + r.count, 0)).toBe(events.length / 2);
    }
    const stored = central(['events', '--school', school.id, '--json']).stdout.trim().split('\n');
    expect(new Set(stored.map((l) => (JSON.parse(l) as { id: string }).id)).size).toBe(events.length);
    expect(stored).toHaveLength(events.length);
  });

  it('accept a session and its CSRF token from one process on the other', async () => {
    const [a, b] = collectors as [Collector, Collector];
    const session = await login(a.url, 'quantri');
    const page = await fetch(`${b.url}/`, { headers: { cookie: session.cookie } });
    expect(page.status).toBe(200);
    // A change posted to the other process with the CSRF token the first one issued.
    const posted = await fetch(`${b.url}/api/v1/district-policy/rules`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: session.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ action: 'block', kind: 'domain', value: 'lode.example', category: 'gambling', csrf: session.csrf }).toString(),
    });
    expect(posted.status).toBe(303);
    const forged = await fetch(`${b.url}/api/v1/district-policy/rules`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: session.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ action: 'block', kind: 'domain', value: 'khac.example', category: 'gambling', csrf: 'sai' }).toString(),
    });
    expect(forged.status).toBe(403);
    // Logged out on the second: the first refuses the session at once.
    const logout = await fetch(`${b.url}/logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: session.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: session.csrf }).toString(),
    });
    expect(logout.status).toBe(303);
    expect((await fetch(`${a.url}/`, { headers: { cookie: session.cookie }, redirect: 'manual' })).status).toBe(303);
  });

  it('sign the policy with the one key in the database, at the same version', async () => {
    const publicKey = createPublicKey(central(['key']).stdout);
    const overlays = await Promise.all(
      collectors.map(async (collector) => {
        const response = await fetch(`${collector.url}/api/v1/policy`, { headers: { authorization: `Bearer ${school.token}` } });
        expect(response.status).toBe(200);
        const body = Buffer.from(await response.arrayBuffer());
        expect(verify(null, body, publicKey, Buffer.from(response.headers.get('x-lachan-signature')!, 'base64'))).toBe(true);
        return JSON.parse(body.toString()) as { version: number; categories: Record<string, { block_domains: string[] }> };
      }),
    );
    expect(overlays[0]!.version).toBeGreaterThan(0);
    expect(overlays[1]).toEqual(overlays[0]);
    expect(overlays[0]!.categories.gambling!.block_domains).toContain('lode.example');
  });
});
