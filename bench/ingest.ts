/**
 * bench:ingest: the district collector under load.
 *
 *   npm run bench:ingest [-- --events 10000000 --batches 400 --connections 8 --data DIR]
 *
 * 1. Generates `--events` synthetic blocked-access events (default 200,000) straight
 *    into a collector database in bulk (SQL, indexes built after the load, then the
 *    store's own roll-up pass): 200 schools, 400 days, 5 profiles, 10 categories, 5,000
 *    hosts with a skewed (cubic) popularity, each host in one category.
 * 2. Starts `lachan central serve` on that database and measures ingest: `--batches`
 *    batches of 500 events (gzip JSON, prepared beforehand) from 20 schools over
 *    `--connections` keep-alive connections. Target ≥ 20,000 events/s. Meanwhile the
 *    collector moves events from its inbox into the store and counts them into the
 *    roll-ups, as in production (src/central/event-writer.ts); the queries below wait
 *    until every acknowledged event is counted.
 * 3. Measures the dashboard API over HTTP: statistics (year, month, one school,
 *    one category) and event pages (filtered, and the next page by cursor), each
 *    repeated; reports median and worst. Target: aggregates ≤ 300 ms.
 *
 * Prints a table, then one JSON line (`{"bench":"ingest",…}`) for CI to keep.
 * `BENCH_COLLECTOR_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR"` profiles the collector
 * (its main thread and the writer thread each write a profile).
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { Pool } from 'undici';
import { loadOrCreateAdminToken } from '../src/central/admin-token.js';
import { CENTRAL_DB_FILE, EVENT_INDEXES, openSqliteStore } from '../src/central/sqlite-store.js';
import { newEventId } from '../src/events/ids.js';
import type { WireEvent } from '../src/events/wire.js';
import { argument } from './lib/args.js';
import { startCollector } from './lib/collector.js';

function stringArgument(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? undefined : process.argv[index + 1];
}

const EVENTS = argument('events', 200_000);
const BATCHES = argument('batches', 200);
const CONNECTIONS = argument('connections', 8);
const REPEATS = argument('repeats', 7);
const BATCH_SIZE = 500;
const SCHOOLS = 200;
const HOSTS = 5_000;
const DAYS = 400;
const CATEGORIES = ['adult', 'gambling', 'drugs', 'violence', 'dating', 'games', 'vpn', 'phishing', 'malware', 'social'];
const PROFILES = ['mam-non', 'tieu-hoc', 'thcs', 'thpt', 'giao-vien'];
const CLI = path.resolve(import.meta.dirname, '../src/cli/main.js');

const keepData = stringArgument('data');
const dataDir = keepData ?? mkdtempSync(path.join(tmpdir(), 'lachan-bench-ingest-'));

function log(message: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${message}\n`);
}

/** Bulk load: rows by SQL in chunks, indexes afterwards, roll-ups by GROUP BY. */
function generate(): { seconds: number; bytes: number } {
  const started = performance.now();
  // Creates the schema through the store, then works on the file directly.
  const store = openSqliteStore({ dataDir });
  void store.close();
  const db = new Database(path.join(dataDir, CENTRAL_DB_FILE));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -524288');
  db.pragma('temp_store = MEMORY');
  const existing = db.prepare('SELECT count(*) FROM events').pluck().get() as number;
  if (existing >= EVENTS) {
    log(`reusing ${existing} events in ${dataDir}`);
    db.close();
    return { seconds: 0, bytes: 0 };
  }
  const insertSchool = db.prepare('INSERT OR IGNORE INTO schools (id, name, token_hash, created_at) VALUES (?, ?, ?, ?)');
  for (let i = 0; i < SCHOOLS; i++) insertSchool.run(`s${String(i).padStart(11, '0')}`, `Trường ${i}`, randomBytes(32), Date.now());

  for (const index of ['events_time', 'events_school_time', 'events_host_time']) db.exec(`DROP INDEX IF EXISTS ${index}`);
  const end = Date.now();
  const span = DAYS * 86_400_000;
  const chunk = 500_000;
  const insert = db.prepare(`
    WITH RECURSIVE seq(i) AS (SELECT @first UNION ALL SELECT i + 1 FROM seq WHERE i < @last),
    draw AS MATERIALIZED (
      SELECT i,
             CAST(pow((abs(random()) % 1000000) / 1000000.0, 3) * ${HOSTS} AS INTEGER) AS h,
             abs(random()) AS r1, abs(random()) AS r2, abs(random()) AS r3
      FROM seq)
    INSERT INTO events (id, school, time, profile, category, reason, rule, source, host, path, method, client, received_at)
    SELECT printf('BENCH%021d', i),
           printf('s%011d', r1 % ${SCHOOLS}),
           @end - r2 % ${span},
           json_extract(@profiles, '$[' || (r3 % 5) || ']'),
           json_extract(@categories, '$[' || (h % 10) || ']'),
           'domain', 'h' || h || '.example.vn', 'rules/categories/x/domains:1',
           'h' || h || '.example.vn', '/p/' || (r3 % 1000), 'GET',
           printf('%016x', r1 % 100000), @end
    FROM draw`);
  for (let first = 0; first < EVENTS; first += chunk) {
    const last = Math.min(EVENTS, first + chunk) - 1;
    db.transaction(() => insert.run({ first, last, end, profiles: JSON.stringify(PROFILES), categories: JSON.stringify(CATEGORIES) }))();
    log(`generated ${last + 1} events`);
  }
  for (const ddl of EVENT_INDEXES) {
    db.exec(ddl);
    log(`built ${ddl.split(' ')[2]}`);
  }
  db.close();
  // The store's own roll-up pass, as a running collector would do it.
  const rolling = openSqliteStore({ dataDir });
  rolling.rollUp();
  void rolling.close();
  log('rolled up');
  const after = new Database(path.join(dataDir, CENTRAL_DB_FILE));
  after.exec('ANALYZE');
  after.pragma('wal_checkpoint(TRUNCATE)');
  const bytes = (after.prepare('PRAGMA page_count').pluck().get() as number) * (after.prepare('PRAGMA page_size').pluck().get() as number);
  after.close();
  return { seconds: (performance.now() - started) / 1000, bytes };
}

