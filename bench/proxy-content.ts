/**
 * bench:proxy-content: what reading pages costs the proxy (docs/contract.md §8). Two
 * lachan processes on CPU 0 with the same rules (the shipped phrases of adult,
 * gambling, drugs, violence and self-harm), one whose profile has `content_limit: 60`
 * (every text/html body goes through the inspector) and one without (the fast path);
 * a harmless Vietnamese HTML page of 1 KB and 100 KB from an origin on CPU 1, loaded
 * with autocannon from CPU 1. Runs alternate (rep → size → target); medians shown.
 * Beside requests per second, each lachan's CPU time per response (/proc, user +
 * system): on a shared box other processes take turns on CPU 0 and move req/s from
 * run to run, but hardly what a response costs, so "CPU vs not read" (not read's CPU
 * per response ÷ this one's, what req/s would read on a core of its own) is the
 * steadier ratio; "of it user" is the part spent outside the kernel (reading pages adds
 * user time only: the system calls of a response are the same). Last, the inspector alone in this process on the same pages (CPU µs
 * a page, least of five rounds): what inspection itself costs, load or not.
 *
 * `--encoding gzip` or `br` serves the pages compressed (the inspector inflates them);
 * `--pages news` serves news text (the dantri.com.vn articles of `--data`, default
 * ../shared/data/vi-text) instead of one lesson line repeated, which compresses 170 to 1
 * where real pages compress 4 or 5 to 1;
 * `--base-dist OTHER/dist` adds a third lachan, another build reading pages, in the same
 * repetitions, for an A/B of two builds.
 *
 *   npm run bench:proxy-content [-- --duration 5 --reps 3 --connections 20 --encoding gzip --base-dist ../old/dist]
 */
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ContentInspection } from '../src/content/inspector.js';
import { loadPolicy } from '../src/rules/loader.js';
import { pageChoice, servedPage } from './lib/origin.js';
import { lachanServeArgs, startPinned } from './lib/pinned.js';
import { CLOCK_TICKS_PER_SECOND, treeCpuTicks } from './lib/proc.js';
import { markdownTable, median } from './lib/stats.js';

const SELF = fileURLToPath(import.meta.url);
const DIST = path.resolve(path.dirname(SELF), '..');
const REPO = path.resolve(DIST, '..');
const CLI = path.join(DIST, 'src/cli/main.js');
const HOST = 'trang.bench';
const SIZES = [1024, 102_400];
const CATEGORIES = ['adult', 'gambling', 'drugs', 'violence', 'self-harm'];

type Autocannon = (
  options: Record<string, unknown>,
) => Promise<{ requests: { average: number; total: number }; latency: { p50: number; p99: number }; errors: number; timeouts: number; non2xx: number }>;

/** User CPU time of one process (lachan with one worker serves in-process), in clock ticks. */
function userTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[11]);
}

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

