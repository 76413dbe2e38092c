/**
 * bench:ingest-postgres: the collector's PostgreSQL store (src/central/pg-store.ts)
 * taking batches straight through its interface (no HTTP: bench:ingest measures that on
 * SQLite), against a throwaway PostgreSQL server started for the run.
 *
 *   npm run bench:ingest-postgres [-- --batches 200 --concurrency 8 --processes 2]
 *
 * `--batches` batches of 500 events from 20 schools, `--concurrency` in flight per
 * store, spread over `--processes` stores on the one database (as collector processes
 * would be); then each batch again (all duplicates); then statistics of a month, median
 * of 7. Prints one JSON line.
 */
import { newEventId } from '../src/events/ids.js';
import type { WireEvent } from '../src/events/wire.js';
import { openPostgresStore, type PostgresCentralStore } from '../src/central/pg-store.js';
import { startPostgres } from '../test/harness/postgres.js';
import { argument } from './lib/args.js';

const BATCHES = argument('batches', 200);
const CONCURRENCY = argument('concurrency', 8);
const PROCESSES = argument('processes', 2);
const BATCH_SIZE = 500;
const CATEGORIES = ['adult', 'gambling', 'drugs', 'violence', 'dating', 'games', 'vpn', 'phishing', 'malware', 'social'];
const NOW = Date.now();

function batch(n: number): WireEvent[] {
  return Array.from({ length: BATCH_SIZE }, (_, i) => {
    const k = n * BATCH_SIZE + i;
    const time = NOW - (k % (30 * 86_400)) * 1000;
    const host = Math.floor(5_000 * (((k * 7919) % 10_007) / 10_007) ** 3);
    return {
      id: newEventId(time),
      time,
      profile: ['mam-non', 'tieu-hoc', 'thcs', 'thpt', 'giao-vien'][k % 5]!,
      category: CATEGORIES[host % CATEGORIES.length]!,
      reason: 'domain',
      rule: `h${host}.example.vn`,
      source: 'rules/categories/x/domains:1',
      host: `h${host}.example.vn`,
      path: '/',
      method: 'GET',
      client: (k % 4096).toString(16).padStart(8, '0'),
      count: 1,
    };
  });
}

async function run(stores: PostgresCentralStore[], schools: string[], batches: WireEvent[][]): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async (store: PostgresCentralStore) => {
    for (let n = next++; n < batches.length; n = next++) await store.ingest(schools[n % schools.length]!, batches[n]!, Date.now());
  };
  await Promise.all(stores.flatMap((store) => Array.from({ length: CONCURRENCY }, () => worker(store))));
  return ((batches.length * BATCH_SIZE) / (performance.now() - started)) * 1000;
}

const server = await startPostgres();
try {
  const url = await server.createDatabase();
  const stores = await Promise.all(Array.from({ length: PROCESSES }, () => openPostgresStore({ url, connections: CONCURRENCY })));
  const schools = await Promise.all(Array.from({ length: 20 }, (_, i) => stores[0]!.addSchool(`Trường ${i}`).then((s) => s.id)));
  const batches = Array.from({ length: BATCHES }, (_, n) => batch(n));
  const fresh = await run(stores, schools, batches);
  const duplicates = await run(stores, schools, batches);
  const today = new Date(NOW + 7 * 3_600_000).toISOString().slice(0, 10);
  const monthAgo = new Date(NOW + 7 * 3_600_000 - 30 * 86_400_000).toISOString().slice(0, 10);
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const started = performance.now();
    await stores[0]!.stats({ fromDay: monthAgo, toDay: today });
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const stored = (await stores[0]!.stats({ fromDay: monthAgo, toDay: today })).total;
  await Promise.all(stores.map((s) => s.close()));
  process.stdout.write(
    `${JSON.stringify({ bench: 'ingest-postgres', events: BATCHES * BATCH_SIZE, stored, processes: PROCESSES, concurrency: CONCURRENCY, eventsPerSecond: Math.round(fresh), duplicatesPerSecond: Math.round(duplicates), monthStatsMedianMs: Math.round(times[3]!), monthStatsWorstMs: Math.round(times[6]!) })}\n`,
  );
} finally {
  await server.stop();
}
