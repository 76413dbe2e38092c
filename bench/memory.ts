/**
 * Memory of a real gateway: `lachan serve` with every shipped rule (hand-written and
 * bundled lists) plus the 5 M-domain bench rules (every real list of ../shared/data
 * and generated names to make up the rest, as bench:match loads them), started with
 * the proxy's V8 flags as `npm start` starts it.
 *
 * For `--workers 1` and `--workers 2` it reads each proxy worker's RSS once the rules
 * are loaded and some traffic went through (steady), then sends SIGHUP and reads
 * the peak RSS while the new policy compiles beside the serving one (the kernel's
 * high-water mark, VmHWM, reset before each reload), then the RSS after the reload.
 *
 *   npm run bench:memory
 *   MEMORY_DOMAINS=1000000 MEMORY_RELOADS=2 MEMORY_REQUESTS=300 MEMORY_WORKERS=2 npm run bench:memory
 *
 * Prints a markdown table and one JSON line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { PROXY_V8_FLAGS } from '../src/cli/v8-flags.js';
import { generatedDomainText, realDomainLists } from './lib/data.js';
import { markdownTable, median } from './lib/stats.js';
import { childrenOf } from './lib/proc.js';

const TARGET_DOMAINS = Number(process.env.MEMORY_DOMAINS ?? 5_000_000);
const RELOADS = Number(process.env.MEMORY_RELOADS ?? 3);
/**
 * Requests a worker before each reading (the primary spreads them). A worker's RSS
 * grows with the traffic it has served until its young generation (2 × 16 MiB under
 * the proxy's flags) has cycled: 208 MiB after the load, 220 after 300 requests,
 * 238–246 after a few thousand (bench/RESULTS.md, 2026-12-04). 300 in all measured a
 * worker barely in service, and with `--workers 2` one that had served half as much.
 */
const REQUESTS = Number(process.env.MEMORY_REQUESTS ?? 3000);
const REPO = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(REPO, 'dist/src/cli/main.js');
const MiB = 1024 * 1024;

/** The shipped rules folder with the bench lists as extra categories every profile blocks. */
async function writeRulesDir(): Promise<{ dir: string; domains: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lachan-bench-memory-'));
  cpSync(path.join(REPO, 'rules'), dir, { recursive: true });
  const lists = await realDomainLists();
  const real = lists.reduce((sum, list) => sum + list.lines, 0);
  if (TARGET_DOMAINS > real) lists.push(generatedDomainText(TARGET_DOMAINS - real));
  const names: string[] = [];
  for (const list of lists) {
    const name = `bench-${list.category}`;
    mkdirSync(path.join(dir, 'categories', name));
    writeFileSync(path.join(dir, 'categories', name, 'domains'), list.text);
    names.push(name);
  }
  const policyFile = path.join(dir, 'policy.yaml');
  writeFileSync(policyFile, readFileSync(policyFile, 'utf8').replace(/block_categories: \[/g, `block_categories: [${names.join(', ')}, `));
  return { dir, domains: lists.reduce((sum, list) => sum + list.lines, 0) };
}

function procStatus(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)![1]) * 1024;
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

/** Where a process's resident pages are: the C library's brk heap, anonymous mappings (V8's heap, large buffers), files (code, libraries). */
interface Split {
  rss: number;
  brkHeap: number;
  anonymous: number;
  files: number;
}

function residentSplit(pid: number): Split {
  const split: Split = { rss: 0, brkHeap: 0, anonymous: 0, files: 0 };
  let name = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (mapping !== null) name = mapping[1]!;
    else if (line.startsWith('Rss:')) {
      const bytes = Number(line.split(/\s+/)[1]) * 1024;
      split.rss += bytes;
      if (name === '[heap]') split.brkHeap += bytes;
      else if (name === '' || name.startsWith('[anon')) split.anonymous += bytes;
      else split.files += bytes;
    }
  }
  return split;
}

/** Samples `pids` every 50 ms until stopped; keeps each one's largest sample. */
function sampleSplits(pids: readonly number[]): () => Split[] {
  const largest: Split[] = pids.map(() => ({ rss: 0, brkHeap: 0, anonymous: 0, files: 0 }));
  const timer = setInterval(() => {
    pids.forEach((pid, i) => {
      try {
        const split = residentSplit(pid);
        if (split.rss > largest[i]!.rss) largest[i] = split;
      } catch {
        // exited meanwhile
      }
    });
  }, 50);
  return () => {
    clearInterval(timer);
    return largest;
  };
}

/** Resets the kernel's peak-RSS mark of `pid` (Linux: `5` to clear_refs). */
function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

const inMiB = (split: Split): Split => ({ rss: split.rss / MiB, brkHeap: split.brkHeap / MiB, anonymous: split.anonymous / MiB, files: split.files / MiB });

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A few hundred requests through the proxy: blocked and allowed hosts, so the hot path
 * has run. Each on its own connection (`agent: false`), so that the cluster primary
 * hands them round to every worker: with one kept-alive connection (Node's default
 * agent) one worker served them all, and another was measured as never having served.
 */
async function someTraffic(port: number, workers: number): Promise<void> {
  const hosts = ['bet365.com', 'xhamster.com', 'example.invalid', 'tinder.com', 'nordvpn.com'];
  for (let i = 0; i < REQUESTS * workers; i++) {
    await new Promise<void>((resolve) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          agent: false,
          method: 'GET',
          path: `http://${hosts[i % hosts.length]}/page${i}`,
          headers: { host: hosts[i % hosts.length] },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve());
        },
      );
      req.on('error', () => resolve());
      req.end();
    });
  }
}

