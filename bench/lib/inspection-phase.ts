/**
 * bench:proxy's inspection phase (docs/contract.md §8): lachan reading every HTML page
 * (a profile with `content_limit: 60` and the shipped phrases of adult, gambling,
 * drugs, violence and self-harm) against squid forwarding the same page unread and
 * e2guardian scoring it against the same phrases (bench/lib/e2guardian.ts, naughtiness
 * limit 60), once with those phrases alone and once with Debian's lists kept as well
 * (e2guardian as a school installs it); lachan reads that second set too, in a second
 * process, so each e2guardian has a like-for-like lachan. Each on CPU 0 in turn, the
 * page a harmless Vietnamese lesson of 1 KB and 100 KB from the bench origin
 * (`/html/<size>`), so every byte is read and passed.
 * Targets: lachan ≥ 1.5× squid and ≥ 20× e2guardian in requests per second.
 */
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  debianWeightedLists,
  E2GUARDIAN,
  type E2guardianLists,
  e2guardianPhrases,
  haveE2guardian,
  startE2guardian,
  writeDebianCategory,
} from './e2guardian.js';
import { startServe } from './serve.js';
import { markdownTable, median } from './stats.js';

const CATEGORIES = ['adult', 'gambling', 'drugs', 'violence', 'self-harm'];
const LACHAN = 'lachan, inspecting';
const LACHAN_DEBIAN = "lachan, e2guardian's lists too";
const SQUID = 'squid, forwarding';
/** The category holding Debian's e2guardian phrases for LACHAN_DEBIAN. */
const DEBIAN_CATEGORY = 'e2guardian-debian';
/** e2guardian twice: with lachan's phrases only (like for like) and as Debian installs it, lachan's phrases added. */
const E2GUARDIAN_TARGETS = [
  ['lachan', 'e2guardian, phrase filtering'],
  ['debian', "e2guardian, Debian's lists too"],
] as const satisfies readonly (readonly [E2guardianLists, string])[];
const CONTENT_LIMIT = 60;

export interface PhaseTarget {
  readonly name: string;
  readonly port: number;
  readonly path: (size: number) => string;
  readonly pid: number;
}

export interface PhaseSample {
  readonly rps: number;
  readonly cpuUs?: number;
}

export interface InspectionPhaseSetup {
  readonly work: string;
  readonly repo: string;
  readonly cli: string;
  readonly hostsFile: string;
  readonly benchHost: string;
  readonly originPort: number;
  /** The plain squid of the main phase, if one runs. */
  readonly squid: PhaseTarget | null;
  readonly sizes: readonly number[];
  readonly reps: number;
  readonly children: ChildProcess[];
  readonly freePort: () => Promise<number>;
  readonly waitForPort: (port: number, timeoutMs: number) => Promise<void>;
  /** One measured load of `target` at `size` (the main phase's tool, duration and connections). */
  readonly measure: (target: PhaseTarget, size: number) => Promise<PhaseSample | null>;
  readonly warm: (target: PhaseTarget, size: number) => Promise<unknown>;
  readonly log: (line: string) => void;
}

function policyYaml(categories: readonly string[]): string {
  return `version: 1\ndefault_profile: bench\nprofiles:\n  bench:\n    name: "Bench"\n    block_categories: [${categories.join(', ')}]\n    content_limit: ${CONTENT_LIMIT}\n`;
}

