import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStore, type PostgresCentralStore } from '../src/central/pg-store.js';
import type { WireEvent } from '../src/events/wire.js';
import { type PostgresServer, startPostgres, wireEvent } from './harness/index.js';

/**
 * The PostgreSQL store's ingest as gateways load it (docs/contract.md §10): batches whose
 * ids rise, as a gateway makes them, go in without PostgreSQL sorting them; batches of
 * many schools arriving together share a statement. Whichever way a batch goes in, an
 * event is stored once and counted once in the roll-ups.
 */
let postgres: PostgresServer;
beforeAll(async () => {
  postgres = await startPostgres();
}, 120_000);
afterAll(async () => {
  await postgres?.stop();
});

const DAY_START = Date.UTC(2026, 10, 2, 1, 0, 0);

/** `count` events of a gateway in time order (rising ids), from `from` ms into the day. */
function gatewayBatch(count: number, from: number): WireEvent[] {
  return Array.from({ length: count }, (_, i) =>
    wireEvent({ time: DAY_START + from + i * 1_000, host: `h${i % 7}.example.vn`, category: i % 4 === 0 ? null : 'games', count: 1 + (i % 3) }),
  );
}

async function storedAndCounted(store: PostgresCentralStore): Promise<{ events: number; rolledUp: number; byHost: number; visits: number }> {
  const { rows } = await store.pool.query<{ events: number; rolled_up: number; by_host: number; visits: number }>(
    `SELECT (SELECT count(*)::int FROM events) AS events, (SELECT coalesce(sum(n), 0)::int FROM r_category_day) AS rolled_up,
            (SELECT coalesce(sum(n), 0)::int FROM r_school_host_month) AS by_host, (SELECT coalesce(sum(count), 0)::int FROM events) AS visits`,
  );
  const row = rows[0]!;
  return { events: row.events, rolledUp: row.rolled_up, byHost: row.by_host, visits: row.visits };
}

describe('PostgreSQL ingest, batches as gateways send them', () => {
  it('stores and counts once the batches of many schools sent at once, again, and out of order', async () => {
    const url = await postgres.createDatabase();
    const [one, two] = await Promise.all([openPostgresStore({ url }), openPostgresStore({ url })]);
    try {
      const schools = await Promise.all(Array.from({ length: 12 }, (_, i) => one.addSchool(`Trường ${i + 1}`)));
      const batches = schools.map((school, i) => ({ school: school.id, events: gatewayBatch(40 + i, i * 100_000) }));
      // All at once to one process: its two statements take them in groups of several schools.
      const first = await Promise.all(batches.map((b) => one.ingest(b.school, b.events, Date.now())));
      expect(first.map((r) => r.stored)).toEqual(batches.map((b) => b.events.length));
      const total = batches.reduce((n, b) => n + b.events.length, 0);
      expect(await storedAndCounted(one)).toMatchObject({ events: total, rolledUp: total, byHost: total });

      // Each sent again to the other process, half of them reversed (ids falling) and with an event twice.
      const again = await Promise.all(
        batches.map((b, i) => two.ingest(b.school, i % 2 === 0 ? b.events : [...b.events].reverse().concat(b.events[0]!), Date.now())),
      );
      expect(again.map((r) => r.stored)).toEqual(batches.map(() => 0));
      expect(again.map((r) => r.acked.length)).toEqual(batches.map((b, i) => b.events.length + (i % 2 === 0 ? 0 : 1)));

      // New events after the stored ones in the same batches, to both processes at once: stored once, whichever took them.
      // Every other one ends with its last event again, for more requests: stored once, with the higher count.
      const more = schools.map((school, i) => {
        const events = [...batches[i]!.events.slice(-5), ...gatewayBatch(10, 60_000 + i * 100_000)];
        return { school: school.id, events: i % 2 === 0 ? events : [...events, { ...events.at(-1)!, count: 9 }] };
      });
      const both = await Promise.all([
        ...more.map((b) => one.ingest(b.school, b.events, Date.now())),
        ...more.map((b) => two.ingest(b.school, b.events, Date.now())),
      ]);
      expect(both.reduce((n, r) => n + r.stored, 0)).toBe(schools.length * 10);
      const unique = new Map<string, number>();
      for (const b of [...batches, ...more])
        for (const e of b.events) unique.set(`${b.school} ${e.id}`, Math.max(e.count ?? 1, unique.get(`${b.school} ${e.id}`) ?? 0));
      const visits = [...unique.values()].reduce((sum, n) => sum + n, 0);
      const stored = total + schools.length * 10;
      expect(unique.size).toBe(stored);
      expect(await storedAndCounted(two)).toEqual({ events: stored, rolledUp: stored, byHost: stored, visits });
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  }, 120_000);

  it('refuses only the batch PostgreSQL refuses, not the schools that shared its statement', async () => {
    const store = await openPostgresStore({ url: await postgres.createDatabase() });
    try {
      const schools = await Promise.all(Array.from({ length: 4 }, (_, i) => store.addSchool(`Trường ${i + 1}`)));
      // A count past PostgreSQL's integer (22003): the wire check never lets one through, as
      // it no longer lets a NUL reach a store (wire.ts withoutNul). Sent at once, the batches
      // after the first wait for the statement in flight and go together in the next.
      const batches = schools.map((school, i) => ({
        school: school.id,
        events: gatewayBatch(5, i * 100_000).map((e, j) => (i === 2 && j === 3 ? { ...e, count: 2 ** 31 } : e)),
      }));
      const outcomes = await Promise.allSettled(batches.map((b) => store.ingest(b.school, b.events, Date.now())));
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
      expect(await storedAndCounted(store)).toMatchObject({ events: 15, rolledUp: 15 });
    } finally {
      await store.close();
    }
  }, 120_000);
});
