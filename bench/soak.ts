/**
 * npm run soak: an hour (or --minutes N) of steady traffic through a real gateway that
 * ships to a real collector, sampling each process's resident memory and open file
 * descriptors every minute (and the gateway's live V8 heap after its last full
 * collection, from --trace-gc). Not part of CI.
 *
 *   npm run soak [-- --minutes 60 --rate 300 --connections 16 --sample-seconds 60
 *                   --gateway-node-args '--heapsnapshot-signal=SIGUSR2' --out FILE]
 *
 * The load (from this process, keep-alive, paced to --rate requests a second): half
 * blocked requests (half over 20,000 hosts: new visits; half over 50 hosts: repeats
 * folded into visits, which open and close again every 30 s), half allowed requests forwarded to a local origin. Every minute a row: RSS
 * and fds of the gateway and the collector, requests answered, errors, events waiting
 * at the gateway. At the end: the load stops, the gateway ships what is left, both stop
 * gracefully, and the gateway's stored events are compared with the collector's.
 *
 * Verdict "flat": after a warm-up of the first fifth of the run (at least 2 minutes),
 * the median RSS of the last third exceeds that of the first third by at most 10 %
 * (or 16 MiB), and the median fd count grows by at most 20 % (or 5): the keep-alive
 * pools to the origin and the collector open and close connections, so fds move by
 * tens without leaking. A sample every --sample-seconds (the table's "minute" column
 * counts samples).
 */
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync, appendFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServe, startServer } from './lib/serve.js';
import { markdownTable, median } from './lib/stats.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at !== -1 && process.argv[at + 1] !== undefined ? process.argv[at + 1]! : fallback;
}

const minutes = Number(flag('minutes', '60'));
const rate = Number(flag('rate', '300'));
const connections = Number(flag('connections', '16'));
const outFile = flag('out', '');
const sampleMs = Number(flag('sample-seconds', '60')) * 1000;
/** More node flags for the gateway, e.g. `--heapsnapshot-signal=SIGUSR2` (a snapshot forces a full collection). */
const gatewayNodeArgs = flag('gateway-node-args', '')
  .split(' ')
  .filter((a) => a !== '');

/**
 * The V8 heap after each full (mark-compact) collection of the gateway, from its
 * `--trace-gc` lines ("Mark-Compact 95.1 (120.3) -> 31.2 (118.0) MB"): what is live,
 * which RSS does not show under the proxy's heap-growing flags.
 */
let gatewayLiveHeapMiB = NaN;
const MARK_COMPACT = /Mark-Compact[^>]*-> ([\d.]+) \(/;

/** What a process prints on stdout: the gateway's --trace-gc lines, and errors worth seeing. */
function watchOutput(name: string): (text: string) => void {
  return (text) => {
    const gc = MARK_COMPACT.exec(text);
    if (gc !== null) {
      gatewayLiveHeapMiB = Number(gc[1]);
      return;
    }
    if (!text.startsWith('{')) return;
    try {
      const level = (JSON.parse(text) as { level?: number }).level;
      if (level !== undefined && level >= 50) process.stderr.write(`${name}: ${text}\n`);
    } catch {
      // not a log line
    }
  };
}

function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}