function syntheticBatch(school: string, n: number): Buffer {
  const now = Date.now();
  const events: WireEvent[] = [];
  for (let i = 0; i < n; i++) {
    const h = Math.floor(Math.random() ** 3 * HOSTS);
    events.push({
      id: newEventId(now),
      time: now - Math.floor(Math.random() * 3_600_000),
      profile: PROFILES[i % 5]!,
      category: CATEGORIES[h % 10]!,
      reason: 'domain',
      rule: `h${h}.example.vn`,
      source: 'rules/categories/x/domains:1',
      host: `h${h}.example.vn`,
      path: `/p/${i}`,
      method: 'GET',
      client: randomBytes(8).toString('hex'),
    });
  }
  return gzipSync(JSON.stringify({ school, events }));
}

async function measureIngest(url: string, schools: { id: string; token: string }[]) {
  const bodies = Array.from({ length: BATCHES }, (_, i) => ({
    school: schools[i % schools.length]!,
    body: syntheticBatch(schools[i % schools.length]!.id, BATCH_SIZE),
  }));
  const pool = new Pool(url, { connections: CONNECTIONS, pipelining: 1 });
  let next = 0;
  let acked = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (next < bodies.length) {
        const { school, body } = bodies[next++]!;
        const response = await pool.request({
          path: '/api/v1/events',
          method: 'POST',
          headers: { authorization: `Bearer ${school.token}`, 'content-type': 'application/json', 'content-encoding': 'gzip' },
          body,
        });
        const reply = (await response.body.json()) as { acked?: string[] };
        if (response.statusCode !== 200) throw new Error(`ingest answered ${response.statusCode}: ${JSON.stringify(reply)}`);
        acked += reply.acked!.length;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  return { events: acked, seconds, eventsPerSecond: Math.round(acked / seconds) };
}

function isoDay(offsetDays: number): string {
  return new Date(Date.now() + 25_200_000 - offsetDays * 86_400_000).toISOString().slice(0, 10);
}

async function measureQueries(url: string, adminToken: string) {
  const headers = { authorization: `Bearer ${adminToken}` };
  const get = async (query: string): Promise<{ ms: number; body: unknown }> => {
    const started = performance.now();
    const response = await fetch(`${url}${query}`, { headers });
    const body: unknown = await response.json();
    if (response.status !== 200) throw new Error(`${query} answered ${response.status}: ${JSON.stringify(body)}`);
    return { ms: performance.now() - started, body };
  };
  // Let the collector fold the ingest burst into its roll-ups, as it does within seconds.
  while (((await get(`/api/v1/stats?from=${isoDay(0)}&to=${isoDay(0)}`)).body as { pendingRollup: number }).pendingRollup > 0) {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const firstPage = (await get('/api/v1/events?limit=100&category=gambling')).body as { nextCursor: string };
  const queries: [string, string, boolean][] = [
    ['stats, all schools, 365 days', `/api/v1/stats?from=${isoDay(364)}&to=${isoDay(0)}`, true],
    ['stats, all schools, 30 days', `/api/v1/stats?from=${isoDay(29)}&to=${isoDay(0)}`, true],
    ['stats, one school, 365 days', `/api/v1/stats?school=s00000000007&from=${isoDay(364)}&to=${isoDay(0)}`, true],
    ['stats, one category+profile, 365 days', `/api/v1/stats?category=gambling&profile=thcs&from=${isoDay(364)}&to=${isoDay(0)}`, true],
    ['stats, one profile, 30 days', `/api/v1/stats?profile=thcs&from=${isoDay(29)}&to=${isoDay(0)}`, true],
    ['events, newest 100', '/api/v1/events?limit=100', false],
    ['events, one school, newest 100', '/api/v1/events?school=s00000000042&limit=100', false],
    ['events, one host, 30 days', `/api/v1/events?host=h3.example.vn&from=${Date.now() - 30 * 86_400_000}&limit=100`, false],
    ['events, category, next page by cursor', `/api/v1/events?limit=100&category=gambling&cursor=${firstPage.nextCursor}`, false],
  ];
  const results: { name: string; medianMs: number; maxMs: number; aggregate: boolean }[] = [];
  for (const [name, query, aggregate] of queries) {
    const times: number[] = [];
    for (let i = 0; i < REPEATS; i++) times.push((await get(query)).ms);
    times.sort((a, b) => a - b);
    results.push({ name, medianMs: Number(times[Math.floor(times.length / 2)]!.toFixed(1)), maxMs: Number(times.at(-1)!.toFixed(1)), aggregate });
  }
  return results;
}

async function main(): Promise<void> {
  log(`data in ${dataDir}; generating ${EVENTS} events`);
  const generated = generate();
  const store = openSqliteStore({ dataDir });
  const schools = await Promise.all(Array.from({ length: 20 }, (_, i) => store.addSchool(`Trường đo tải ${i}`)));
  await store.close();
  const adminToken = loadOrCreateAdminToken(dataDir);
  const nodeArgs = (process.env.BENCH_COLLECTOR_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const collector = await startCollector({ cli: CLI, data: dataDir, rateLimit: 1_000_000, nodeArgs });
  try {
    log(`ingesting ${BATCHES} batches of ${BATCH_SIZE} over ${CONNECTIONS} connections`);
    const ingest = await measureIngest(collector.url, schools);
    log('querying');
    const queries = await measureQueries(collector.url, adminToken);
    const worstAggregate = Math.max(...queries.filter((q) => q.aggregate).map((q) => q.maxMs));

    const rows: [string, string][] = [
      ['events in the database', `${EVENTS.toLocaleString('en')} (+${ingest.events.toLocaleString('en')} ingested)`],
      ['bulk generation', generated.seconds ? `${generated.seconds.toFixed(1)} s, ${(generated.bytes / 1024 ** 2).toFixed(0)} MiB` : 'reused'],
      ['ingest', `${ingest.eventsPerSecond.toLocaleString('en')} events/s (${ingest.events} in ${ingest.seconds.toFixed(2)} s; target ≥ 20,000)`],
      ...queries.map((q): [string, string] => [q.name, `median ${q.medianMs} ms, worst ${q.maxMs} ms`]),
      ['worst aggregate', `${worstAggregate} ms (target ≤ 300)`],
    ];
    const width = Math.max(...rows.map(([name]) => name.length));
    for (const [name, value] of rows) process.stdout.write(`${name.padEnd(width)}  ${value}\n`);
    process.stdout.write(
      `${JSON.stringify({ bench: 'ingest', events: EVENTS, ingestEventsPerSecond: ingest.eventsPerSecond, batches: BATCHES, connections: CONNECTIONS, worstAggregateMs: worstAggregate, queries })}\n`,
    );
  } finally {
    await collector.stop();
    if (keepData === undefined) rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:ingest failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
