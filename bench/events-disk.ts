/**
 * bench:events-disk: blocked-traffic throughput of a gateway whose event store takes
 * writes, and of one whose data folder is full (a tmpfs the bench mounts and fills; run
 * as root). Every request is blocked and names a host of its own, so each is a new
 * event (no visit folding) and the store's write path is what is measured.
 *
 *   npm run bench:events-disk [-- --duration 10 --connections 20 --cli dist/src/cli/main.js]
 *
 * `--cli` runs another build (e.g. the code before) with the same load. Prints, per
 * state: requests/s, the gateway's CPU time per request (what a busy machine does not
 * skew), p99 latency, and the gateway's event counters afterwards.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServe } from './lib/serve.js';
import { markdownTable } from './lib/stats.js';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : (process.argv[at + 1] ?? fallback);
}

const cli = path.resolve(option('cli', path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js')));
const duration = Number(option('duration', '10'));
const connections = Number(option('connections', '20'));

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p99: number };
  non2xx: number;
  errors: number;
}
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;

function fill(dir: string): void {
  const fd = openSync(path.join(dir, 'filler'), 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch {
    try {
      for (;;) writeSync(fd, chunk, 0, 512);
    } catch {
      // full
    }
  } finally {
    closeSync(fd);
  }
}

/** CPU time (user + system) of a process so far, in ms (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function metrics(adminPort: number): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => /^lachan_event/.test(l))
    .map((l) => l.replace(/^lachan_/, ''))
    .join(', ');
}

async function load(port: number, prefix: string, seconds: number): Promise<AutocannonResult> {
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  let n = 0;
  return autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'GET',
        setupRequest: (request: Record<string, unknown>) => {
          const host = `${prefix}${n++}.bet.test`;
          return { ...request, path: `http://${host}/trang`, headers: { host } };
        },
      },
    ],
  });
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'lachan-events-disk-'));
  const rules = path.join(work, 'rules');
  mkdirSync(path.join(rules, 'categories/gambling'), { recursive: true });
  writeFileSync(
    path.join(rules, 'policy.yaml'),
    'version: 1\ndefault_profile: tieu-hoc\nprofiles:\n  tieu-hoc:\n    name: "Tiểu học"\n    block_categories: [gambling]\n',
  );
  writeFileSync(path.join(rules, 'categories/gambling/domains'), 'bet.test\n');
  const rows: string[][] = [];
  for (const state of ['writable', 'full'] as const) {
    const data = path.join(work, state);
    mkdirSync(data);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', data]);
    try {
      const gateway = await startServe({ cli, rules, data, certs: path.join(work, 'no-ca') });
      // A first event creates the store; then the disk fills (or not).
      await load(gateway.port, 'warm', 2);
      if (state === 'full') fill(data);
      const cpuBefore = cpuMs(gateway.child.pid!);
      const result = await load(gateway.port, state, duration);
      // CPU per request holds on a busy machine, where requests/s depends on the neighbours.
      const cpuPerRequest = ((cpuMs(gateway.child.pid!) - cpuBefore) * 1000) / Math.max(1, result.requests.total);
      rows.push([
        state,
        Math.round(result.requests.average).toLocaleString('en'),
        `${Math.round(cpuPerRequest)} µs`,
        `${result.latency.p99} ms`,
        String(result.errors),
        await metrics(gateway.adminPort),
      ]);
      await gateway.stop();
    } finally {
      execFileSync('umount', [data]);
    }
  }
  rmSync(work, { recursive: true, force: true });
  console.log(`${cli}, ${connections} connections, ${duration} s a state\n`);
  console.log(markdownTable(['event store', 'blocked req/s', 'gateway CPU a request', 'p99', 'errors', 'event counters after'], rows));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
