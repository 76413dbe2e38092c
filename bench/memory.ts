/**
 * Memory of a real gateway: `lachan serve` with every shipped rule (hand-written and
 * bundled lists) plus the 5 M-domain bench rules (every real list of ../shared/data
 * and generated names to make up the rest, as bench:match loads them), started with
 * the proxy's V8 flags as `npm start` starts it.
 *
 * For `--workers 1` and `--workers 2`, before each reload it reads each proxy worker's
 * RSS the same way (steady): after REQUESTS requests a worker and 3 s without traffic.
 * Then it edits the rules folder as a school would and reads the peak RSS while the
 * new policy loads beside the serving one (the kernel's high-water mark, VmHWM, reset
 * before each reload). Two kinds of reload, in the order MEMORY_RELOADS gives:
 *
 *   policy      policy.yaml edited (an allowed domain added): the domain files are
 *               unchanged, and the new policy shares the serving one's compiled sets
 *   list        a line added to the school's gambling `domains` file: the small files'
 *               tier compiles again, the large lists' set is shared
 *   large-list  a line added to the largest bench list: the large tier compiles again,
 *               beside the serving one (src/rules/domain-files.ts)
 *
 * Each reload's peak is divided by the steady reading just before it.
 *
 *   npm run bench:memory
 *   MEMORY_DOMAINS=1000000 MEMORY_RELOADS=policy,large-list MEMORY_REQUESTS=300 MEMORY_WORKERS=2 npm run bench:memory
 *
 * Prints a markdown table and one JSON line.
 */
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PROXY_V8_FLAGS, withProxyMallocEnv } from '../src/cli/v8-flags.js';
import { generatedDomainText, realDomainLists } from './lib/data.js';
import { markdownTable, median } from './lib/stats.js';
import { childrenOf } from './lib/proc.js';
import { type RunningServe, startServe } from './lib/serve.js';

const TARGET_DOMAINS = Number(process.env.MEMORY_DOMAINS ?? 5_000_000);
const RELOAD_KINDS = ['policy', 'list', 'large-list'] as const;
type ReloadKind = (typeof RELOAD_KINDS)[number];
const RELOADS = (process.env.MEMORY_RELOADS ?? 'policy,list,large-list,policy,list,large-list').split(',').map((kind) => {
  if (!(RELOAD_KINDS as readonly string[]).includes(kind)) throw new Error(`MEMORY_RELOADS: one of ${RELOAD_KINDS.join(', ')}, not "${kind}"`);
  return kind as ReloadKind;
});
/**
 * Requests a worker before each reading (the primary spreads them). A worker's RSS
 * grows with the traffic it has served until its young generation (2 × 16 MiB under
 * the proxy's flags) has cycled: 208 MiB after the load, 220 after 300 requests,
 * 238–246 after a few thousand (bench/RESULTS.md, 2026-12-04). 300 in all measured a
 * worker barely in service, and with `--workers 2` one that had served half as much.
 */
const REQUESTS = Number(process.env.MEMORY_REQUESTS ?? 3000);
/** V8 flags after the proxy's own (a later flag wins), to try another heap sizing: `MEMORY_V8_FLAGS=--max-semi-space-size=8`. */
const EXTRA_V8_FLAGS = (process.env.MEMORY_V8_FLAGS ?? '').split(' ').filter((flag) => flag !== '');
const REPO = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(REPO, 'dist/src/cli/main.js');
const MiB = 1024 * 1024;

