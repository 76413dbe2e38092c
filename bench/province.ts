/**
 * bench:province: a province's school days replayed into two `lachan central serve`
 * processes on one PostgreSQL database (docs/scaling.md), through the real ingest API.
 *
 *   npm run bench:province [-- --events 1000000 --schools 1000 --days 3 --processes 2 --backlog 100000 --preload 0]
 *
 * The province: 1,000 gateways, each with a few hundred pseudonymous clients and a
 * category mix like a school's; most blocks come in the bursts at 7:30 and 13:30
 * (Vietnam time), the rest over the school day. On the second day 10 % of the schools
 * are offline and send that day's events when they come back the next morning.
 *
 * The gateways behave like the real shipper (src/events/shipper.ts): each keeps ONE
 * POST in flight (gzip JSON) and, when it is acknowledged, sends everything it has
 * queued, up to 500 events; a catch-up is paced at 2,000 events/s a gateway, as the
 * shipper's. 1 % of the acknowledged batches are sent again to the other process (the
 * acknowledgement lost on the way, a reverse proxy retrying elsewhere).
 *
 * The replay compresses time: a clock runs through the school days a minute of school
 * time at a step and hands each gateway that minute's events, in time order, as soon as
 * the collectors have taken what came before, i.e. while fewer than `--backlog` events
 * wait in the gateways' queues (the offline day held back does not count). The
 * collectors are never idle and never more than that backlog behind the schools, so
 * under load a gateway's queue grows while its POST is in flight and its next batch is
 * bigger, exactly as a real shipper's against a slow collector: batch sizes come out of
 * the collectors' speed, and are reported (distribution) with the sustained rate (the
 * whole replay) and the peak (the best 10 s of acknowledgements).
 *
 * `--preload N` first stores N generated events (the school days before the replay)
 * through the store's ingest directly, in large batches: the way to time the
 * dashboard's aggregates over 10 M events without replaying them over HTTP.
 *
 * What stands for the gateways is made cheap, as those 1,000 machines are not on this one:
 * before the clock (and the CPU count) starts, every school day is generated and each
 * gateway's events serialised once into one JSON text, in time order, so a batch is a
 * slice of it between the school's prefix and `]}`; inside the timed replay a gateway
 * only gzips that (as the shipper does, zlib's default level) and writes it with its
 * request head on a plain keep-alive connection (bench/lib/gateway-connection.ts), reads
 * the acknowledgement's counts (not its ids: the collector acknowledges every id or
 * answers an error) and sends the same bytes again for a resend.
 *
 * Then: every event is in the database once and counted once in the roll-ups (nothing
 * lost or doubled), and the dashboard's aggregates (`GET /api/v1/stats`: the whole
 * range, one school, one category) are timed, median and worst of 7. One JSON line.
 * LACHAN_BENCH_SCHEMA_SQL runs SQL on the migrated database before the replay (to measure
 * a schema change first), LACHAN_BENCH_COLLECTOR_FLAGS passes node flags to the collectors.
 * Not part of `npm test`: `--events 200000` runs in about a minute.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { openPostgresStore, type PostgresCentralStore } from '../src/central/pg-store.js';
import { planStats } from '../src/central/stats-plan.js';
import { numberPlaceholders } from '../src/storage/postgres.js';
import { newEventId } from '../src/events/ids.js';
import type { WireEvent } from '../src/events/wire.js';
import { startPostgres } from '../test/harness/postgres.js';
import { argument } from './lib/args.js';
import { type RunningCollector, startCollector } from './lib/collector.js';
import { GatewayConnection } from './lib/gateway-connection.js';
import { CLOCK_TICKS_PER_SECOND, treeCpuTicks } from './lib/proc.js';

const EVENTS = argument('events', 1_000_000);
const SCHOOLS = argument('schools', 1_000);
const DAYS = argument('days', 3);
const PROCESSES = argument('processes', 2);
/** Events the gateways may hold unsent before the replay's clock waits for the collectors. */
const BACKLOG = argument('backlog', 100_000);
const PRELOAD = process.argv.includes('--preload') ? argument('preload', 0) : 0;
/** The preloaded events' school days, before the replayed ones. */
const PRELOAD_DAYS = 20;
const PRELOAD_BATCH = 2_000;
/** The shipper's batch and catch-up pace (src/events/shipper.ts defaults). */
const BATCH = 500;
const SHIPPER_MAX_RATE = 2_000;
/** Node flags for the collectors, e.g. LACHAN_BENCH_COLLECTOR_FLAGS=--cpu-prof to profile them. */
const COLLECTOR_NODE_FLAGS = (process.env.LACHAN_BENCH_COLLECTOR_FLAGS ?? '').split(' ').filter((flag) => flag !== '');
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

