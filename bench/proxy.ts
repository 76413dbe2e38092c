/**
 * bench:proxy: lachan's forwarding cost against the origin alone, two bare Node
 * forward proxies (bench/bare/: http-proxy, and undici `dispatch`) and Debian's squid.
 *
 *   npm run bench:proxy [-- --duration 10 --warmup 2 --reps 3 --connections 50
 *                           --domains 5000000 --sizes 1024,102400 --no-wrk --no-paired --no-scaling --no-inspection --out FILE]
 *
 * Every proxy runs pinned to CPU 0 (`taskset -c 0`); the origin and the load generator
 * (autocannon, and wrk where installed) share CPU 1. lachan runs `--workers 1` with a
 * generated category of `--domains` names loaded (the requested host is not in it, so
 * every request is decided and forwarded) and its event log open, started with the
 * V8 flags its executable and systemd unit give it (src/cli/v8-flags.ts). Runs are
 * interleaved (rep → size → target) and the table shows medians over repetitions.
 *
 * Targets: lachan ≥ 1.2× squid at 1 KB, ≥ 2× squid at 100 KB,
 * ≥ 0.9× the faster bare Node proxy at each size, p99 ≤ 1.3× that bare proxy's.
 *
 * A full run (defaults) takes about 15 minutes: 5 targets × 2 sizes × 2 tools × 5 reps × 6 s,
 * then the paired and scaling phases.
 * To check that it works: `node dist/bench/proxy.js --duration 1 --warmup 1 --reps 1 --domains 20000`.
 * Then (unless --no-paired) lachan and each rival (bare undici, squid) loaded at the
 * same time on CPU 0: rate and CPU-per-request ratios that the machine's drift cannot
 * skew, since both sides live through the same moments. Then (unless --no-scaling)
 * lachan --workers 2 on both cores against --workers 1 on CPU 0.
 * Then (unless --no-inspection) the inspection phase (bench/lib/inspection-phase.ts):
 * lachan reading every HTML page against squid and e2guardian on the same pages.
 * lachan's memory line compares its RSS with the rules loaded against the same process
 * with an empty rules folder: the cost of the compiled rules for each worker.
 *
 * Changes of 2026-11-28 (evening), and why:
 * - The origin is bench/lib/origin.ts, a raw `net` server writing one precomputed
 *   keep-alive response per request head. The node:http origin shared CPU 1 with the
 *   load generator and capped "origin direct" at ~15 k req/s (1 KB): the bench measured
 *   the origin, not the proxies. With the raw origin wrk reaches ~28 k req/s direct at
 *   1 KB on a busy machine; autocannon (one JS thread on CPU 1) stays ~10–20 k, so at
 *   1 KB autocannon is the load-side ceiling and wrk's column is the one to trust.
 * - bench/bare/undici-proxy.ts uses `Agent.dispatch` with a handler writing chunks into
 *   the ServerResponse (as lachan does) instead of `request` + `pipeline`, raw header
 *   arrays, `pipelining: 1`, 128 connections; bench/bare/http-proxy.ts keeps one
 *   keep-alive Agent (maxSockets 128), splits the target without `new URL`, drops
 *   `Proxy-Connection`. Both answer at both sizes with 0 errors.
 * - Measured CPU time during a 100 KB run: each proxy on CPU 0 is CPU-bound (~80 % of
 *   the core in the proxy process, the rest other processes); most of its samples are
 *   kernel socket writes (writev / writeLatin1String self time includes the syscall).
 *
 * The same file is also the origin (`--role origin`) and the load generator
 * (`--role load JSON`), so both can be pinned as separate processes.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, chmodSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { markdownTable, median } from './lib/stats.js';
import { startOrigin } from './lib/origin.js';
import { CLOCK_TICKS_PER_SECOND, freePort, treeCpuTicks, waitForPort } from './lib/proc.js';
import { startPinned } from './lib/pinned.js';
import { startServe } from './lib/serve.js';
import { SQUID, squidCommonConfig, startSquid } from './lib/squid.js';
import { PROXY_V8_FLAGS } from '../src/cli/v8-flags.js';
import { inspectionPhase } from './lib/inspection-phase.js';

const SELF = fileURLToPath(import.meta.url);
const DIST = path.resolve(path.dirname(SELF), '..');
const CLI = path.join(DIST, 'src/cli/main.js');
const BENCH_HOST = 'origin.bench';

interface LoadSpec {
  readonly port: number;
  readonly path: string;
  readonly connections: number;
  readonly duration: number;
}

interface Sample {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  /** CPU time the target's processes spent per request (µs), when measured. */
  readonly cpuUs?: number;
}

