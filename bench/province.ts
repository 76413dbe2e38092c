/**
 * bench:province: a province's school days replayed into two `lachan central serve`
 * processes on one PostgreSQL database (docs/scaling.md), through the real ingest API.
 *
 *   npm run bench:province [-- --events 10000000 --schools 1000 --days 3 --processes 2 --in-flight 32]
 *
 * 1,000 gateways, each with a few hundred pseudonymous clients and a category mix like a
 * school's; most blocks come in the bursts at 7:30 and 13:30 (Vietnam time), the rest
 * over the school day. On the second day 10 % of the schools are offline and send that
 * day's events when they come back the next morning, with the morning's. 1 % of the
 * batches are sent again to the other process (an acknowledgement lost on the way), as
 * a reverse proxy would retry. The replay runs as fast as the collectors acknowledge, a
 * quarter hour of school time after another; the batches of one quarter hour go at once.
 *
 * Then: every event is in the database once and counted once in the roll-ups (nothing
 * lost or doubled), and the dashboard's aggregates (`GET /api/v1/stats`: the whole
 * range, one school, one category) are timed, median and worst of 7. One JSON line.
 * Not part of `npm test`: `--events 200000` runs in about a minute.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { openPostgresStore } from '../src/central/pg-store.js';
import { newEventId } from '../src/events/ids.js';
import type { WireEvent } from '../src/events/wire.js';
import { startPostgres } from '../test/harness/postgres.js';
import { argument } from './lib/args.js';

const EVENTS = argument('events', 10_000_000);
const SCHOOLS = argument('schools', 1_000);
const DAYS = argument('days', 3);
const PROCESSES = argument('processes', 2);
const IN_FLIGHT = argument('in-flight', 32);
const BATCH = 500;
const SLICE_MINUTES = 15;
const OFFLINE_SHARE = 0.1;
const RESEND_SHARE = 0.01;
const CLI = path.resolve(import.meta.dirname, '../src/cli/main.js');
const HOUR = 3_600_000;
const DAY = 86_400_000;
const VN_OFFSET = 7 * HOUR;

/** What a school's blocks look like by category (share of events). */
const CATEGORY_MIX: readonly [string, number][] = [
  ['social-networks', 0.34],
  ['games', 0.27],
  ['adult', 0.12],
  ['vpn', 0.07],
  ['gambling', 0.06],
  ['doh', 0.05],
  ['dating', 0.03],
  ['violence', 0.03],
  ['drugs', 0.02],
  ['self-harm', 0.01],
];
const PROFILES = ['tieu-hoc', 'thcs', 'thpt', 'giao-vien'];

/** Deterministic, so two runs replay the same province. */
let seed = 0x9e3779b9;
function random(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
}

function pick<T>(weighted: readonly [T, number][]): T {
  let r = random();
  for (const [value, weight] of weighted) if ((r -= weight) < 0) return value;
  return weighted[weighted.length - 1]![0];
}

function normalCdf(x: number): number {
  // Abramowitz–Stegun 7.1.26: plenty for slicing a school day.
  const t = 1 / (1 + 0.3275911 * Math.abs(x / Math.SQRT2));
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-(x * x) / 2);
  return x >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/** Share of a school day's events in each quarter hour from 6:00 to 18:00: bursts at 7:30 and 13:30 (σ 12 min), the rest 7:00–17:00. */
const SLICES = (() => {
  const first = 6 * 60;
  const shares: { minute: number; share: number }[] = [];
  for (let minute = first; minute < 18 * 60; minute += SLICE_MINUTES) {
    const burst = (centre: number) => normalCdf((minute + SLICE_MINUTES - centre) / 12) - normalCdf((minute - centre) / 12);
    const overlap = Math.max(0, Math.min(minute + SLICE_MINUTES, 17 * 60) - Math.max(minute, 7 * 60));
    shares.push({ minute, share: 0.35 * burst(7.5 * 60) + 0.35 * burst(13.5 * 60) + (0.3 * overlap) / 600 });
  }
  return shares;
})();

interface SchoolSim {
  readonly id: string;
  readonly token: string;
  /** Relative size: schools differ. */
  readonly weight: number;
  readonly clients: string[];
  readonly profile: string;
  /** Events not sent yet: an offline day's, and the fractional carry of each slice. */
  held: WireEvent[];
  carry: number;
}