function fds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'lachan-soak-'));
  const rules = path.join(work, 'rules');
  mkdirSync(path.join(rules, 'categories/gambling'), { recursive: true });
  writeFileSync(
    path.join(rules, 'policy.yaml'),
    'version: 1\ndefault_profile: tieu-hoc\nprofiles:\n  tieu-hoc:\n    name: "Tiểu học"\n    block_categories: [gambling]\n',
  );
  writeFileSync(path.join(rules, 'categories/gambling/domains'), 'bet.test\n');
  writeFileSync(path.join(work, 'hosts'), '127.0.0.1 ok.test bet.test\n');

  const origin = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 1024 });
    res.end(Buffer.alloc(1024, 97));
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const originPort = (origin.address() as { port: number }).port;

  const centralData = path.join(work, 'central');
  const collector = await startServer(process.execPath, [CLI, 'central', 'serve', '--port', '0', '--data', centralData, '--rate-limit', '1000'], {
    onLine: watchOutput('central'),
  });
  const collectorUrl = `http://127.0.0.1:${collector.line.port as number}`;
  const school = JSON.parse(
    execFileSync(process.execPath, [CLI, 'central', 'school', 'add', '--name', 'TH Soak', '--data', centralData, '--json'], { encoding: 'utf8' }),
  ) as { id: string; token: string };
  const tokenFile = path.join(work, 'token');
  writeFileSync(tokenFile, `${school.token}\n`, { mode: 0o600 });
  const gatewayData = path.join(work, 'gateway');
  const gateway = await startServe(
    {
      cli: CLI,
      rules,
      data: gatewayData,
      hosts: path.join(work, 'hosts'),
      certs: path.join(work, 'no-ca'),
      nodeArgs: ['--trace-gc', ...gatewayNodeArgs],
      args: ['--central', collectorUrl, '--school', school.id, '--token-file', tokenFile],
    },
    { onLine: watchOutput('serve') },
  );
  const proxyPort = gateway.line.port as number;
  const adminPort = gateway.line.adminPort as number;
  const pids = { gateway: gateway.child.pid!, collector: collector.child.pid! };

  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  let answered = 0;
  let blocked = 0;
  let errors = 0;
  let sequence = 0;
  const send = (): Promise<void> =>
    new Promise((resolve) => {
      const n = sequence++;
      // Blocked: a quarter over 20,000 hosts (new visits), a quarter over 50 (repeats folded into visits).
      const url =
        n % 4 === 0
          ? `http://h${(n * 7919) % 20_000}.bet.test/trang/${n % 97}`
          : n % 4 === 2
            ? `http://f${n % 50}.bet.test/favicon.ico`
            : `http://ok.test:${originPort}/${n % 101}`;
      const req = request({ host: '127.0.0.1', port: proxyPort, path: url, headers: { host: new URL(url).host }, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          answered++;
          if (res.statusCode === 403) blocked++;
          else if (res.statusCode !== 200) errors++;
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end();
    });
  // Paced: each tick sends what the rate allows, never more than the connections hold.
  let inFlight = 0;
  const tickMs = 50;
  const pacer = setInterval(() => {
    const quota = Math.min(Math.round((rate * tickMs) / 1000), connections * 4 - inFlight);
    for (let i = 0; i < quota; i++) {
      inFlight++;
      void send().then(() => inFlight--);
    }
  }, tickMs);

  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const match = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
    return match ? Number(match[1]) : NaN;
  };

  const rows: (string | number)[][] = [];
  const samples: { gatewayRss: number; collectorRss: number; gatewayFds: number; collectorFds: number }[] = [];
  const started = Date.now();
  let lastAnswered = 0;
  const header = [
    'minute',
    'req/s',
    'blocked',
    'errors',
    'gateway RSS MiB',
    'gateway live heap MiB',
    'gateway fds',
    'collector RSS MiB',
    'collector fds',
    'events pending',
    'events dropped',
  ];
  process.stdout.write(`soak: ${minutes} min at ${rate} req/s over ${connections} connections; work folder ${work}\n${header.join('\t')}\n`);
  for (let minute = 1; minute <= minutes; minute++) {
    await new Promise((resolve) => setTimeout(resolve, started + minute * sampleMs - Date.now()));
    const sample = { gatewayRss: rssMiB(pids.gateway), collectorRss: rssMiB(pids.collector), gatewayFds: fds(pids.gateway), collectorFds: fds(pids.collector) };
    samples.push(sample);
    const row = [
      minute,
      Math.round(((answered - lastAnswered) * 1000) / sampleMs),
      blocked,
      errors,
      sample.gatewayRss.toFixed(1),
      gatewayLiveHeapMiB.toFixed(1),
      sample.gatewayFds,
      sample.collectorRss.toFixed(1),
      sample.collectorFds,
      await metric('lachan_events_pending'),
      await metric('lachan_events_dropped_total'),
    ];
    lastAnswered = answered;
    rows.push(row);
    process.stdout.write(`${row.join('\t')}\n`);
  }
  clearInterval(pacer);
  while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 50));
  agent.destroy();
  // What is left ships; then both stop the way an operator stops them.
  for (let i = 0; i < 600 && (await metric('lachan_events_pending')) > 0; i++) await new Promise((resolve) => setTimeout(resolve, 500));
  await gateway.stop();
  await collector.stop();
  origin.close();

  const gatewayDb = new Database(path.join(gatewayData, 'events.db'), { readonly: true });
  const gatewayEvents = gatewayDb.prepare('SELECT count(*) AS events, sum(count) AS requests, sum(shipped_at IS NULL) AS unshipped FROM events').get() as {
    events: number;
    requests: number;
    unshipped: number;
  };
  gatewayDb.close();
  const centralDb = new Database(path.join(centralData, 'central.db'), { readonly: true });
  const centralEvents = centralDb.prepare('SELECT count(*) AS events, sum(count) AS requests FROM events').get() as { events: number; requests: number };
  centralDb.close();

  const warm = Math.max(2, Math.floor(samples.length / 5));
  const steady = samples.slice(warm);
  const third = Math.max(1, Math.floor(steady.length / 3));
  const first = steady.slice(0, third);
  const last = steady.slice(-third);
  const verdictOf = (pick: (s: (typeof samples)[number]) => number, kind: 'rss' | 'fds'): { flat: boolean; text: string } => {
    const a = median(first.map(pick));
    const b = median(last.map(pick));
    // Growth is what a leak looks like; fds also move with the keep-alive pools (tens), so they get a tolerance too.
    const flat = kind === 'rss' ? b - a <= Math.max(16, a * 0.1) : b - a <= Math.max(5, a * 0.2);
    return { flat, text: `${a.toFixed(1)} → ${b.toFixed(1)}${flat ? '' : ' (NOT flat)'}` };
  };
  const verdicts = {
    'gateway RSS MiB': verdictOf((s) => s.gatewayRss, 'rss'),
    'gateway fds': verdictOf((s) => s.gatewayFds, 'fds'),
    'collector RSS MiB': verdictOf((s) => s.collectorRss, 'rss'),
    'collector fds': verdictOf((s) => s.collectorFds, 'fds'),
  };
  const flat = steady.length >= 2 && Object.values(verdicts).every((v) => v.flat);
  const summary = [
    `soak: ${minutes} min, ${rate} req/s offered over ${connections} connections; ${answered} answered (${blocked} blocked), ${errors} errors`,
    `events: gateway ${gatewayEvents.events} (${gatewayEvents.requests} requests, ${gatewayEvents.unshipped} unshipped after stop), collector ${centralEvents.events} (${centralEvents.requests} requests)`,
    `first third → last third after a ${warm}-minute warm-up (medians): ${Object.entries(verdicts)
      .map(([k, v]) => `${k} ${v.text}`)
      .join('; ')}`,
    `verdict: ${flat ? 'flat' : 'NOT flat'}`,
  ].join('\n');
  process.stdout.write(`\n${summary}\n`);
  if (outFile !== '')
    appendFileSync(
      outFile,
      `${markdownTable(
        header,
        rows.map((r) => r.map(String)),
      )}\n\n${summary
        .split('\n')
        .map((l) => `- ${l}`)
        .join('\n')}\n`,
    );
  rmSync(work, { recursive: true, force: true });
  if (!flat || gatewayEvents.events !== centralEvents.events || gatewayEvents.unshipped !== 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`soak failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