// ---- roles -----------------------------------------------------------------

function runOrigin(): void {
  startOrigin((port) => console.log(JSON.stringify({ port })));
}

interface AutocannonResult {
  requests: { average: number };
  latency: { p50: number; p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;

async function runLoad(spec: LoadSpec): Promise<void> {
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const result = await autocannon({
    url: `http://127.0.0.1:${spec.port}`,
    connections: spec.connections,
    duration: spec.duration,
    requests: [{ method: 'GET', path: spec.path }],
  });
  const sample: Sample = {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
  };
  console.log(JSON.stringify(sample));
}

// ---- driver ----------------------------------------------------------------

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : (process.argv[index + 1] ?? fallback);
}

function positive(name: string, fallback: number): number {
  const value = Number(option(name, String(fallback)));
  if (!(value > 0)) throw new Error(`--${name} takes a positive number`);
  return value;
}

async function writeDomains(file: string, count: number): Promise<void> {
  const out = createWriteStream(file);
  let chunk = '';
  for (let i = 0; i < count; i++) {
    // Distinct, realistic-looking names spread over a few TLDs.
    chunk += `s${((i * 2654435761) >>> 0).toString(36)}${i.toString(36)}.${TLDS[i % TLDS.length]}\n`;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
}
const TLDS = ['com', 'net', 'org', 'vn', 'com.vn', 'info', 'xyz', 'top'];

function squidConfig(dir: string, port: number): string {
  return `http_port 127.0.0.1:${port}\n${squidCommonConfig(dir)}`;
}

function sizeLabel(size: number): string {
  return size >= 1024 ? `${size / 1024} KB` : `${size} B`;
}

function rssKiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match === null ? 0 : Number(match[1]);
}

function runWrk(spec: LoadSpec, script: string): Promise<Sample | null> {
  return new Promise((resolve) => {
    execFile(
      'taskset',
      ['-c', '1', 'wrk', '-t1', `-c${spec.connections}`, `-d${spec.duration}s`, '--latency', '-s', script, `http://127.0.0.1:${spec.port}/`],
      { env: { ...process.env, BENCH_PATH: spec.path } },
      (error, stdout) => {
        if (error !== null) return resolve(null);
        const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
        const unit = (value: string, suffix: string): number => Number(value) * (suffix === 'us' ? 0.001 : suffix === 's' ? 1000 : 1);
        const p50 = /\s50%\s+([\d.]+)(us|ms|s)/.exec(stdout);
        const p99 = /\s99%\s+([\d.]+)(us|ms|s)/.exec(stdout);
        const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout);
        const socketErrors = /Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)/.exec(stdout);
        if (rps === null || p50 === null || p99 === null) return resolve(null);
        const errors = Number(non2xx?.[1] ?? 0) + (socketErrors === null ? 0 : socketErrors.slice(1).reduce((s, v) => s + Number(v), 0));
        resolve({ rps: Number(rps[1]), p50: unit(p50[1]!, p50[2]!), p99: unit(p99[1]!, p99[2]!), errors });
      },
    );
  });
}

async function runAutocannon(spec: LoadSpec): Promise<Sample> {
  const { child, line } = await startPinned(1, process.execPath, [SELF, '--role', 'load', JSON.stringify(spec)]);
  await once(child, 'exit');
  return line as unknown as Sample;
}

interface Target {
  readonly name: string;
  readonly port: number;
  /** The request target this proxy (or the origin itself) is sent. */
  readonly path: (size: number) => string;
  readonly pid: number;
}

