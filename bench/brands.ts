/**
 * Brand rules and host signals: do they catch the gambling domains the lists do not
 * have yet, and what do they cost on ordinary sites?
 *
 * The split cannot be tuned to: from the union of three gambling lists (hostsVN
 * gambling, StevenBlack gambling-only, UT1 gambling) take the registrable domains whose
 * label the union holds under two or more public suffixes ("brand-reusing": `3bet.bike`
 * when `3bet.ski` is listed too), shuffle them with a fixed seed and hold out one in
 * five. Every listed host under a held-out registrable domain leaves the list; the
 * rest joins the shipped `gambling/domains`. Then, per shipped profile:
 *
 *   recall   held-out registrable domains blocked;
 *   top-100k Umbrella top-100k hosts blocked.
 *
 * for three rules folders: the lists alone (shipped rules without `brands` and
 * `host-signals` files), with brand rules, and with brand rules and host signals.
 *
 *   npm run bench:brands                       # ../shared/data, seed 1
 *   npm run bench:brands -- --data DIR --seed 7
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, appendFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseHost } from 'tldts';
import { canonicalRuleHost } from '../src/policy/hostname.js';
import { loadRules } from '../src/rules/loader.js';
import { BrandDeriver } from '../src/rules/brands.js';
import { BrandSetBuilder } from '../src/policy/brands.js';
import type { Policy } from '../src/policy/engine.js';
import { markdownTable, median } from './lib/stats.js';

const GAMBLING_LISTS = ['hostsvn/extensions/gambling/domain.txt', 'stevenblack/gambling-only.domains.txt', 'ut1/gambling/domains'];
const SHIPPED_RULES = path.resolve(import.meta.dirname, '../../rules');
const HOLD_OUT_FRACTION = 0.2;
const TIMING_ROUNDS = 7;
const PSL_OPTIONS = { allowPrivateDomains: true } as const;

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at >= 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1]! : fallback;
}

const dataDir = path.resolve(option('--data', path.resolve(import.meta.dirname, '../../../shared/data')));
const seed = Number(option('--seed', '1'));

/** mulberry32: a small seeded generator, so that a run can be repeated exactly. */
function random(state: number): () => number {
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function listedHosts(): string[] {
  const hosts = new Set<string>();
  for (const file of GAMBLING_LISTS) {
    for (const line of readFileSync(path.join(dataDir, file), 'utf8').split('\n')) {
      const text = line.trim();
      if (text === '' || text.startsWith('#')) continue;
      const host = canonicalRuleHost(text);
      if (host !== null) hosts.add(host);
    }
  }
  return [...hosts];
}

interface Split {
  readonly training: string[];
  readonly heldOut: string[];
  readonly listed: number;
  readonly registrable: number;
  readonly reusing: number;
}

function split(hosts: readonly string[]): Split {
  const registrableOf = new Map<string, string>();
  const domainsOfLabel = new Map<string, Set<string>>();
  for (const host of hosts) {
    const parsed = parseHost(host, PSL_OPTIONS);
    if (parsed.isIp === true || parsed.domain === null || !parsed.domainWithoutSuffix) continue;
    registrableOf.set(host, parsed.domain);
    let domains = domainsOfLabel.get(parsed.domainWithoutSuffix);
    if (domains === undefined) domainsOfLabel.set(parsed.domainWithoutSuffix, (domains = new Set()));
    domains.add(parsed.domain);
  }
  const reusing = [...domainsOfLabel.values()]
    .filter((d) => d.size >= 2)
    .flatMap((d) => [...d])
    .sort();
  const next = random(seed);
  for (let i = reusing.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [reusing[i], reusing[j]] = [reusing[j]!, reusing[i]!];
  }
  const heldOut = reusing.slice(0, Math.round(reusing.length * HOLD_OUT_FRACTION));
  const held = new Set(heldOut);
  const training = hosts.filter((host) => !held.has(registrableOf.get(host) ?? ''));
  return { training, heldOut, listed: hosts.length, registrable: new Set(registrableOf.values()).size, reusing: reusing.length };
}

type Variant = 'lists alone' | '+ brands' | '+ brands + host signals';
const VARIANTS: readonly Variant[] = ['lists alone', '+ brands', '+ brands + host signals'];

async function buildPolicy(variant: Variant, training: readonly string[]): Promise<{ policy: Policy; seconds: number; dir: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lachan-bench-brands-'));
  cpSync(SHIPPED_RULES, dir, { recursive: true });
  for (const category of ['gambling', 'adult']) {
    if (variant === 'lists alone') rmSync(path.join(dir, 'categories', category, 'brands'), { force: true });
    if (variant !== '+ brands + host signals') rmSync(path.join(dir, 'categories', category, 'host-signals'), { force: true });
  }
  // The bundled gambling domain lists are the very lists split here: the training part
  // stands in for them, so that no held-out domain is in the rules.
  const manifest = path.join(dir, 'bundled/lists');
  writeFileSync(
    manifest,
    readFileSync(manifest, 'utf8')
      .split('\n')
      .filter((line) => !/\.domains\.gz\s+gambling\s*$/.test(line))
      .join('\n'),
  );
  appendFileSync(path.join(dir, 'categories/gambling/domains'), `\n# training part of the lists\n${training.join('\n')}\n`);
  const start = process.hrtime.bigint();
  // Uncached, so that the timing below measures every decision in full.
  const result = await loadRules(dir, { cacheSize: 0 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (result.policy === null) throw new Error(`rules did not load: ${result.problems.map((p) => `${p.file}:${p.line}: ${p.message}`).join('; ')}`);
  return { policy: result.policy, seconds, dir };
}

function topSites(): string[] {
  const hosts: string[] = [];
  for (const line of readFileSync(path.join(dataDir, 'topsites/umbrella-top-100k.txt'), 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      hosts.push(new URL(`http://${line.trim()}/`).hostname);
    } catch {
      // a name URL cannot parse is no request the proxy would see
    }
  }
  return hosts;
}

/** CPU nanoseconds per item of `run` over `items`; throws when nothing matched (the loop measured nothing). */
function cpuNsPer(items: readonly string[], run: (item: string) => number): number {
  const before = process.cpuUsage();
  let hits = 0;
  for (const item of items) hits += run(item);
  const used = process.cpuUsage(before);
  if (hits === 0) throw new Error('nothing matched: the timing measured nothing');
  return ((used.user + used.system) * 1000) / items.length;
}

function blocked(policy: Policy, profile: string, hosts: readonly string[]): string[] {
  return hosts.filter((host) => policy.decide(profile, host, '/').action === 'block');
}

async function main(): Promise<void> {
  const hosts = listedHosts();
  const parts = split(hosts);
  const top = topSites();
  console.log(
    `lists: ${parts.listed} listed hosts, ${parts.registrable} registrable domains, ${parts.reusing} brand-reusing; ` +
      `held out ${parts.heldOut.length} (seed ${seed}), training ${parts.training.length} hosts; top sites ${top.length}`,
  );

  // Derivation alone, as the loader runs it on each load: listed domains → brands.
  const trainingText = parts.training.join('\n');
  const deriveSeconds: number[] = [];
  let derived = 0;
  for (let round = 0; round < 3; round++) {
    const start = process.hrtime.bigint();
    const deriver = new BrandDeriver(0, new Set(), ['bet', 'club', 'win', 'vip', 'casino']);
    deriver.addDomainsText(trainingText, 0);
    derived = deriver.derive(new BrandSetBuilder(), 0);
    deriveSeconds.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  const deriveMedian = median(deriveSeconds);
  const compiled = (() => {
    const builder = new BrandSetBuilder();
    const deriver = new BrandDeriver(0, new Set(), ['bet', 'club', 'win', 'vip', 'casino']);
    deriver.addDomainsText(trainingText, 0);
    deriver.derive(builder, 0);
    return builder.build();
  })();
  console.log(
    `derivation: ${parts.training.length} listed hosts → ${derived} brands in ${deriveMedian.toFixed(2)} s (${(parts.training.length / deriveMedian / 1000).toFixed(0)} k hosts/s, median of 3); ` +
      `compiled brand set ${(compiled.byteLength / 1e6).toFixed(2)} MB (${(compiled.byteLength / compiled.size).toFixed(0)} B a brand)`,
  );

  const rows: string[][] = [];
  const json: Record<string, unknown>[] = [];
  const baseline = new Map<string, Set<string>>();
  const policies = new Map<Variant, Policy>();
  for (const variant of VARIANTS) {
    const { policy, seconds, dir } = await buildPolicy(variant, parts.training);
    rmSync(dir, { recursive: true, force: true });
    policies.set(variant, policy);
    const brands = policy.rules.brands?.size ?? 0;
    for (const profile of policy.profileIds()) {
      const caught = blocked(policy, profile, parts.heldOut).length;
      const topBlocked = blocked(policy, profile, top);
      if (variant === 'lists alone') baseline.set(profile, new Set(topBlocked));
      const extra = topBlocked.filter((host) => !baseline.get(profile)!.has(host));
      const recall = (100 * caught) / parts.heldOut.length;
      rows.push([
        profile,
        variant,
        `${recall.toFixed(1)} % (${caught}/${parts.heldOut.length})`,
        String(topBlocked.length),
        String(extra.length),
        String(brands),
        seconds.toFixed(2),
      ]);
      json.push({
        profile,
        variant,
        recall,
        caught,
        heldOut: parts.heldOut.length,
        topBlocked: topBlocked.length,
        extraTopBlocked: extra.length,
        extraHosts: extra,
        brands,
        loadSeconds: seconds,
      });
    }
  }
  console.log();
  console.log(markdownTable(['profile', 'rules', 'recall on held-out', 'top-100k blocked', 'more than lists alone', 'brand rules', 'load (s)'], rows));
  console.log();
  const fullRows = json.filter((r) => r.variant === '+ brands + host signals');
  const extraHosts = [...new Set(fullRows.flatMap((r) => r.extraHosts as string[]))].sort();
  console.log(`top-100k hosts blocked only with brands and host signals (any profile): ${extraHosts.join(' ')}`);

  // Per-decision cost: the top-100k stream uncached, lists alone and with everything,
  // alternating rounds in one process. CPU time of this process, not wall time: on a
  // machine shared with other work the wall clock counts the time others ran.
  const timings = new Map<Variant, number[]>(VARIANTS.map((variant) => [variant, []]));
  for (let round = 0; round < TIMING_ROUNDS; round++) {
    for (const [variant, samples] of timings) {
      const policy = policies.get(variant)!;
      samples.push(cpuNsPer(top, (host) => (policy.decide('thcs', host, '/').action === 'block' ? 1 : 0)));
    }
  }
  // The brand matcher alone on the same stream (host signals live in the keyword automaton).
  const full = policies.get('+ brands + host signals')!;
  const actions = full.rules.profiles.find((p) => p.id === 'thcs')!.actions;
  const brandNs: number[] = [];
  for (let round = 0; round < TIMING_ROUNDS; round++) brandNs.push(cpuNsPer(top, (host) => (full.rules.brands!.lookup(host, actions) >= 0 ? 1 : 0)));
  const listsNs = median(timings.get('lists alone')!);
  const brandsOnlyNs = median(timings.get('+ brands')!);
  const fullNs = median(timings.get('+ brands + host signals')!);
  console.log(
    `uncached decision, top-100k stream, CPU time, median of ${TIMING_ROUNDS} alternating rounds: lists alone ${listsNs.toFixed(0)} ns, ` +
      `+ brands ${brandsOnlyNs.toFixed(0)} ns, + brands + host signals ${fullNs.toFixed(0)} ns (+${(fullNs - listsNs).toFixed(0)} ns); brand lookup alone ${median(brandNs).toFixed(0)} ns`,
  );
  console.log(
    JSON.stringify({
      seed,
      listed: parts.listed,
      deriveSeconds: deriveMedian,
      derived,
      reusing: parts.reusing,
      heldOut: parts.heldOut.length,
      listsNs,
      brandsOnlyNs,
      fullNs,
      brandNs: median(brandNs),
      results: json.map(({ extraHosts: _, ...rest }) => rest),
    }),
  );
}

await main();
