import ipaddr from 'ipaddr.js';
import { parseCidr } from '../policy/clients.js';
import type { Decision } from '../policy/types.js';
import type { DecideHook, DecideInput } from '../proxy/hooks.js';
import type { ClassroomFile, ExamEntry, OverrideEntry } from './store.js';

/**
 * The classroom state one process decides with (docs/classroom.md): the exams and
 * overrides of DATA/classroom.json, compiled for the request path. With nothing in
 * force the decide hook costs one boolean test on top of the rules; otherwise a
 * request pays a map lookup for its device's rooms and a walk up its host's labels.
 * Entries end by the request's own time, so a decision changes at the end minute with
 * no reload and nothing else has to happen on time; the file is tidied later.
 */

type Range = ReturnType<typeof parseCidr>;

interface CompiledExam {
  readonly entry: ExamEntry;
  readonly range: Range;
}

interface CompiledOverride {
  readonly entry: OverrideEntry;
  readonly profile: string | null;
  readonly range: Range | null;
}

/** Client addresses remembered with the exams covering them (a school has a few thousand devices). */
const ROOMS_MEMO_LIMIT = 16_384;
const NONE: readonly CompiledExam[] = [];

export class ClassroomLive {
  /** True when no exam or override is in force: the decide hook's one check. */
  idle = true;
  private exams: readonly CompiledExam[] = [];
  private overrides: readonly CompiledOverride[] = [];
  /** The earliest end among the entries held: past it they are dropped on the next request. */
  private nextEnd = Number.POSITIVE_INFINITY;
  private examAllow: ReadonlySet<string> = new Set();
  private readonly examsOfAddress = new Map<string, readonly CompiledExam[]>();

  constructor(private readonly staffProfiles: ReadonlySet<string>) {}

  /** Takes the state read from the file; entries already over are left out. */
  load(state: ClassroomFile, now: number = Date.now()): void {
    this.exams = state.exams.filter((e) => e.endsAt > now).flatMap((entry) => compileRange(entry.room).map((range) => ({ entry, range })));
    this.overrides = state.overrides
      .filter((o) => o.endsAt > now)
      .flatMap((entry): CompiledOverride[] => {
        if ('profile' in entry.scope) return [{ entry, profile: entry.scope.profile, range: null }];
        return compileRange(entry.scope.room).map((range) => ({ entry, profile: null, range }));
      });
    this.settle();
  }

  /** The exam allow list (canonical hosts; each opens its subdomains too). */
  setExamAllow(hosts: ReadonlySet<string>): void {
    this.examAllow = hosts;
  }

  isStaff(profile: string): boolean {
    return this.staffProfiles.has(profile);
  }

  /** `next` (the rules), with exams and overrides around it. */
  decideHook(next: DecideHook): DecideHook {
    return (input) => (this.idle ? next(input) : this.decide(input, next));
  }

  private decide(input: DecideInput, next: DecideHook): Decision {
    const { flow, time } = input;
    if (time >= this.nextEnd) this.dropEnded(time);
    const { client, target } = flow;
    if (this.exams.length > 0 && !this.staffProfiles.has(client.profile)) {
      const exam = this.examFor(client.address, time);
      if (exam !== null && !hostIn(this.examAllow, target.host)) {
        return { action: 'block', profile: client.profile, category: null, reason: 'exam', rule: exam.room, source: `classroom:exam:${exam.id}` };
      }
    }
    const decision = next(input);
    // A port refused is not a site closed: no override opens it.
    if (decision.action !== 'block' || decision.reason === 'port' || this.overrides.length === 0) return decision;
    const opened = this.overrideFor(target.host, client.profile, client.address, time);
    if (opened === null) return decision;
    return {
      action: 'allow',
      profile: decision.profile,
      category: decision.category,
      reason: 'override',
      rule: opened.host,
      source: `classroom:override:${opened.id}`,
    };
  }

  private examFor(address: string, time: number): ExamEntry | null {
    for (const { entry } of this.roomsOf(address)) if (entry.startedAt <= time && time < entry.endsAt) return entry;
    return null;
  }

  private overrideFor(host: string, profile: string, address: string, time: number): OverrideEntry | null {
    let parsed: ipaddr.IPv4 | ipaddr.IPv6 | null | undefined;
    for (const o of this.overrides) {
      const { entry } = o;
      if (time < entry.startedAt || time >= entry.endsAt || !isUnder(host, entry.host)) continue;
      if (o.profile !== null) {
        if (o.profile === profile) return entry;
        continue;
      }
      if (parsed === undefined) parsed = parseAddress(address);
      if (parsed !== null && inRange(parsed, o.range!)) return entry;
    }
    return null;
  }

  private roomsOf(address: string): readonly CompiledExam[] {
    const known = this.examsOfAddress.get(address);
    if (known !== undefined) return known;
    const parsed = parseAddress(address);
    const rooms = parsed === null ? NONE : this.exams.filter((exam) => inRange(parsed, exam.range));
    if (this.examsOfAddress.size >= ROOMS_MEMO_LIMIT) this.examsOfAddress.clear();
    this.examsOfAddress.set(address, rooms.length === 0 ? NONE : rooms);
    return rooms;
  }

  private dropEnded(time: number): void {
    this.exams = this.exams.filter((e) => e.entry.endsAt > time);
    this.overrides = this.overrides.filter((o) => o.entry.endsAt > time);
    this.settle();
  }

  private settle(): void {
    this.examsOfAddress.clear();
    let nextEnd = Number.POSITIVE_INFINITY;
    for (const { entry } of this.exams) nextEnd = Math.min(nextEnd, entry.endsAt);
    for (const { entry } of this.overrides) nextEnd = Math.min(nextEnd, entry.endsAt);
    this.nextEnd = nextEnd;
    this.idle = this.exams.length === 0 && this.overrides.length === 0;
  }
}

/** Whether `host` is `domain` or one of its subdomains. */
export function isUnder(host: string, domain: string): boolean {
  return host === domain || (host.length > domain.length && host.endsWith(domain) && host.charCodeAt(host.length - domain.length - 1) === 0x2e);
}

/** Whether `host` or one of its parent domains is in `set`. */
export function hostIn(set: ReadonlySet<string>, host: string): boolean {
  if (set.size === 0) return false;
  let at = 0;
  for (;;) {
    if (set.has(at === 0 ? host : host.slice(at))) return true;
    const dot = host.indexOf('.', at);
    if (dot === -1) return false;
    at = dot + 1;
  }
}

function compileRange(cidr: string): Range[] {
  try {
    return [parseCidr(cidr)];
  } catch {
    // A range the file should never hold (it was validated when written): left out.
    return [];
  }
}

function parseAddress(address: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  try {
    return ipaddr.process(address.startsWith('[') ? address.slice(1, -1) : address);
  } catch {
    return null;
  }
}

function inRange(address: ipaddr.IPv4 | ipaddr.IPv6, range: Range): boolean {
  return range[0].kind() === address.kind() && address.match(range as [typeof address, number]);
}
