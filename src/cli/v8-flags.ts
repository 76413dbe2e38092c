/**
 * V8 flags for the proxy's processes. A school's traffic comes in bursts (a lesson
 * starts, a class opens the same site) between idle spells, and V8's default
 * heuristics tune the heap for the idle spell, so each burst began slowly. Measured on
 * the project's box (bench/RESULTS.md, 2026-11-29), with 20 s of idle between runs:
 * lachan's CPU per 100 KB response doubled (124 → 209–265 µs) and per 1 KB response
 * rose 44 → 60–66 µs, p99 5 → 24–43 ms; with these flags runs after idle cost what the
 * first run did. What each one stops:
 *
 * - `--no-memory-reducer`: while idle, V8 ran compacting GCs that shrank the heap to
 *   its live size, so the next burst started with a full heap.
 * - `--min-semi-space-size=16`: the first scavenge after idle saw little allocation
 *   and shrank the young generation to 1 MB; it took seconds of 40+ scavenges a second,
 *   promoting short-lived request objects, to grow back.
 * - `--heap-growing-percent=300`: after idle, V8 judged GC cheap and set the old
 *   generation's limit only ~8 MB above the live heap; socket buffers (100 KB
 *   responses) count against that limit, so it ran 10–14 full GCs a second for the
 *   whole burst. A fixed factor of 4 keeps the slack above that churn.
 * - `--no-flush-bytecode`: idle GCs age and drop the bytecode of functions that have
 *   not run lately, and the hot path was compiled again at the start of each burst.
 *
 * Cost: the young generation keeps 2 × 16 MB, and the old generation may grow to four
 * times its live size (about 25 MB with 5 M domains loaded; the domain tables live
 * outside the JS heap) before a full GC. These flags must be given when the process
 * starts (`v8.setFlagsFromString` at run time leaves the heap's sizing as it was), so
 * they sit in the executable's first line, the systemd unit and `npm start`, and the
 * cluster primary passes them to its workers.
 */
export const PROXY_V8_FLAGS: readonly string[] = ['--no-memory-reducer', '--min-semi-space-size=16', '--heap-growing-percent=300', '--no-flush-bytecode'];

/**
 * glibc's malloc settings. glibc reads them when a process starts, so they sit beside the
 * V8 flags: the executable's first line, the systemd unit, the Dockerfile, `npm start`,
 * and the environment the cluster primary gives its workers.
 *
 * - `MALLOC_MMAP_THRESHOLD_`, fixed at its default. Left dynamic, freeing a replaced
 *   rules table (a reload) raises the threshold, later tables land in the brk heap,
 *   which is never given back, and a worker's RSS crept 240 → 255 MiB over reloads;
 *   fixed, it held at 244 MiB (bench/RESULTS.md, "A reload shares what did not change").
 * - `MALLOC_TRIM_THRESHOLD_`, 32 MiB instead of 128 KiB. Every socket read lands in a
 *   new 64 KiB buffer from the brk heap, and those buffers are freed together when a
 *   scavenge collects their Buffer objects: tens of MB at once while large pages flow.
 *   With the default, glibc gave that top of the heap back to the kernel at each free
 *   and the next reads faulted it in again, page by page, zeroed. Whether a process fell
 *   into that varied from one process to the next (with the heap's layout, most likely),
 *   so identical processes differed for minutes on end: 100 KB pages read through the proxy cost
 *   600–850 µs of CPU in one and 360–400 in another, with 2–7× the page faults and twice
 *   the system time (bench/RESULTS.md, "Page faults that made one process in three
 *   slow"). With 16 or 32 MiB none of twelve processes fell into it; with 4 MiB four of
 *   six did. The cost: what is freed at the top of the heap stays resident, up to the
 *   threshold; bench:memory's steady worker (5 M domains) rose from 203–214 to 228–236
 *   MiB, alike at 16 and 32 MiB, within the 250 MB it must stay under.
 */
export const PROXY_MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '33554432' };

/** The environment a proxy process should start with: the operator's own setting wins. */
export function withProxyMallocEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const added: Record<string, string> = {};
  for (const [name, value] of Object.entries(PROXY_MALLOC_ENV)) if (env[name] === undefined) added[name] = value;
  return added;
}

/** The flag's name as V8 reads it: `--no-flush-bytecode` and `--flush-bytecode=…` both name `flush-bytecode`, `_` and `-` alike. */
function flagName(flag: string): string {
  const name = flag.replace(/^--/, '').split('=', 1)[0]!.replace(/_/g, '-');
  return name.startsWith('no-') ? name.slice(3) : name;
}

/** The proxy flags that `execArgv` does not set one way or the other. */
export function missingProxyFlags(execArgv: readonly string[]): string[] {
  const given = new Set(execArgv.map(flagName));
  return PROXY_V8_FLAGS.filter((flag) => !given.has(flagName(flag)));
}

/** `execArgv` with the proxy flags it lacks added; a flag the operator set stays as set. */
export function withProxyFlags(execArgv: readonly string[]): string[] {
  return [...execArgv, ...missingProxyFlags(execArgv)];
}