function textOption(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

const PAGES = pageChoice(process.argv, path.join(REPO, '../shared/data'));
const ENCODING = PAGES.encoding;
const served = (size: number): Buffer => servedPage(size, PAGES).body;

function runOrigin(): void {
  const pages = new Map(SIZES.map((size) => [`/${size}`, served(size)]));
  const encoding = ENCODING === undefined ? {} : { 'content-encoding': ENCODING };
  const server = createServer((req, res) => {
    const body = pages.get(req.url ?? '') ?? Buffer.alloc(0);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': body.length, ...encoding }).end(body);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: (server.address() as { port: number }).port })));
}

function rulesDir(work: string, name: string, contentLimit: boolean): string {
  const dir = path.join(work, name);
  for (const category of CATEGORIES) {
    mkdirSync(path.join(dir, 'categories', category), { recursive: true });
    writeFileSync(path.join(dir, 'categories', category, 'phrases'), readFileSync(path.join(REPO, 'rules/categories', category, 'phrases')));
  }
  writeFileSync(
    path.join(dir, 'policy.yaml'),
    `version: 1\ndefault_profile: bench\nprofiles:\n  bench:\n    name: "Bench"\n    block_categories: [${CATEGORIES.join(', ')}]\n${contentLimit ? '    content_limit: 60\n' : ''}`,
  );
  return dir;
}

/**
 * CPU µs a page from `begin` to `release`, driven as the proxy drives a body (100 KB
 * in 64 KiB reads, the last with the end); the least of five rounds, since other
 * processes can only add to it.
 */
async function inspectorAlone(rules: string): Promise<string[][]> {
  const inspection = ContentInspection.for(await loadPolicy(rules), 'bench');
  if (inspection === null) throw new Error('the bench profile has no content_limit');
  const rows: string[][] = [];
  for (const size of SIZES) {
    const body = served(size);
    const reads: Buffer[] = [];
    for (let at = 0; at < body.length; at += 65_536) reads.push(body.subarray(at, at + 65_536));
    const pages = Math.round(20_000_000 / size);
    const round = (): void => {
      for (let n = 0; n < pages; n++) {
        const inspector = inspection.begin('text/html; charset=utf-8', ENCODING)!;
        for (let k = 0; k < reads.length - 1; k++) if (inspector.write(reads[k]!).verdict !== undefined) throw new Error('the bench page was blocked');
        if (inspector.end(reads[reads.length - 1]).verdict !== undefined) throw new Error('the bench page was blocked');
        inspector.release();
      }
    };
    round(); // warm-up
    let best = Number.POSITIVE_INFINITY;
    for (let r = 0; r < 5; r++) {
      const cpu = process.cpuUsage();
      round();
      const used = process.cpuUsage(cpu);
      best = Math.min(best, (used.user + used.system) / pages);
    }
    rows.push([`${size / 1024} KB`, best.toFixed(1)]);
  }
  return rows;
}

async function main(): Promise<void> {
  const duration = option('duration', 5);
  const reps = option('reps', 3);
  const connections = option('connections', 20);
  const work = mkdtempSync(path.join(tmpdir(), 'lachan-bench-content-'));
  const children: ChildProcess[] = [];
  try {
    const origin = await startPinned(1, process.execPath, [
      SELF,
      '--role',
      'origin',
      '--pages',
      PAGES.pages!,
      '--data',
      PAGES.data!,
      ...(ENCODING === undefined ? [] : ['--encoding', ENCODING]),
    ]);
    children.push(origin.child);
    const hostsFile = path.join(work, 'hosts');
    writeFileSync(hostsFile, `127.0.0.1 ${HOST}\n`);
    const targets: { name: string; port: number; pid: number }[] = [];
    const baseDist = textOption('base-dist');
    const lachans: [string, boolean, string][] = [
      ['lachan, pages read (content_limit)', true, CLI],
      ['lachan, not read', false, CLI],
    ];
    if (baseDist !== undefined) lachans.push([`${baseDist}, pages read`, true, path.resolve(baseDist, 'src/cli/main.js')]);
    for (const [name, inspect, cli] of lachans) {
      const dir = rulesDir(work, inspect ? 'rules-read' : 'rules-plain', inspect);
      const lachan = await startPinned(
        0,
        process.execPath,
        lachanServeArgs(cli, { rules: dir, data: path.join(work, `var-${targets.length}`), hosts: hostsFile }, 1, ['--certs', path.join(work, 'no-certs')]),
        (l) => l.msg === 'listening',
      );
      children.push(lachan.child);
      targets.push({ name, port: lachan.line.port as number, pid: lachan.child.pid! });
    }
    const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
    const samples = new Map<string, { rps: number[]; p99: number[]; cpuUs: number[]; userUs: number[]; errors: number }>();
    for (let rep = 0; rep < reps; rep++) {
      for (const size of SIZES) {
        for (const target of targets) {
          const url = `http://${HOST}:${origin.line.port as number}/${size}`;
          const ticks = treeCpuTicks(target.pid);
          const user = userTicks(target.pid);
          const result = await autocannon({ url: `http://127.0.0.1:${target.port}`, connections, duration, requests: [{ method: 'GET', path: url }] });
          const key = `${target.name}\u0000${size}`;
          const entry = samples.get(key) ?? { rps: [], p99: [], cpuUs: [], userUs: [], errors: 0 };
          const perResponse = (ticksUsed: number): number => ((ticksUsed / CLOCK_TICKS_PER_SECOND) * 1e6) / Math.max(1, result.requests.total);
          const cpuUs = perResponse(treeCpuTicks(target.pid) - ticks);
          entry.rps.push(result.requests.average);
          entry.cpuUs.push(cpuUs);
          entry.userUs.push(perResponse(userTicks(target.pid) - user));
          entry.p99.push(result.latency.p99);
          entry.errors += result.errors + result.timeouts + result.non2xx;
          samples.set(key, entry);
          process.stderr.write(
            `rep ${rep + 1} ${size} B ${target.name}: ${Math.round(result.requests.average)} req/s, ${cpuUs.toFixed(1)} µs CPU a response\n`,
          );
        }
      }
    }
    const rows: string[][] = [];
    for (const size of SIZES) {
      const notRead = samples.get(`${targets[1]!.name}\u0000${size}`)!;
      const plain = median(notRead.rps);
      const plainCpu = median(notRead.cpuUs);
      for (const target of targets) {
        const s = samples.get(`${target.name}\u0000${size}`)!;
        rows.push([
          `${size / 1024} KB`,
          target.name,
          String(Math.round(median(s.rps))),
          String(median(s.p99)),
          (median(s.rps) / plain).toFixed(2),
          median(s.cpuUs).toFixed(1),
          median(s.userUs).toFixed(1),
          (plainCpu / median(s.cpuUs)).toFixed(2),
          String(s.errors),
        ]);
      }
    }
    console.log(
      markdownTable(['page', 'target', 'req/s (median)', 'p99 ms', 'vs not read', 'CPU µs a response', 'of it user', 'CPU vs not read', 'errors'], rows),
    );
    console.log('');
    console.log(markdownTable(['page', 'inspector alone, CPU µs a page'], await inspectorAlone(path.join(work, 'rules-read'))));
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv.includes('--role') && process.argv[process.argv.indexOf('--role') + 1] === 'origin') runOrigin();
else await main();