interface Run {
  workers: number;
  loadSeconds: number;
  steadyMiB: number[];
  primaryMiB: number | null;
  reloadPeakMiB: number[];
  /** Per reload, per worker: RSS just before the SIGHUP, and the peak of that reload. */
  perReload: { beforeMiB: number[]; peakMiB: number[]; before: Split[]; sampledPeak: Split[]; logged: Record<string, unknown>[] }[];
  afterReloadMiB: number[];
  reloadSeconds: number[];
}

async function measure(rulesDir: string, workers: number): Promise<Run> {
  const work = mkdtempSync(path.join(tmpdir(), 'lachan-bench-memory-var-'));
  const started = Date.now();
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...PROXY_V8_FLAGS,
      CLI,
      'serve',
      '--port',
      '0',
      '--admin-port',
      '0',
      '--host',
      '127.0.0.1',
      '--workers',
      String(workers),
      '--rules',
      rulesDir,
      '--data',
      path.join(work, 'var'),
      '--certs',
      path.join(work, 'no-certs'),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const logs: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not a log line
    }
  });
  const waitFor = async (predicate: () => boolean, what: string): Promise<void> => {
    for (let waited = 0; !predicate(); waited += 50) {
      if (child.exitCode !== null) throw new Error(`lachan serve exited (${child.exitCode}) waiting for ${what}`);
      if (waited > 600_000) throw new Error(`timed out waiting for ${what}`);
      await sleep(50);
    }
  };
  try {
    await waitFor(() => logs.some((l) => l.msg === 'listening'), 'listening');
    const loadSeconds = (Date.now() - started) / 1000;
    const port = logs.find((l) => l.msg === 'listening')!.port as number;
    const pids = workers === 1 ? [child.pid!] : childrenOf(child.pid!);
    if (pids.length !== workers) throw new Error(`found ${pids.length} workers, expected ${workers}`);
    await someTraffic(port, workers);
    await sleep(3000);
    const steady = pids.map((pid) => procStatus(pid).rss);
    const peaks: number[][] = [];
    const after: number[][] = [];
    const reloadSeconds: number[] = [];
    const perReload: Run['perReload'] = [];
    for (let round = 0; round < RELOADS; round++) {
      const beforeReload = pids.map((pid) => procStatus(pid).rss);
      const before = pids.map(residentSplit);
      pids.forEach(resetPeak);
      const stopSampling = sampleSplits(pids);
      const reloaded = logs.filter((l) => l.msg === 'rules reloaded').length;
      const reloadStarted = Date.now();
      child.kill('SIGHUP');
      await waitFor(() => logs.filter((l) => l.msg === 'rules reloaded').length >= reloaded + workers, 'rules reloaded');
      const sampledPeak = stopSampling();
      reloadSeconds.push((Date.now() - reloadStarted) / 1000);
      peaks.push(pids.map((pid) => procStatus(pid).hwm));
      perReload.push({
        beforeMiB: beforeReload.map((b) => b / MiB),
        peakMiB: peaks.at(-1)!.map((b) => b / MiB),
        before: before.map(inMiB),
        sampledPeak: sampledPeak.map(inMiB),
        logged: logs
          .filter((l) => l.msg === 'rules reloaded')
          .slice(-workers)
          .map(({ pid, rssMiB, heapMiB, arrayBuffersMiB }) => ({ pid, rssMiB, heapMiB, arrayBuffersMiB })),
      });
      await someTraffic(port, workers);
      await sleep(3000);
      after.push(pids.map((pid) => procStatus(pid).rss));
    }
    return {
      workers,
      loadSeconds,
      steadyMiB: steady.map((b) => b / MiB),
      primaryMiB: workers === 1 ? null : procStatus(child.pid!).rss / MiB,
      reloadPeakMiB: pids.map((_, i) => Math.max(...peaks.map((p) => p[i]!)) / MiB),
      afterReloadMiB: pids.map((_, i) => median(after.map((a) => a[i]!)) / MiB),
      reloadSeconds,
      perReload,
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  process.stderr.write(`writing the shipped rules plus ${TARGET_DOMAINS.toLocaleString('en')} bench domains…\n`);
  const { dir, domains } = await writeRulesDir();
  try {
    const runs: Run[] = [];
    for (const workers of (process.env.MEMORY_WORKERS ?? '1,2').split(',').map(Number)) {
      process.stderr.write(`lachan serve --workers ${workers}…\n`);
      runs.push(await measure(dir, workers));
    }
    const f = (values: readonly number[]): string => values.map((v) => v.toFixed(0)).join(' / ');
    const rows = runs.map((run) => {
      const worst = Math.max(...run.reloadPeakMiB.map((peak, i) => peak / run.steadyMiB[i]!));
      return [
        `--workers ${run.workers}`,
        `${run.loadSeconds.toFixed(1)} s`,
        f(run.steadyMiB),
        f(run.reloadPeakMiB),
        `${worst.toFixed(2)}×`,
        f(run.afterReloadMiB),
        run.primaryMiB === null ? '–' : run.primaryMiB.toFixed(0),
        `${median(run.reloadSeconds).toFixed(1)} s`,
      ];
    });
    process.stdout.write(`bench domain lines: ${domains.toLocaleString('en')} (plus the shipped rules); ${REQUESTS} requests a worker before each reading\n`);
    process.stdout.write(
      `${markdownTable(['run', 'start to listening', 'steady RSS per worker (MiB)', 'reload peak (MiB)', 'peak / steady', 'RSS after reloads (MiB)', 'primary RSS (MiB)', 'reload'], rows)}\n`,
    );
    process.stdout.write(`${JSON.stringify({ domains, reloads: RELOADS, requests: REQUESTS, runs })}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