/** The shipped rules folder with the bench lists as extra categories every profile blocks. */
async function writeRulesDir(): Promise<{ dir: string; domains: number; largest: string }> {
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
  const largest = lists.reduce((a, b) => (b.lines > a.lines ? b : a));
  return { dir, domains: lists.reduce((sum, list) => sum + list.lines, 0), largest: path.join(dir, 'categories', `bench-${largest.category}`, 'domains') };
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

interface Reload {
  kind: ReloadKind;
  /** What the reload's log line says of the domain files, per worker: reused or compiled. */
  domainFiles: unknown[];
  /** Per worker: the steady reading just before the reload, and the reload's peak. */
  beforeMiB: number[];
  peakMiB: number[];
  before: Split[];
  sampledPeak: Split[];
  logged: Record<string, unknown>[];
  seconds: number;
}

interface Run {
  workers: number;
  loadSeconds: number;
  /** Every steady reading of every worker: before each reload, and after the last. */
  steadyMiB: number[];
  primaryMiB: number | null;
  reloads: Reload[];
}

/** Edits the rules folder as a school would; the gateway's watcher reloads. */
function editRules(rulesDir: string, largest: string, kind: ReloadKind, round: number): void {
  if (kind === 'policy') {
    const file = path.join(rulesDir, 'policy.yaml');
    const text = readFileSync(file, 'utf8');
    const edited = text.replace('allow_domains: [olm.vn,', `allow_domains: [reload-${round}.example, olm.vn,`);
    if (edited === text) throw new Error('policy.yaml: no allow_domains line to edit');
    writeFileSync(file, edited);
  } else {
    appendFileSync(kind === 'list' ? path.join(rulesDir, 'categories', 'gambling', 'domains') : largest, `reload-${round}.example\n`);
  }
}

/** The files editRules changes, as they were written: each run starts from them. */
function snapshotEdited(rulesDir: string, largest: string): Map<string, number | string> {
  const files = [path.join(rulesDir, 'policy.yaml'), path.join(rulesDir, 'categories', 'gambling', 'domains')];
  // The largest list is only appended to: its length is enough to undo that.
  return new Map<string, number | string>([...files.map((file) => [file, readFileSync(file, 'utf8')] as const), [largest, statSync(largest).size]]);
}

function restoreEdited(snapshot: ReadonlyMap<string, number | string>): void {
  for (const [file, content] of snapshot) {
    if (typeof content === 'string') writeFileSync(file, content);
    else truncateSync(file, content);
  }
}

async function measure(rulesDir: string, largest: string, workers: number): Promise<Run> {
  const work = mkdtempSync(path.join(tmpdir(), 'lachan-bench-memory-var-'));
  const logs: Record<string, unknown>[] = [];
  const started = Date.now();
  let gateway: RunningServe | undefined;
  try {
    gateway = await startServe(
      { cli: CLI, rules: rulesDir, data: path.join(work, 'var'), certs: path.join(work, 'no-certs'), workers, nodeArgs: EXTRA_V8_FLAGS },
      {
        // The C library's setting `npm start` and the systemd unit give the proxy (src/cli/v8-flags.ts).
        env: withProxyMallocEnv(process.env),
        onLine: (line) => {
          try {
            logs.push(JSON.parse(line) as Record<string, unknown>);
          } catch {
            // not a log line
          }
        },
      },
    );
    const loadSeconds = (Date.now() - started) / 1000;
    const { child, port } = gateway;
    const waitFor = async (predicate: () => boolean, what: string): Promise<void> => {
      for (let waited = 0; !predicate(); waited += 50) {
        if (child.exitCode !== null) throw new Error(`lachan serve exited (${child.exitCode}) waiting for ${what}`);
        if (waited > 600_000) throw new Error(`timed out waiting for ${what}`);
        await sleep(50);
      }
    };
    const pids = workers === 1 ? [child.pid!] : childrenOf(child.pid!);
    if (pids.length !== workers) throw new Error(`found ${pids.length} workers, expected ${workers}`);
    const steadyReading = async (): Promise<number[]> => {
      await someTraffic(port, workers);
      await sleep(3000);
      return pids.map((pid) => procStatus(pid).rss);
    };
    const reloadLines = (): Record<string, unknown>[] => logs.filter((l) => l.msg === 'rules reloaded');
    const steady: number[] = [];
    const reloads: Reload[] = [];
    for (const [round, kind] of RELOADS.entries()) {
      const beforeReload = await steadyReading();
      steady.push(...beforeReload);
      const before = pids.map(residentSplit);
      pids.forEach(resetPeak);
      const stopSampling = sampleSplits(pids);
      const reloaded = reloadLines().length;
      const reloadStarted = Date.now();
      editRules(rulesDir, largest, kind, round);
      await waitFor(() => reloadLines().length >= reloaded + workers, 'rules reloaded');
      const sampledPeak = stopSampling();
      const logged = reloadLines().slice(-workers);
      reloads.push({
        kind,
        domainFiles: logged.map((l) => l.domainFiles),
        beforeMiB: beforeReload.map((b) => b / MiB),
        peakMiB: pids.map((pid) => procStatus(pid).hwm / MiB),
        before: before.map(inMiB),
        sampledPeak: sampledPeak.map(inMiB),
        logged: logged.map(({ pid, rssMiB, heapMiB, arrayBuffersMiB }) => ({ pid, rssMiB, heapMiB, arrayBuffersMiB })),
        seconds: (Date.now() - reloadStarted) / 1000,
      });
      // One edit, one reload: a second one (the watcher firing twice) would be measured as the next.
      await sleep(1000);
      if (reloadLines().length !== reloaded + workers) throw new Error(`one edit gave ${reloadLines().length - reloaded} reload lines`);
    }
    steady.push(...(await steadyReading()));
    return {
      workers,
      loadSeconds,
      steadyMiB: steady.map((b) => b / MiB),
      primaryMiB: workers === 1 ? null : procStatus(child.pid!).rss / MiB,
      reloads,
    };
  } finally {
    await gateway?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  process.stderr.write(`writing the shipped rules plus ${TARGET_DOMAINS.toLocaleString('en')} bench domains…\n`);
  const { dir, domains, largest } = await writeRulesDir();
  try {
    const runs: Run[] = [];
    const pristine = snapshotEdited(dir, largest);
    for (const workers of (process.env.MEMORY_WORKERS ?? '1,2').split(',').map(Number)) {
      process.stderr.write(`lachan serve --workers ${workers}…\n`);
      // Each run starts from the same rules: the edits of the run before are undone.
      restoreEdited(pristine);
      runs.push(await measure(dir, largest, workers));
    }
    const f = (values: readonly number[]): string => values.map((v) => v.toFixed(0)).join(' / ');
    const spread = (values: readonly number[]): string =>
      `${Math.min(...values).toFixed(0)} / ${median(values).toFixed(0)} / ${Math.max(...values).toFixed(0)}`;
    const ratios = (run: Run, kind: ReloadKind): number[] =>
      run.reloads.filter((r) => r.kind === kind).flatMap((r) => r.peakMiB.map((peak, i) => peak / r.beforeMiB[i]!));
    const summary = runs.map((run) => {
      const cells = [`--workers ${run.workers}`, `${run.loadSeconds.toFixed(1)} s`, spread(run.steadyMiB)];
      for (const kind of RELOAD_KINDS) {
        const of = run.reloads.filter((r) => r.kind === kind);
        cells.push(of.length === 0 ? '–' : spread(of.flatMap((r) => r.peakMiB)), of.length === 0 ? '–' : `${Math.max(...ratios(run, kind)).toFixed(2)}×`);
      }
      cells.push(run.primaryMiB === null ? '–' : run.primaryMiB.toFixed(0));
      return cells;
    });
    const perReload = runs.flatMap((run) =>
      run.reloads.map((reload, n) => [
        `--workers ${run.workers}`,
        `${n + 1}: ${reload.kind}`,
        [...new Set(reload.domainFiles.map(String))].join(', '),
        f(reload.beforeMiB),
        f(reload.peakMiB),
        reload.peakMiB.map((peak, i) => `${(peak / reload.beforeMiB[i]!).toFixed(2)}×`).join(' / '),
        `${reload.seconds.toFixed(1)} s`,
      ]),
    );
    process.stdout.write(
      `bench domain lines: ${domains.toLocaleString('en')} (plus the shipped rules); ${REQUESTS} requests a worker and 3 s idle before each steady reading; V8 flags ${[...PROXY_V8_FLAGS, ...EXTRA_V8_FLAGS].join(' ')}\n`,
    );
    process.stdout.write(
      `${markdownTable(
        [
          'run',
          'start to listening',
          'steady RSS min / median / max (MiB)',
          ...RELOAD_KINDS.flatMap((kind) => [`${kind} reload peak min / median / max`, 'worst peak ÷ steady before it']),
          'primary RSS (MiB)',
        ],
        summary,
      )}\n\n`,
    );
    process.stdout.write(`${markdownTable(['run', 'reload', 'domain files', 'steady before (MiB)', 'peak (MiB)', 'peak ÷ steady', 'reload'], perReload)}\n`);
    process.stdout.write(`${JSON.stringify({ domains, reloads: RELOADS, requests: REQUESTS, runs })}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