/** A xorshift sequence in [0, 1): deterministic, so two runs replay the same province. */
function sequence(seed: number): () => number {
  let state = seed;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}
const random = sequence(0x9e3779b9);
/** The resends' own sequence, so the province generated is the same whatever the collectors acknowledge when. */
const resendRandom = sequence(0x2545f491);

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

/** One POST of a gateway (`body`: its gzip JSON, `count` events); the number of events stored new. */
async function send(connection: GatewayConnection, head: string, body: Buffer, count: number): Promise<number> {
  const request = Buffer.from(`${head}content-length: ${body.length}\r\n\r\n`, 'latin1');
  for (let attempt = 0; ; attempt++) {
    const answer = await connection.request(request, body);
    if (answer.status === 200) {
      // The ack ends with the counts; stored + duplicates is how many ids it acknowledged.
      const counts = /"stored":(\d+),"duplicates":(\d+)\}$/.exec(answer.body.toString('latin1', Math.max(0, answer.body.length - 64)));
      if (counts === null) throw new Error(`ingest answered 200 without counts: ${answer.body.toString('utf8', 0, 200)}`);
      const stored = Number(counts[1]);
      if (stored + Number(counts[2]) !== count) throw new Error(`${count} sent, ${stored + Number(counts[2])} acknowledged`);
      return stored;
    }
    if (attempt >= 5 || answer.status < 500) throw new Error(`ingest answered ${answer.status}: ${answer.body.toString('utf8')}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function percentile(sorted: number[], p: number): number {
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!);
}

/** The events of `count` generated over `days` whole school days from `firstDay`, stored through the store in batches of 2,000 (one school each). */
async function preload(store: PostgresCentralStore, schools: SchoolSim[], count: number, firstDay: number, days: number): Promise<void> {
  const totalWeight = schools.reduce((n, s) => n + s.weight, 0);
  const perWeightDay = count / days / totalWeight;
  let left = count;
  const jobs: WireEvent[][] = [];
  const owners: SchoolSim[] = [];
  const flush = async () => {
    await Promise.all(jobs.map((events, i) => store.ingest(owners[i]!.id, events, Date.now())));
    jobs.length = 0;
    owners.length = 0;
  };
  for (let d = 0; d < days; d++) {
    const dayStart = (firstDay + d) * DAY - VN_OFFSET;
    for (const [index, school] of schools.entries()) {
      const due = d === days - 1 && index === schools.length - 1 ? left : Math.min(left, Math.round(school.weight * perWeightDay));
      left -= due;
      const events: WireEvent[] = [];
      for (const slice of SLICES) {
        const n = Math.round(due * slice.share);
        for (let i = 0; i < n && events.length < due; i++)
          events.push(eventAt(school, dayStart + slice.minute * 60_000 + Math.floor(random() * SLICE_MINUTES * 60_000)));
      }
      while (events.length < due) events.push(eventAt(school, dayStart + 10 * HOUR));
      for (let at = 0; at < events.length; at += PRELOAD_BATCH) {
        jobs.push(events.slice(at, at + PRELOAD_BATCH));
        owners.push(school);
      }
      if (jobs.length >= 8) await flush();
    }
    process.stderr.write(`preload: day ${d + 1} of ${days}, ${count - left} events\n`);
  }
  await flush();
}

/** The PostgreSQL server's main process (Linux /proc), found by the port it listens on. */
function postmasterOf(url: string): number {
  const port = new URL(url).port;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (args[0]!.endsWith('/postgres') && args.includes('-D') && args.join(' ').includes(`-p ${port} `)) return Number(entry);
    } catch {
      // exited meanwhile
    }
  }
  throw new Error(`no PostgreSQL process listening on ${port}`);
}

/** CPU seconds used so far by this process, the collectors and PostgreSQL's live processes: where the replay's time goes. */
function cpuSeconds(collectors: readonly ChildProcess[], postmaster: number): { bench: number; collectors: number; postgres: number } {
  const usage = process.cpuUsage();
  const ticks = (pids: readonly number[]) => pids.reduce((sum, pid) => sum + treeCpuTicks(pid), 0) / CLOCK_TICKS_PER_SECOND;
  return { bench: (usage.user + usage.system) / 1e6, collectors: ticks(collectors.map((c) => c.pid!)), postgres: ticks([postmaster]) };
}

/** A gateway's school days, generated before the replay: its events in time order. */
interface Recorded {
  /** The events as JSON, comma-separated: a batch is a slice of it. */
  readonly json: Buffer;
  /** Where each event's JSON ends in `json`. */
  readonly ends: Uint32Array;
  readonly times: Float64Array;
}

/** A gateway: its queue (the shipper's event log, the events in [sent, delivered)), one POST in flight at most. */
interface Gateway {
  readonly school: SchoolSim;
  readonly connection: GatewayConnection;
  /** The other process's, for a resend. */
  readonly other: GatewayConnection;
  /** Request heads up to content-length, for `connection` and `other`. */
  readonly head: string;
  readonly otherHead: string;
  /** `{"school":"…","events":[` */
  readonly prefix: Buffer;
  readonly recorded: Recorded;
  /** Events handed over by the clock so far, and sent so far. */
  delivered: number;
  sent: number;
  /** Events at the head of the queue held while offline: not part of the replay's backlog. */
  heldBack: number;
  offline: boolean;
  busy: boolean;
}

const BATCH_END = Buffer.from(']}');

/** The gzip JSON body of events [from, from + count) of a gateway, as its shipper would send them. */
function batchBody(gateway: Gateway, from: number, count: number): Buffer {
  const { json, ends } = gateway.recorded;
  const start = from === 0 ? 0 : ends[from - 1]! + 1;
  return gzipSync(Buffer.concat([gateway.prefix, json.subarray(start, ends[from + count - 1]!), BATCH_END]));
}

const server = await startPostgres();
const dirs: string[] = [];
const collectors: RunningCollector[] = [];
const connections: GatewayConnection[] = [];
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
    schools.push({ ...created, weight: 0.3 + 1.4 * random(), clients, profile: PROFILES[i % 3]! });
  }
  // School days ending yesterday (Vietnam time), inside the retention; the preloaded ones before them.
  const today = Math.floor((Date.now() + VN_OFFSET) / DAY);
  const firstDay = today - DAYS - (PRELOAD > 0 ? PRELOAD_DAYS : 0);
  let preloadSeconds = 0;
  if (PRELOAD > 0) {
    const started = performance.now();
    await preload(setup, schools, PRELOAD, firstDay, PRELOAD_DAYS);
    preloadSeconds = (performance.now() - started) / 1000;
  }
  // LACHAN_BENCH_SCHEMA_SQL: statements run on the migrated database first, to measure a schema change (an index dropped, a fillfactor) before making it.
  if (process.env.LACHAN_BENCH_SCHEMA_SQL) await setup.pool.query(process.env.LACHAN_BENCH_SCHEMA_SQL);
  for (let i = 0; i < PROCESSES; i++) {
    dirs.push(mkdtempSync(path.join(tmpdir(), `lachan-province-${i}-`)));
    collectors.push(await startCollector({ cli: CLI, data: dirs[i]!, database, rateLimit: 100_000, nodeArgs: COLLECTOR_NODE_FLAGS }));
  }
  // A connection a gateway, as each shipper keeps its own (the other process's for a resend).
  const connection = (i: number) => {
    const made = new GatewayConnection(collectors[i % PROCESSES]!.url);
    connections.push(made);
    return made;
  };
  const headOf = (school: SchoolSim, to: GatewayConnection) =>
    `POST /api/v1/events HTTP/1.1\r\nhost: ${to.authority}\r\nauthorization: Bearer ${school.token}\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n`;
  const totalWeight = schools.reduce((n, s) => n + s.weight, 0);
  const perWeightDay = EVENTS / DAYS / totalWeight;
  const offline = new Set(schools.filter(() => random() < OFFLINE_SHARE).map((s) => s.id));

  // The school days, before the clock: each school's quarter hours, the events' times in order.
  const recordedJson: string[][] = schools.map(() => []);
  const recordedTimes: number[][] = schools.map(() => []);
  /** The fraction of an event each school is owed from the slices before. */
  const carry = new Float64Array(schools.length);
  let generated = PRELOAD;
  for (let d = 0; d < DAYS; d++) {
    const dayStart = (today - DAYS + d) * DAY - VN_OFFSET;
    for (const slice of SLICES) {
      const from = dayStart + slice.minute * 60_000;
      for (const [i, school] of schools.entries()) {
        const exact = school.weight * perWeightDay * slice.share + carry[i]!;
        const count = Math.floor(exact);
        carry[i] = exact - count;
        generated += count;
        const times = Array.from({ length: count }, () => from + Math.floor(random() * SLICE_MINUTES * 60_000)).sort((a, b) => a - b);
        for (const time of times) {
          recordedTimes[i]!.push(time);
          recordedJson[i]!.push(JSON.stringify(eventAt(school, time)));
        }
      }
    }
  }
  const gateways: Gateway[] = schools.map((school, i) => {
    const texts = recordedJson[i]!;
    const ends = new Uint32Array(texts.length);
    let at = -1;
    texts.forEach((text, e) => {
      at += 1 + Buffer.byteLength(text);
      ends[e] = at;
    });
    const json = Buffer.from(texts.join(','));
    recordedJson[i] = [];
    const own = connection(i);
    const other = connection(i + 1);
    return {
      school,
      connection: own,
      other,
      head: headOf(school, own),
      otherHead: headOf(school, other),
      prefix: Buffer.from(`{"school":${JSON.stringify(school.id)},"events":[`),
      recorded: { json, ends, times: Float64Array.from(recordedTimes[i]!) },
      delivered: 0,
      sent: 0,
      heldBack: 0,
      offline: false,
      busy: false,
    };
  });

  // Gateways are up before the school day: connected, as a running shipper is (not 1,000 connections in the first second).
  for (let at = 0; at < gateways.length; at += 100) {
    await Promise.all(
      gateways.slice(at, at + 100).map(async (gateway) => {
        for (const to of [gateway.connection, gateway.other]) {
          const answer = await to.request(Buffer.from(`GET /healthz HTTP/1.1\r\nhost: ${to.authority}\r\n\r\n`));
          if (answer.status !== 200) throw new Error(`healthz answered ${answer.status}`);
        }
      }),
    );
  }

  const postmaster = postmasterOf(database);
  const cpuBefore = cpuSeconds(
    collectors.map((c) => c.child),
    postmaster,
  );
  let stored = 0;
  let batches = 0;
  let resent = 0;
  let backlog = 0;
  let failure: Error | null = null;
  const batchSizes = new Array<number>(BATCH + 1).fill(0);
  /** Events acknowledged new, by wall-clock second of the replay. */
  const perSecond: number[] = [];
  let wakeFeeder: (() => void) | null = null;
  let wakeDrained: (() => void) | null = null;
  let inFlight = 0;
  const started = performance.now();
  const progress = setInterval(() => {
    if (process.env.LACHAN_BENCH_VERBOSE)
      process.stderr.write(
        `${Math.round((performance.now() - started) / 1000)} s: ${stored} stored, ${batches} batches, ${inFlight} gateways sending, backlog ${backlog}\n`,
      );
  }, 2_000);

  const acknowledged = (n: number) => {
    stored += n;
    const second = Math.floor((performance.now() - started) / 1000);
    while (perSecond.length <= second) perSecond.push(0);
    perSecond[second]! += n;
  };

  /** The shipper's loop, one round: everything queued (up to 500) in one POST, then again. */
  const ship = async (gateway: Gateway): Promise<void> => {
    gateway.busy = true;
    inFlight++;
    try {
      while (!gateway.offline && gateway.sent < gateway.delivered && failure === null) {
        const from = gateway.sent;
        const count = Math.min(BATCH, gateway.delivered - from);
        gateway.sent += count;
        const fromHeld = Math.min(count, gateway.heldBack);
        gateway.heldBack -= fromHeld;
        backlog -= count - fromHeld;
        if (backlog < BACKLOG) wakeFeeder?.();
        const sentAt = performance.now();
        const body = batchBody(gateway, from, count);
        acknowledged(await send(gateway.connection, gateway.head, body, count));
        batches++;
        batchSizes[count]!++;
        if (resendRandom() < RESEND_SHARE) {
          resent++;
          acknowledged(await send(gateway.other, gateway.otherHead, body, count));
        }
        // The shipper paces itself at 2,000 events/s (a catch-up after days offline).
        const pause = (count / SHIPPER_MAX_RATE) * 1000 - (performance.now() - sentAt);
        if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
      }
    } catch (error) {
      failure ??= error as Error;
      wakeFeeder?.();
    } finally {
      gateway.busy = false;
      inFlight--;
      if (inFlight === 0) wakeDrained?.();
    }
  };
  const deliver = (gateway: Gateway, count: number) => {
    gateway.delivered += count;
    if (gateway.offline) gateway.heldBack += count;
    else backlog += count;
    if (!gateway.busy && !gateway.offline) void ship(gateway);
  };
  const waitForRoom = async () => {
    // A turn of the event loop each minute of school time, so the gateways' I/O runs beside the clock.
    await new Promise((resolve) => setImmediate(resolve));
    while (backlog >= BACKLOG && failure === null) await new Promise<void>((resolve) => (wakeFeeder = resolve));
    wakeFeeder = null;
    if (failure !== null) throw failure;
  };

  for (let d = 0; d < DAYS; d++) {
    const dayStart = (today - DAYS + d) * DAY - VN_OFFSET;
    // The second day's offline schools are back this morning, with the day they held.
    for (const gateway of gateways) {
      gateway.offline = d === 1 && DAYS > 1 && offline.has(gateway.school.id);
      if (gateway.offline) {
        // What it had not sent yet waits with the offline day.
        const live = gateway.delivered - gateway.sent - gateway.heldBack;
        backlog -= live;
        gateway.heldBack += live;
      }
      if (!gateway.offline && !gateway.busy && gateway.delivered > gateway.sent) void ship(gateway);
    }
    for (const slice of SLICES) {
      // Each school's quarter hour in time order, handed over a minute at a time.
      for (let minute = 1; minute <= SLICE_MINUTES; minute++) {
        await waitForRoom();
        const until = dayStart + (slice.minute + minute) * 60_000;
        for (const gateway of gateways) {
          const { times } = gateway.recorded;
          let end = gateway.delivered;
          while (end < times.length && times[end]! < until) end++;
          if (end > gateway.delivered) deliver(gateway, end - gateway.delivered);
        }
      }
    }
    process.stderr.write(`day ${d + 1}: ${stored} stored, ${Math.round(stored / ((performance.now() - started) / 1000))}/s so far\n`);
  }
  // A run ending on the offline day: the schools come back after it and send what they hold.
  for (const gateway of gateways) {
    gateway.offline = false;
    if (!gateway.busy && gateway.delivered > gateway.sent) void ship(gateway);
  }
  while (inFlight > 0) await new Promise<void>((resolve) => (wakeDrained = resolve));
  clearInterval(progress);
  const cpuAfter = cpuSeconds(
    collectors.map((c) => c.child),
    postmaster,
  );
  if (failure !== null) throw failure;
  const tenths = (x: number) => Math.round(x * 10) / 10;
  const cpu = {
    bench: tenths(cpuAfter.bench - cpuBefore.bench),
    collectors: tenths(cpuAfter.collectors - cpuBefore.collectors),
    postgres: tenths(cpuAfter.postgres - cpuBefore.postgres),
  };
  const perEvent = (seconds: number) => Math.round((seconds * 1e6) / (generated - PRELOAD));
  const seconds = (performance.now() - started) / 1000;
  const windowSeconds = 10;
  let peak = 0;
  for (let s = 0; s + windowSeconds <= perSecond.length; s++) {
    peak = Math.max(peak, perSecond.slice(s, s + windowSeconds).reduce((a, b) => a + b, 0) / windowSeconds);
  }
  const sizes: number[] = [];
  batchSizes.forEach((n, size) => {
    for (let i = 0; i < n; i++) sizes.push(size);
  });
  const bucket = (low: number, high: number) => batchSizes.slice(low, high + 1).reduce((a, b) => a + b, 0);

  const { rows: counts } = await setup.pool.query<{ events: number; distinct: number; rolled: number }>(
    'SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM (SELECT DISTINCT school, id FROM events) AS d) AS distinct, (SELECT coalesce(sum(n), 0)::bigint FROM r_category_day) AS rolled',
  );
  const check = counts[0]!;
  const replayed = generated - PRELOAD;

  // The dashboard's aggregates over everything stored, as an administrator asks them.
  const fromDay = new Date(firstDay * DAY).toISOString().slice(0, 10);
  const toDay = new Date((today - 1) * DAY).toISOString().slice(0, 10);
  // One admin token for every process on one database (docs/scaling.md): in the folder of whichever started first.
  const tokenDir = dirs.find((dir) => existsSync(path.join(dir, 'admin-token')));
  if (tokenDir === undefined) throw new Error('no collector wrote admin-token');
  const adminToken = readFileSync(path.join(tokenDir, 'admin-token'), 'utf8').trim();
  // The bench's own first fetch() loads and compiles undici's client (~150 ms on a loaded box): paid on
  // /healthz, which reads no statistics, so the first timed request is cold in the database only.
  for (const collector of collectors) await (await fetch(`${collector.url}/healthz`)).arrayBuffer();
  const timed = async (query: string): Promise<{ median: number; worst: number }> => {
    const times: number[] = [];
    for (let i = 0; i < 7; i++) {
      const t = performance.now();
      const response = await fetch(`${collectors[i % PROCESSES]!.url}/api/v1/stats?from=${fromDay}&to=${toDay}${query}`, {
        headers: { authorization: `Bearer ${adminToken}` },
      });
      if (response.status !== 200) throw new Error(`stats answered ${response.status}`);
      const total = ((await response.json()) as { total: number }).total;
      if (query === '' && total !== generated) throw new Error(`stats total ${total}, ${generated} generated`);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    return { median: percentile(times, 0.5), worst: Math.round(times[times.length - 1]!) };
  };
  // LACHAN_BENCH_EXPLAIN=1: how PostgreSQL answers each query of the three requests, to stderr.
  if (process.env.LACHAN_BENCH_EXPLAIN) {
    for (const filter of [{}, { school: schools[0]!.id }, { category: 'gambling' }]) {
      const plan = planStats({ fromDay, toDay, topHosts: 20, ...filter });
      for (const query of [plan.byCategoryDay, plan.bySchool, plan.topHosts]) {
        const { rows } = await setup.pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${numberPlaceholders(query.sql)}`, query.params);
        process.stderr.write(`${JSON.stringify(filter)} ${query.sql}\n${rows.map((r) => r['QUERY PLAN']).join('\n')}\n\n`);
      }
    }
  }
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
      backlog: BACKLOG,
      preloaded: PRELOAD,
      preloadEventsPerSecond: PRELOAD > 0 ? Math.round(PRELOAD / preloadSeconds) : null,
      generated,
      batches,
      resentBatches: resent,
      offlineSchools: offline.size,
      acknowledgedNew: stored,
      eventsInDatabase: check.events,
      distinctEvents: check.distinct,
      countedInRollups: check.rolled,
      nothingLostOrDoubled: check.events === generated && check.distinct === generated && check.rolled === generated && stored === replayed,
      seconds: Math.round(seconds),
      eventsPerSecond: Math.round(replayed / seconds),
      peak10sEventsPerSecond: Math.round(peak),
      replayCpuSeconds: cpu,
      replayCpuMicrosecondsPerEvent: {
        bench: perEvent(cpu.bench),
        collectors: perEvent(cpu.collectors),
        postgres: perEvent(cpu.postgres),
        total: perEvent(cpu.bench + cpu.collectors + cpu.postgres),
      },
      batchSize: {
        mean: Math.round((replayed / batches) * 10) / 10,
        median: percentile(sizes, 0.5),
        p90: percentile(sizes, 0.9),
        '1': bucket(1, 1),
        '2-9': bucket(2, 9),
        '10-49': bucket(10, 49),
        '50-199': bucket(50, 199),
        '200-499': bucket(200, 499),
        '500': bucket(500, 500),
      },
      statsWholeRangeMs: whole,
      statsOneSchoolMs: oneSchool,
      statsOneCategoryMs: oneCategory,
    })}\n`,
  );
} finally {
  for (const made of connections) made.destroy();
  await Promise.all(collectors.map((c) => c.stop()));
  await server.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