/** Runs the phase; returns the report's lines (a single line saying why when it is skipped). */
export async function inspectionPhase(setup: InspectionPhaseSetup): Promise<string[]> {
  const e2guardian = haveE2guardian();
  if (setup.squid === null && !e2guardian)
    return ['## inspection', '', `Skipped: neither squid nor e2guardian is installed (${E2GUARDIAN}; \`apt-get install -y squid e2guardian\`).`, ''];
  const phraseFiles = CATEGORIES.map((category) => path.join(setup.repo, 'rules/categories', category, 'phrases'));
  const rules = path.join(setup.work, 'rules-inspect');
  CATEGORIES.forEach((category, i) => {
    mkdirSync(path.join(rules, 'categories', category), { recursive: true });
    copyFileSync(phraseFiles[i]!, path.join(rules, 'categories', category, 'phrases'));
  });
  writeFileSync(path.join(rules, 'policy.yaml'), policyYaml(CATEGORIES));
  const lachan = await startServe({ cli: setup.cli, rules, data: path.join(setup.work, 'var-inspect'), hosts: setup.hostsFile }, { cpu: 0 });
  setup.children.push(lachan.child);
  const throughLachan = (size: number): string => `http://${setup.benchHost}:${setup.originPort}/html/${size}`;
  const direct = (size: number): string => `http://127.0.0.1:${setup.originPort}/html/${size}`;
  const targets: PhaseTarget[] = [{ name: LACHAN, port: lachan.line.port as number, path: throughLachan, pid: lachan.child.pid! }];
  const notes: string[] = [];
  if (e2guardian) {
    // lachan again, reading as many phrases as e2guardian as installed: the like-for-like
    // for that e2guardian (the reading cost, not the verdicts; see debianPhrasesForLachan).
    const rulesDebian = path.join(setup.work, 'rules-inspect-debian');
    cpSync(rules, rulesDebian, { recursive: true });
    const debianCount = writeDebianCategory(rulesDebian, DEBIAN_CATEGORY);
    writeFileSync(path.join(rulesDebian, 'policy.yaml'), policyYaml([...CATEGORIES, DEBIAN_CATEGORY]));
    const withDebian = await startServe(
      { cli: setup.cli, rules: rulesDebian, data: path.join(setup.work, 'var-inspect-debian'), hosts: setup.hostsFile },
      { cpu: 0 },
    );
    setup.children.push(withDebian.child);
    targets.push({ name: LACHAN_DEBIAN, port: withDebian.line.port as number, path: throughLachan, pid: withDebian.child.pid! });
    notes.push(
      `${LACHAN_DEBIAN}: the same lachan with one more category in its profile, ${debianCount} phrases made from the lists Debian's e2guardian enables (combinations split into their parts).`,
    );
  }
  if (setup.squid !== null) targets.push({ ...setup.squid, name: SQUID, path: direct });
  if (e2guardian) {
    const phrases = e2guardianPhrases(phraseFiles);
    const debian = debianWeightedLists();
    for (const [lists, name] of E2GUARDIAN_TARGETS) {
      const dir = path.join(setup.work, `e2guardian-${lists}`);
      mkdirSync(dir);
      const port = await setup.freePort();
      const child = await startE2guardian(dir, port, phrases.text, CONTENT_LIMIT, 0, setup.waitForPort, lists);
      setup.children.push(child);
      targets.push({ name, port, path: direct, pid: child.pid! });
    }
    notes.push(
      `${E2GUARDIAN_TARGETS[0][1]}: ${phrases.count} weighted phrases (lachan's, converted), naughtynesslimit ${CONTENT_LIMIT}, one process pinned to CPU 0, no upstream proxy.`,
      `${E2GUARDIAN_TARGETS[1][1]}: the same, with the phrase lists Debian's package enables kept (e2guardian as installed: ${debian.phrases} weighted phrases from ${debian.lists} lists, and its banned and exception phrases).`,
    );
  } else {
    notes.push(`e2guardian: not installed (${E2GUARDIAN}), its column is missing.`);
  }
  if (setup.squid === null) notes.push('squid: not installed, its column is missing.');

  for (const target of targets) for (const size of setup.sizes) await setup.warm(target, size);
  const samples = new Map<string, (PhaseSample | null)[]>();
  const key = (size: number, name: string): string => `${size}\u0000${name}`;
  for (let rep = 0; rep < setup.reps; rep++) {
    const order = targets.map((_, i) => targets[(i + rep) % targets.length]!);
    for (const size of setup.sizes) {
      for (const target of order) {
        const sample = await setup.measure(target, size);
        const list = samples.get(key(size, target.name)) ?? [];
        list[rep] = sample;
        samples.set(key(size, target.name), list);
        setup.log(
          `inspection rep ${rep + 1}/${setup.reps} ${size} B ${target.name}: ${sample === null ? 'failed' : `${sample.rps.toFixed(0)} req/s cpu ${sample.cpuUs?.toFixed(0) ?? '?'} µs/req`}`,
        );
      }
    }
  }

  const rows: string[][] = [];
  const checks: string[] = [];
  const label = (size: number): string => `${size / 1024} KB`;
  for (const size of setup.sizes) {
    for (const target of targets) {
      const list = (samples.get(key(size, target.name)) ?? []).filter((s): s is PhaseSample => s != null);
      const cpu = list.map((s) => s.cpuUs).filter((v): v is number => v !== undefined);
      rows.push([
        label(size),
        target.name,
        list.length === 0 ? 'failed' : median(list.map((s) => s.rps)).toFixed(0),
        cpu.length === 0 ? '–' : median(cpu).toFixed(0),
      ]);
    }
    const paired = (me: string, other: string, pick: (mine: PhaseSample, theirs: PhaseSample) => number): number | null => {
      const mine = samples.get(key(size, me)) ?? [];
      const theirs = samples.get(key(size, other)) ?? [];
      const ratios: number[] = [];
      for (let rep = 0; rep < setup.reps; rep++) if (mine[rep] != null && theirs[rep] != null) ratios.push(pick(mine[rep]!, theirs[rep]!));
      return ratios.length === 0 ? null : median(ratios);
    };
    for (const [me, other, goal] of [
      [LACHAN, SQUID, 1.5],
      [LACHAN, E2GUARDIAN_TARGETS[0][1], 20],
      [LACHAN_DEBIAN, E2GUARDIAN_TARGETS[1][1], 20],
    ] as const) {
      if (!targets.some((t) => t.name === other)) continue;
      const rate = paired(me, other, (a, b) => a.rps / b.rps);
      const cost = paired(me, other, (a, b) => (a.cpuUs !== undefined && b.cpuUs !== undefined && a.cpuUs > 0 ? b.cpuUs / a.cpuUs : Number.NaN));
      if (rate === null) continue;
      checks.push(
        `${label(size)}: ${me} / ${other} = ${rate.toFixed(2)}× req/s per repetition (target ≥ ${goal}×) ${rate >= goal ? 'met' : 'NOT met'}; their CPU per request / lachan's = ${cost === null || Number.isNaN(cost) ? '–' : `${cost.toFixed(2)}×`}`,
      );
    }
  }
  return [
    '## inspection: lachan reading every page against squid (forwarding) and e2guardian (phrase filtering)',
    '',
    ...notes.map((n) => `- ${n}`),
    '',
    markdownTable(['page', 'target', 'req/s', 'CPU µs/req'], rows),
    '',
    ...checks.map((c) => `- ${c}`),
    '',
  ];
}