function hosts(category: string): string {
  // A long tail of hosts a category, the first few most common.
  return `${category}-${Math.floor(400 * random() ** 3)}.example.vn`;
}

function eventAt(school: SchoolSim, time: number): WireEvent {
  const category = pick(CATEGORY_MIX);
  const host = hosts(category);
  return {
    id: newEventId(time),
    time,
    profile: random() < 0.1 ? 'giao-vien' : school.profile,
    category,
    reason: 'domain',
    rule: host,
    source: `rules/categories/${category}/domains:1`,
    host,
    path: '/',
    method: 'GET',
    client: school.clients[Math.floor(random() * school.clients.length)]!,
    count: 1 + Math.floor(random() ** 4 * 4),
  };
}

async function startCollector(dataDir: string, database: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [CLI, 'central', 'serve', '--port', '0', '--data', dataDir, '--database', database, '--rate-limit', '100000'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`collector exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; port?: number };
      if (entry.msg === 'listening' && typeof entry.port === 'number') resolve(entry.port);
    });
  });
  return { child, url: `http://127.0.0.1:${port}` };
}

async function send(url: string, school: SchoolSim, events: WireEvent[]): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(`${url}/api/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${school.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ school: school.id, events }),
    });
    if (response.status === 200) return ((await response.json()) as { stored: number }).stored;
    if (attempt >= 5 || response.status < 500) throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Runs `jobs` with at most `limit` at once. */
async function inParallel(jobs: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, jobs.length) }, async () => {
      while (next < jobs.length) await jobs[next++]!();
    }),
  );
}

function percentile(sorted: number[], p: number): number {
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!);
}

const server = await startPostgres();
const dirs: string[] = [];
const collectors: { child: ChildProcess; url: string }[] = [];
try {
  const database = await server.createDatabase();
  const setup = await openPostgresStore({ url: database, connections: 4 });
  const schools: SchoolSim[] = [];
  for (let i = 0; i < SCHOOLS; i++) {
    const created = await setup.addSchool(`Trường ${i + 1}`);
    const clients = Array.from(
      { length: 200 + Math.floor(random() * 600) },
      () =>
        Math.floor(random() * 2 ** 32)
          .toString(16)
          .padStart(8, '0') +
        Math.floor(random() * 2 ** 32)
          .toString(16)
          .padStart(8, '0'),
    );
    schools.push({ ...created, weight: 0.3 + 1.4 * random(), clients, profile: PROFILES[i % 3]!, held: [], carry: 0 });
  }
  for (let i = 0; i < PROCESSES; i++) {
    dirs.push(mkdtempSync(path.join(tmpdir(), `lachan-province-${i}-`)));
    collectors.push(await startCollector(dirs[i]!, database));
  }
  const totalWeight = schools.reduce((n, s) => n + s.weight, 0);
  const perWeightDay = EVENTS / DAYS / totalWeight;
  const offline = new Set(schools.filter(() => random() < OFFLINE_SHARE).map((s) => s.id));
  // School days ending yesterday (Vietnam time), inside the retention.
  const today = Math.floor((Date.now() + VN_OFFSET) / DAY);
  let generated = 0;
  let stored = 0;
  let batches = 0;
  let resent = 0;
  let peak = 0;
  const started = performance.now();
  for (let d = 0; d < DAYS; d++) {
    const dayStart = (today - DAYS + d) * DAY - VN_OFFSET;
    for (const [k, slice] of SLICES.entries()) {
      const jobs: (() => Promise<void>)[] = [];
      for (const [index, school] of schools.entries()) {
        const due = school.weight * perWeightDay * slice.share + school.carry;
        const count = Math.floor(due);
        school.carry = due - count;
        const from = dayStart + slice.minute * 60_000;
        for (let i = 0; i < count; i++) school.held.push(eventAt(school, from + Math.floor(random() * SLICE_MINUTES * 60_000)));
        generated += count;
        // Offline all of the second day; back the next morning with everything held.
        if (d === 1 && offline.has(school.id) && DAYS > 1) continue;
        if (school.held.length === 0) continue;
        const events = school.held;
        school.held = [];
        for (let at = 0; at < events.length; at += BATCH) {
          const batch = events.slice(at, at + BATCH);
          const target = (index + at / BATCH) % PROCESSES;
          jobs.push(async () => {
            const added = await send(collectors[target]!.url, school, batch);
            stored += added;
            batches++;
            if (random() < RESEND_SHARE) {
              resent++;
              const again = await send(collectors[(target + 1) % PROCESSES]!.url, school, batch);
              stored += again;
            }
          });
        }
      }
      const sliceStarted = performance.now();
      const before = stored;
      await inParallel(jobs, IN_FLIGHT);
      const seconds = (performance.now() - sliceStarted) / 1000;
      if (seconds > 0.5) peak = Math.max(peak, (stored - before) / seconds);
      if (process.env.LACHAN_BENCH_VERBOSE)
        process.stderr.write(`day ${d + 1} ${slice.minute / 60}h: ${jobs.length} batches, ${stored - before} new in ${seconds.toFixed(2)} s\n`);
      if (k === 0 && d > 0) process.stderr.write(`day ${d + 1}: ${stored} stored, ${Math.round(stored / ((performance.now() - started) / 1000))}/s so far\n`);
    }
  }
  // The last day's offline schools (if the run ends on their day) send what they hold.
  await inParallel(
    schools
      .filter((s) => s.held.length > 0)
      .flatMap((school) => {
        const jobs: (() => Promise<void>)[] = [];
        for (let at = 0; at < school.held.length; at += BATCH) {
          const batch = school.held.slice(at, at + BATCH);
          jobs.push(async () => {
            const added = await send(collectors[0]!.url, school, batch);
            stored += added;
          });
        }
        return jobs;
      }),
    IN_FLIGHT,
  );
  const seconds = (performance.now() - started) / 1000;

  const { rows: counts } = await setup.pool.query<{ events: number; distinct: number; rolled: number }>(
    'SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM (SELECT DISTINCT school, id FROM events) AS d) AS distinct, (SELECT coalesce(sum(n), 0)::bigint FROM r_category_day) AS rolled',
  );
  const check = counts[0]!;

  // The dashboard's aggregates over everything stored, as an administrator asks them.
  const fromDay = new Date((today - DAYS) * DAY).toISOString().slice(0, 10);
  const toDay = new Date((today - 1) * DAY).toISOString().slice(0, 10);
  const adminTokens = dirs.map((dir) => readFileSync(path.join(dir, 'admin-token'), 'utf8').trim());
  const timed = async (query: string): Promise<{ median: number; worst: number }> => {
    const times: number[] = [];
    for (let i = 0; i < 7; i++) {
      const t = performance.now();
      const response = await fetch(`${collectors[i % PROCESSES]!.url}/api/v1/stats?from=${fromDay}&to=${toDay}${query}`, {
        headers: { authorization: `Bearer ${adminTokens[i % PROCESSES]}` },
      });
      if (response.status !== 200) throw new Error(`stats answered ${response.status}`);
      await response.arrayBuffer();
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    return { median: percentile(times, 0.5), worst: Math.round(times[times.length - 1]!) };
  };
  const whole = await timed('');
  const oneSchool = await timed(`&school=${schools[0]!.id}`);
  const oneCategory = await timed('&category=gambling');
  await setup.close();
  process.stdout.write(
    `${JSON.stringify({
      bench: 'province',
      schools: SCHOOLS,
      days: DAYS,
      processes: PROCESSES,
      inFlight: IN_FLIGHT,
      generated,
      batches,
      resentBatches: resent,
      offlineSchools: offline.size,
      acknowledgedNew: stored,
      eventsInDatabase: check.events,
      distinctEvents: check.distinct,
      countedInRollups: check.rolled,
      nothingLostOrDoubled: check.events === generated && check.distinct === generated && check.rolled === generated && stored === generated,
      seconds: Math.round(seconds),
      eventsPerSecond: Math.round(generated / seconds),
      peakQuarterHourEventsPerSecond: Math.round(peak),
      statsWholeRangeMs: whole,
      statsOneSchoolMs: oneSchool,
      statsOneCategoryMs: oneCategory,
    })}\n`,
  );
} finally {
  // SIGKILL after 10 s: once, after a full run, both collectors outlived SIGTERM (not understood yet).
  await Promise.all(
    collectors.map(
      (c) =>
        new Promise((resolve) => {
          if (c.child.exitCode !== null) return resolve(null);
          const kill = setTimeout(() => c.child.kill('SIGKILL'), 10_000);
          c.child.once('exit', () => resolve(clearTimeout(kill)));
          c.child.kill('SIGTERM');
        }),
    ),
  );
  await server.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