async function main(): Promise<void> {
  const duration = positive('duration', 6);
  const warmup = positive('warmup', 2);
  const reps = positive('reps', 5);
  const connections = positive('connections', 50);
  const domains = positive('domains', 5_000_000);
  const sizes = option('sizes', '1024,102400').split(',').map(Number);
  const useWrk = !process.argv.includes('--no-wrk') && existsSync('/usr/bin/wrk');
  const haveSquid = existsSync(SQUID) && !process.argv.includes('--no-squid');
  const out = option('out', '');

  const work = mkdtempSync(path.join(tmpdir(), 'lachan-bench-proxy-'));
  const children: ChildProcess[] = [];
  const cleanup = (): void => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    const origin = await startPinned(1, process.execPath, [SELF, '--role', 'origin']);
    children.push(origin.child);
    const originPort = origin.line.port as number;
    const direct = (size: number): string => `http://127.0.0.1:${originPort}/${size}`;

    // lachan's rules: one profile blocking a generated category the benchmark host is not in.
    const rulesDir = path.join(work, 'rules');
    mkdirSync(path.join(rulesDir, 'categories/bench'), { recursive: true });
    writeFileSync(
      path.join(rulesDir, 'policy.yaml'),
      'version: 1\ndefault_profile: bench\nprofiles:\n  bench:\n    name: "Bench"\n    block_categories: [bench]\n    block_ip_literals: true\n',
    );
    process.stderr.write(`generating ${domains} domains… `);
    await writeDomains(path.join(rulesDir, 'categories/bench/domains'), domains);
    process.stderr.write('done\n');
    const hostsFile = path.join(work, 'hosts');
    writeFileSync(hostsFile, `127.0.0.1 ${BENCH_HOST}\n`);

    const started = Date.now();
    const lachan = await startServe({ cli: CLI, rules: rulesDir, data: path.join(work, 'var'), hosts: hostsFile }, { cpu: 0 });
    children.push(lachan.child);
    const lachanStartMs = Date.now() - started;
    const lachanRss = rssKiB(lachan.child.pid!);

    // The same process with no rules: the difference is what the compiled rules cost a worker.
    const emptyRules = path.join(work, 'empty-rules');
    mkdirSync(emptyRules);
    writeFileSync(
      path.join(emptyRules, 'policy.yaml'),
      'version: 1\ndefault_profile: bench\nprofiles:\n  bench:\n    name: "Bench"\n    block_categories: []\n',
    );
    const empty = await startServe({ cli: CLI, rules: emptyRules, data: path.join(work, 'var-empty'), hosts: hostsFile }, { cpu: 0 });
    const emptyRss = rssKiB(empty.child.pid!);
    await empty.stop();

    const bareUndici = await startPinned(0, process.execPath, [path.join(DIST, 'bench/bare/undici-proxy.js')]);
    children.push(bareUndici.child);
    const bareHttpProxy = await startPinned(0, process.execPath, [path.join(DIST, 'bench/bare/http-proxy.js')]);
    children.push(bareHttpProxy.child);

    const targets: Target[] = [
      { name: 'origin (direct)', port: originPort, path: (size) => `/${size}`, pid: origin.child.pid! },
      { name: 'bare http-proxy', port: bareHttpProxy.line.port as number, path: direct, pid: bareHttpProxy.child.pid! },
      { name: 'bare undici', port: bareUndici.line.port as number, path: direct, pid: bareUndici.child.pid! },
    ];
    if (haveSquid) {
      const squidDir = path.join(work, 'squid');
      mkdirSync(squidDir);
      chmodSync(squidDir, 0o777); // squid drops root for its own user and must write its log here
      const squidPort = await freePort();
      const squid = await startSquid(squidDir, squidConfig(squidDir, squidPort), squidPort);
      children.push(squid);
      targets.push({ name: 'squid', port: squidPort, path: direct, pid: squid.pid! });
    }
    targets.push({ name: 'lachan', port: lachan.line.port as number, path: (size) => `http://${BENCH_HOST}:${originPort}/${size}`, pid: lachan.child.pid! });

    const wrkScript = path.join(work, 'path.lua');
    writeFileSync(wrkScript, 'wrk.path = os.getenv("BENCH_PATH")\n');

    // Each proxy's first requests (JIT, pools) are not measured.
    for (const target of targets) for (const size of sizes) await runAutocannon({ port: target.port, path: target.path(size), connections, duration: warmup });

    const tools = useWrk ? (['autocannon', 'wrk'] as const) : (['autocannon'] as const);
    const runTool = (tool: 'autocannon' | 'wrk', spec: LoadSpec): Promise<Sample | null> => (tool === 'wrk' ? runWrk(spec, wrkScript) : runAutocannon(spec));
    /** Runs one load against `target` and adds the CPU time its processes spent per request. */
    const measure = async (target: Target, spec: LoadSpec, tool: 'autocannon' | 'wrk'): Promise<Sample | null> => {
      const before = treeCpuTicks(target.pid);
      const sample = await runTool(tool, spec);
      // A run that got no answer at all failed; a zero would drag the medians down.
      if (sample === null || sample.rps <= 0) return null;
      const cpuSeconds = (treeCpuTicks(target.pid) - before) / CLOCK_TICKS_PER_SECOND;
      return { ...sample, cpuUs: (cpuSeconds * 1e6) / (sample.rps * spec.duration) };
    };
    // Per (tool, size, target), the sample of each repetition (null where a run failed).
    const samples = new Map<string, (Sample | null)[]>();
    const key = (tool: string, size: number, name: string): string => `${tool}\u0000${size}\u0000${name}`;
    for (let rep = 0; rep < reps; rep++) {
      // Each repetition starts the rotation one target later: no target always runs
      // right after the same neighbour, or always first after a size change.
      const order = targets.map((_, i) => targets[(i + rep) % targets.length]!);
      for (const size of sizes) {
        for (const target of order) {
          for (const tool of tools) {
            const spec = { port: target.port, path: target.path(size), connections, duration };
            const sample = await measure(target, spec, tool);
            const list = samples.get(key(tool, size, target.name)) ?? [];
            list[rep] = sample;
            samples.set(key(tool, size, target.name), list);
            if (sample === null) {
              process.stderr.write(`rep ${rep + 1}/${reps} ${tool} ${size} B ${target.name}: failed (no responses)\n`);
              continue;
            }
            process.stderr.write(
              `rep ${rep + 1}/${reps} ${tool} ${size} B ${target.name}: ${sample.rps.toFixed(0)} req/s p99 ${sample.p99} ms cpu ${sample.cpuUs?.toFixed(0) ?? '?'} µs/req${sample.errors > 0 ? ` (${sample.errors} errors)` : ''}\n`,
            );
          }
        }
      }
    }

    const report: string[] = [
      `# bench:proxy — ${new Date().toISOString()}`,
      '',
      `${duration} s × ${reps} interleaved repetitions (medians; each repetition rotates the order of the targets), ${connections} connections, proxies on CPU 0, origin and load generator on CPU 1.`,
      `Command: node dist/bench/proxy.js ${process.argv.slice(2).join(' ')}`.trimEnd(),
      `lachan: --workers 1 with its V8 flags (${PROXY_V8_FLAGS.join(' ')}), ${domains.toLocaleString('en')} domains loaded in ${(lachanStartMs / 1000).toFixed(1)} s; RSS ${(lachanRss / 1024).toFixed(0)} MiB vs ${(emptyRss / 1024).toFixed(0)} MiB with no rules (compiled rules ≈ ${((lachanRss - emptyRss) / 1024).toFixed(0)} MiB per worker).`,
      'Ratios are given two ways: the ratio of the two medians, and the median of the ratios of each repetition (the two runs of a repetition are minutes apart at most, so drifts of the machine cancel); the verdict uses the second.',
      "CPU µs/req: user + system time of the target's processes during the run, per request served (what the proxy costs a core, whatever else limited the rate).",
      '',
    ];
    const json: Record<string, unknown>[] = [];
    for (const tool of tools) {
      const rows: string[][] = [];
      const present = (size: number, name: string): Sample[] => (samples.get(key(tool, size, name)) ?? []).filter((s): s is Sample => s != null);
      const summary = (size: number, name: string): Sample | null => {
        const list = present(size, name);
        if (list.length === 0) return null;
        const cpu = list.map((s) => s.cpuUs).filter((v): v is number => v !== undefined);
        return {
          rps: median(list.map((s) => s.rps)),
          p50: median(list.map((s) => s.p50)),
          p99: median(list.map((s) => s.p99)),
          errors: list.reduce((sum, s) => sum + s.errors, 0),
          cpuUs: cpu.length === 0 ? undefined : median(cpu),
        };
      };
      /** Median over repetitions of lachan's figure divided by `other`'s in the same repetition. */
      const pairedRatio = (size: number, other: string, pick: (s: Sample) => number): number | null => {
        const mine = samples.get(key(tool, size, 'lachan')) ?? [];
        const theirs = samples.get(key(tool, size, other)) ?? [];
        const ratios: number[] = [];
        for (let rep = 0; rep < reps; rep++) {
          const a = mine[rep];
          const b = theirs[rep];
          if (a != null && b != null && pick(b) > 0) ratios.push(pick(a) / pick(b));
        }
        return ratios.length === 0 ? null : median(ratios);
      };
      const checks: string[] = [];
      for (const size of sizes) {
        for (const target of targets) {
          const s = summary(size, target.name);
          if (s === null) {
            rows.push([target.name, sizeLabel(size), 'failed', '–', '–', '–', `${reps} of ${reps} runs`]);
            continue;
          }
          rows.push([
            target.name,
            sizeLabel(size),
            s.rps.toFixed(0),
            s.p50.toFixed(2),
            s.p99.toFixed(2),
            s.cpuUs === undefined ? '–' : s.cpuUs.toFixed(0),
            String(s.errors),
          ]);
          json.push({ tool, size, target: target.name, ...s });
        }
        const lachan = summary(size, 'lachan');
        const squid = summary(size, 'squid');
        const bareName = [
          ['bare undici', summary(size, 'bare undici')],
          ['bare http-proxy', summary(size, 'bare http-proxy')],
        ]
          .filter((entry): entry is [string, Sample] => entry[1] !== null)
          .sort((a, b) => b[1].rps - a[1].rps)[0]?.[0];
        if (lachan === null) continue;
        const label = sizeLabel(size);
        if (squid !== null) {
          const goal = size <= 1024 ? 1.2 : 2;
          const paired = pairedRatio(size, 'squid', (s) => s.rps);
          const verdict = paired ?? lachan.rps / squid.rps;
          checks.push(
            `${label}: lachan / squid = ${verdict.toFixed(2)}× per repetition, ${(lachan.rps / squid.rps).toFixed(2)}× of medians (target ≥ ${goal}×) ${verdict >= goal ? 'met' : 'NOT met'}`,
          );
          json.push({ tool, size, ratio: 'lachan/squid', paired, ofMedians: lachan.rps / squid.rps });
        }
        if (bareName !== undefined) {
          const bare = summary(size, bareName)!;
          const paired = pairedRatio(size, bareName, (s) => s.rps) ?? lachan.rps / bare.rps;
          const p99 = pairedRatio(size, bareName, (s) => s.p99) ?? lachan.p99 / bare.p99;
          checks.push(
            `${label}: lachan / fastest bare (${bareName}) = ${paired.toFixed(2)}× per repetition, ${(lachan.rps / bare.rps).toFixed(2)}× of medians (target ≥ 0.9×) ${paired >= 0.9 ? 'met' : 'NOT met'}; p99 ratio ${p99.toFixed(2)} (target ≤ 1.3) ${p99 <= 1.3 ? 'met' : 'NOT met'}`,
          );
          json.push({ tool, size, ratio: `lachan/${bareName}`, paired, ofMedians: lachan.rps / bare.rps, p99 });
        }
      }
      report.push(
        `## ${tool}`,
        '',
        markdownTable(['target', 'response', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'errors'], rows),
        '',
        ...checks.map((c) => `- ${c}`),
        '',
      );
    }
    report.push(`lachan RSS after the runs: ${(rssKiB(lachan.child.pid!) / 1024).toFixed(0)} MiB`, '');

    if (!process.argv.includes('--no-inspection')) {
      const tool = useWrk ? 'wrk' : 'autocannon';
      report.push(
        ...(await inspectionPhase({
          work,
          repo: path.resolve(DIST, '..'),
          cli: CLI,
          hostsFile,
          benchHost: BENCH_HOST,
          originPort,
          squid: targets.find((t) => t.name === 'squid') ?? null,
          sizes,
          reps,
          children,
          freePort,
          waitForPort,
          measure: (target, size) => measure(target, { port: target.port, path: target.path(size), connections, duration }, tool),
          warm: (target, size) => runAutocannon({ port: target.port, path: target.path(size), connections, duration: warmup }),
          log: (line) => process.stderr.write(`${line}\n`),
        })),
      );
    }

    // Paired: lachan and one rival loaded at the same time, both on CPU 0, so the
    // kernel shares that core between them and whatever the machine does in the
    // meantime (on a shared VM its speed drifts by 2× within minutes) hits both alike.
    // The CPU time each spent per request is what each costs a core.
    if (!process.argv.includes('--no-paired')) {
      const tool = useWrk ? 'wrk' : 'autocannon';
      const lachanTarget = targets.find((t) => t.name === 'lachan')!;
      const rivals = targets.filter((t) => t.name === 'bare undici' || t.name === 'squid');
      const pairedRows: string[][] = [];
      for (const size of sizes) {
        for (const rival of rivals) {
          const rateRatios: number[] = [];
          const costRatios: number[] = [];
          const p99Ratios: number[] = [];
          for (let rep = 0; rep < reps; rep++) {
            const spec = (target: Target): LoadSpec => ({ port: target.port, path: target.path(size), connections, duration });
            const [mine, theirs] = await Promise.all([measure(lachanTarget, spec(lachanTarget), tool), measure(rival, spec(rival), tool)]);
            if (mine === null || theirs === null || !(mine.cpuUs! > 0)) continue;
            rateRatios.push(mine.rps / theirs.rps);
            if (theirs.p99 > 0) p99Ratios.push(mine.p99 / theirs.p99);
            // (their CPU per request) / (lachan's): above 1, lachan costs the core less.
            costRatios.push(theirs.cpuUs! / mine.cpuUs!);
            process.stderr.write(
              `paired rep ${rep + 1}/${reps} ${size} B lachan ${mine.rps.toFixed(0)} req/s vs ${rival.name} ${theirs.rps.toFixed(0)} req/s\n`,
            );
          }
          if (rateRatios.length === 0) continue;
          const label = sizeLabel(size);
          const p99 = p99Ratios.length === 0 ? null : median(p99Ratios);
          pairedRows.push([label, rival.name, `${median(rateRatios).toFixed(2)}×`, `${median(costRatios).toFixed(2)}×`, p99 === null ? '–' : p99.toFixed(2)]);
          json.push({ tool, size, paired: rival.name, rateRatio: median(rateRatios), costRatio: median(costRatios), p99Ratio: p99 });
        }
      }
      report.push(
        `## paired (${tool}): lachan and a rival loaded at once, sharing CPU 0`,
        '',
        markdownTable(['response', 'rival', 'lachan / rival req/s', 'rival / lachan CPU per request', 'lachan / rival p99'], pairedRows),
        '',
      );
    }

    // Scaling: the same lachan with --workers 2 on both cores (sharing CPU 1 with the
    // origin and the load generator, as a 2-core gateway would share it with its other
    // work), against --workers 1 on CPU 0, interleaved.
    if (!process.argv.includes('--no-scaling')) {
      const two = await startServe({ cli: CLI, rules: rulesDir, data: path.join(work, 'var-2'), hosts: hostsFile, workers: 2 }, { cpu: '0,1' });
      children.push(two.child);
      const twoPort = two.line.port as number;
      const tool = useWrk ? 'wrk' : 'autocannon';
      const load = (port: number, size: number, seconds: number): Promise<Sample | null> =>
        runTool(tool, { port, path: `http://${BENCH_HOST}:${originPort}/${size}`, connections, duration: seconds });
      for (const size of sizes) await load(twoPort, size, warmup);
      const scalingRows: string[][] = [];
      for (const size of sizes) {
        const one: number[] = [];
        const both: number[] = [];
        for (let rep = 0; rep < reps; rep++) {
          const a = await load(lachan.line.port as number, size, duration);
          const b = await load(twoPort, size, duration);
          if (a !== null) one.push(a.rps);
          if (b !== null) both.push(b.rps);
          process.stderr.write(`scaling rep ${rep + 1}/${reps} ${size} B: workers 1 ${a?.rps.toFixed(0)} req/s, workers 2 ${b?.rps.toFixed(0)} req/s\n`);
        }
        if (one.length === 0 || both.length === 0) continue;
        const label = sizeLabel(size);
        scalingRows.push([label, median(one).toFixed(0), median(both).toFixed(0), `${(median(both) / median(one)).toFixed(2)}×`]);
        json.push({ tool, size, target: 'lachan --workers 2', rps: median(both) });
      }
      report.push(
        `## scaling (${tool}): lachan --workers 1 on CPU 0 vs --workers 2 on CPUs 0–1`,
        '',
        markdownTable(['response', 'workers 1 req/s', 'workers 2 req/s', 'ratio'], scalingRows),
        '',
      );
    }
    const text = report.join('\n');
    console.log(text);
    console.log(JSON.stringify({ bench: 'proxy', domains, lachanRssKiB: lachanRss, emptyRssKiB: emptyRss, results: json }));
    if (out !== '') writeFileSync(out, `${text}\n`);
  } finally {
    cleanup();
  }
}

const role = option('role', '');
if (role === 'origin') runOrigin();
else if (role === 'load') await runLoad(JSON.parse(process.argv[process.argv.indexOf('--role') + 2] ?? '{}') as LoadSpec);
else await main();
