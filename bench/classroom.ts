/**
 * What exam mode and teachers' overrides cost a decision (docs/classroom.md): the
 * shipped rules decide a stream of top-site requests (decision cache warm, where the
 * hook's overhead shows most) through
 *
 *   1. the rules alone (decideByPolicy);
 *   2. the classroom hook with nothing in force (its one check);
 *   3. the hook with an exam and an override in force elsewhere (another room, another
 *      profile: every request pays the room lookup and the override scan);
 *   4. the hook for a device inside the exam room (the exam decides almost everything).
 *
 *   npm run bench:classroom
 *   CLASSROOM_ROUNDS=9 npm run bench:classroom
 *
 * The four run in turn within each round, each round starting at the next; the medians over rounds are printed as a
 * markdown table and one JSON line.
 */
import { ClassroomLive } from '../src/classroom/live.js';
import type { ClassroomFile } from '../src/classroom/store.js';
import type { Flow } from '../src/proxy/flow.js';
import { decideByPolicy, type DecideHook } from '../src/proxy/hooks.js';
import { parseAbsoluteTarget } from '../src/proxy/target.js';
import { loadPolicy } from '../src/rules/loader.js';
import { topSitesHosts } from './lib/data.js';
import { markdownTable, median } from './lib/stats.js';

const ROUNDS = Number(process.env.CLASSROOM_ROUNDS ?? 7);
const REQUESTS = 200_000;
const DEVICES = 400;

const policy = await loadPolicy('rules');
const hosts = topSitesHosts().slice(0, 20_000);
const now = Date.now();

/** Requests from DEVICES addresses in 10.20.0.0/16, spread over the hosts. */
function flows(room: string): Flow[] {
  return Array.from({ length: REQUESTS }, (_, i) => ({
    mode: 'forward' as const,
    target: parseAbsoluteTarget(`http://${hosts[i % hosts.length]}/`)!,
    client: { address: `${room}.${(i % DEVICES) % 250}`, profile: 'thcs' },
    method: 'GET',
    time: now,
  }));
}

const elsewhere = flows('10.20.1');
const inRoom = flows('10.20.7');

const idle = new ClassroomLive(new Set(['giao-vien']));
idle.load({ version: 1, exams: [], overrides: [] });
const busy = new ClassroomLive(new Set(['giao-vien']));
const state: ClassroomFile = {
  version: 1,
  exams: [{ id: 'e-1', room: '10.20.7.0/24', startedAt: now - 1000, endsAt: now + 3_600_000, by: 'bench' }],
  overrides: [{ id: 'o-1', host: 'youtube.com', scope: { profile: 'tieu-hoc' }, reason: 'bench', startedAt: now - 1000, endsAt: now + 3_600_000, by: 'bench' }],
};
busy.load(state, now);
busy.setExamAllow(new Set(['olm.vn', 'azota.vn', 'wikipedia.org']));

function nsPerDecision(decide: DecideHook, stream: readonly Flow[]): number {
  let blocked = 0;
  const start = process.hrtime.bigint();
  for (const flow of stream) if (decide({ flow, policy, time: flow.time }).action === 'block') blocked++;
  const ns = Number(process.hrtime.bigint() - start) / stream.length;
  if (blocked < 0) throw new Error('unreachable');
  return ns;
}

const cases: [string, DecideHook, readonly Flow[]][] = [
  ['rules alone (decideByPolicy)', decideByPolicy, elsewhere],
  ['classroom hook, nothing in force', idle.decideHook(decideByPolicy), elsewhere],
  ['classroom hook, exam + override elsewhere', busy.decideHook(decideByPolicy), elsewhere],
  ['classroom hook, device in the exam room', busy.decideHook(decideByPolicy), inRoom],
];
// Warm the decision cache and the JIT on every path.
for (const [, decide, stream] of cases) nsPerDecision(decide, stream);
const samples = cases.map(() => [] as number[]);
// Each round starts at another path, so that none always runs first (or after a collection).
for (let round = 0; round < ROUNDS; round++) {
  for (let k = 0; k < cases.length; k++) {
    const i = (round + k) % cases.length;
    const [, decide, stream] = cases[i]!;
    samples[i]!.push(nsPerDecision(decide, stream));
  }
}
const medians = samples.map(median);
console.log(
  markdownTable(
    ['path', 'ns a decision (median)', '÷ rules alone'],
    cases.map(([name], i) => [name, medians[i]!.toFixed(0), (medians[i]! / medians[0]!).toFixed(2)]),
  ),
);
console.log(
  JSON.stringify({
    bench: 'classroom',
    rounds: ROUNDS,
    requests: REQUESTS,
    nsPerDecision: Object.fromEntries(cases.map(([name], i) => [name, Math.round(medians[i]!)])),
  }),
);
