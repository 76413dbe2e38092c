import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import type { Logger } from 'pino';
import type { Policy } from '../policy/engine.js';
import { canonicalRuleHost } from '../policy/hostname.js';
import { appendAudit } from '../privacy/audit.js';
import type { BlockRecorder } from '../proxy/ports.js';
import { ClassroomLive } from './live.js';
import {
  classroomFileOf,
  newEntryId,
  readClassroom,
  updateClassroom,
  type ClassroomFile,
  type ExamEntry,
  type OverrideEntry,
  type OverrideScope,
} from './store.js';

/**
 * What a teacher can do from the staff page (docs/classroom.md): start and end an
 * exam for a room, open and close a blocked host for a profile or a room. Each change
 * goes to DATA/classroom.json (read by every process of the gateway), to the audit
 * log, and an override also to the event log, which ships it to the district.
 */

export const EXAM_ALLOW_FILE = 'exam-allow';
export const EXAM_MAX_MINUTES = 240;
export const OVERRIDE_DEFAULT_MINUTES = 45;
export const OVERRIDE_MAX_MINUTES = 90;
const REASON_MAX = 200;
/** How often each process looks whether another one changed the file. */
const WATCH_INTERVAL_MS = 500;
/** A room is a room: never a whole campus network or the Internet. */
const WIDEST_PREFIX = { ipv4: 16, ipv6: 48 } as const;

export interface ClassroomOptions {
  readonly dataDir: string;
  readonly rulesDir: string;
  readonly policy: () => Policy;
  /** The event log; null: overrides are audited but not shipped. */
  readonly recorder: BlockRecorder | null;
  /** After an override event was recorded: flush and wake the shipper. */
  readonly onRecorded: () => void;
  readonly staffProfiles: ReadonlySet<string>;
  /** How long a "minute" of a duration is: 60 000, shorter only in tests (docs/classroom.md). */
  readonly minuteMs: number;
  readonly logger: Logger;
}

/** A teacher's action refused: the Vietnamese line the page shows. */
export type Outcome<T> = { readonly ok: T } | { readonly refused: string };

export interface ExamRequest {
  readonly room: string;
  readonly minutes: string;
  readonly by: string;
}

export interface OverrideRequest {
  readonly host: string;
  /** A profile id, or a room range. */
  readonly profile: string;
  readonly room: string;
  readonly minutes: string;
  readonly reason: string;
  readonly by: string;
}

export class Classroom {
  readonly live: ClassroomLive;
  private state: ClassroomFile;
  private readonly file: string;
  private readonly onFileChange = (): void => this.refresh();

  constructor(private readonly options: ClassroomOptions) {
    this.live = new ClassroomLive(options.staffProfiles);
    this.file = classroomFileOf(options.dataDir);
    this.state = this.read();
    this.live.load(this.state);
    this.reloadExamAllow();
    // Polling a stat: another worker's rename is seen wherever the data folder lives.
    watchFile(this.file, { interval: WATCH_INTERVAL_MS, persistent: false }, this.onFileChange);
  }

  get minuteMs(): number {
    return this.options.minuteMs;
  }

  /** Reads rules/exam-allow again (at start and on every rules reload). */
  reloadExamAllow(): void {
    const file = path.join(this.options.rulesDir, EXAM_ALLOW_FILE);
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
        this.options.logger.error({ file, err: (error as Error).message }, 'cannot read the exam allow list');
    }
    const { hosts, bad } = parseExamAllow(text);
    for (const line of bad) this.options.logger.warn({ file, line }, 'exam allow list: not a domain (ignored)');
    this.live.setExamAllow(hosts);
  }

  /** The exams and overrides in force now, soonest end first. */
  current(now: number = Date.now()): { exams: ExamEntry[]; overrides: OverrideEntry[] } {
    const byEnd = <T extends { endsAt: number }>(a: T, b: T): number => a.endsAt - b.endsAt;
    return {
      exams: this.state.exams.filter((e) => e.endsAt > now).sort(byEnd),
      overrides: this.state.overrides.filter((o) => o.endsAt > now).sort(byEnd),
    };
  }

  async startExam(request: ExamRequest, now: number = Date.now()): Promise<Outcome<ExamEntry>> {
    const room = validRoom(request.room);
    if (room === null) return { refused: `"${request.room}" không phải dải địa chỉ của một phòng (ví dụ 10.1.2.0/24; rộng nhất /16).` };
    const minutes = validMinutes(request.minutes, null, EXAM_MAX_MINUTES);
    if (minutes === null) return { refused: `Thời gian kiểm tra là số phút từ 1 đến ${EXAM_MAX_MINUTES}.` };
    const entry: ExamEntry = { id: newEntryId('e'), room, startedAt: now, endsAt: now + minutes * this.options.minuteMs, by: request.by };
    await this.write((state) => ({ ...state, exams: [...state.exams.filter((e) => e.endsAt > now), entry] }));
    appendAudit(this.options.dataDir, 'classroom.exam.start', room, { id: entry.id, by: entry.by, minutes, endsAt: entry.endsAt }, now);
    return { ok: entry };
  }

  async startOverride(request: OverrideRequest, now: number = Date.now()): Promise<Outcome<OverrideEntry>> {
    const host = validHost(request.host);
    if (host === null) return { refused: `"${request.host}" không phải tên một trang web (ví dụ youtube.com).` };
    const policy = this.options.policy();
    let scope: OverrideScope;
    if (request.room.trim() !== '') {
      const room = validRoom(request.room);
      if (room === null) return { refused: `"${request.room}" không phải dải địa chỉ của một phòng (ví dụ 10.1.2.0/24; rộng nhất /16).` };
      scope = { room };
    } else {
      if (policy.profile(request.profile) === undefined) return { refused: 'Hãy chọn nhóm học sinh hoặc nhập dải địa chỉ của phòng.' };
      scope = { profile: request.profile };
    }
    const minutes = validMinutes(request.minutes, OVERRIDE_DEFAULT_MINUTES, OVERRIDE_MAX_MINUTES);
    if (minutes === null) return { refused: `Thời gian mở là số phút từ 1 đến ${OVERRIDE_MAX_MINUTES} (mặc định ${OVERRIDE_DEFAULT_MINUTES}).` };
    const reason = request.reason.trim().replace(/\s+/g, ' ').slice(0, REASON_MAX);
    if (reason === '') return { refused: 'Hãy ghi lý do mở trang (ví dụ: bài Sinh học 8A, xem video thí nghiệm).' };
    const entry: OverrideEntry = { id: newEntryId('o'), host, scope, reason, startedAt: now, endsAt: now + minutes * this.options.minuteMs, by: request.by };
    await this.write((state) => ({ ...state, overrides: [...state.overrides.filter((o) => o.endsAt > now), entry] }));
    appendAudit(this.options.dataDir, 'classroom.override.start', host, { id: entry.id, by: entry.by, scope, reason, minutes, endsAt: entry.endsAt }, now);
    this.recordOverride(policy, entry, minutes, now);
    return { ok: entry };
  }

  /** Ends an exam or override early; false when it had already ended. */
  async end(id: string, by: string, now: number = Date.now()): Promise<boolean> {
    let ended: ExamEntry | OverrideEntry | undefined;
    await this.write((state) => {
      ended = [...state.exams, ...state.overrides].find((e) => e.id === id && e.endsAt > now);
      return ended === undefined ? null : { ...state, exams: state.exams.filter((e) => e.id !== id), overrides: state.overrides.filter((o) => o.id !== id) };
    });
    if (ended === undefined) return false;
    const isExam = 'room' in ended;
    appendAudit(
      this.options.dataDir,
      isExam ? 'classroom.exam.end' : 'classroom.override.end',
      'room' in ended ? ended.room : ended.host,
      { id, by, ended: 'early', endsAt: ended.endsAt },
      now,
    );
    return true;
  }

  close(): void {
    unwatchFile(this.file, this.onFileChange);
  }

  /** The file changed (this process or another): decide with what it holds now. */
  refresh(): void {
    this.state = this.read();
    this.live.load(this.state);
  }

  private read(): ClassroomFile {
    return readClassroom(this.options.dataDir, (why) =>
      this.options.logger.error({ file: this.file, err: why }, 'classroom state unreadable; no exam or override in force'),
    );
  }

  private async write(change: (state: ClassroomFile) => ClassroomFile | null): Promise<void> {
    await updateClassroom(this.options.dataDir, (state) => {
      const next = change(state);
      return next === null ? null : { next, result: undefined };
    });
    this.refresh();
  }

  /**
   * The override as an event of its own (docs/classroom.md): reason `override`, the
   * category the host was blocked in, the teacher's reason as the rule, the scope and
   * length as the source. Its client is the override itself, so it never folds into a
   * visit of the teacher's device.
   */
  private recordOverride(policy: Policy, entry: OverrideEntry, minutes: number, now: number): void {
    const recorder = this.options.recorder;
    if (recorder === null) return;
    const profile = 'profile' in entry.scope ? entry.scope.profile : policy.profileForAddress(entry.scope.room.split('/')[0]!);
    const blocked = policy.decide(profile, entry.host, '/', now);
    const scope = 'profile' in entry.scope ? `profile:${entry.scope.profile}` : `room:${entry.scope.room}`;
    recorder.record({
      time: now,
      profile,
      category: blocked.action === 'block' ? blocked.category : null,
      reason: 'override',
      rule: entry.reason,
      source: `classroom:${scope}:${minutes}m`,
      host: entry.host,
      path: '/',
      method: 'OVERRIDE',
      clientAddress: `classroom:${entry.id}`,
    });
    this.options.onRecorded();
  }
}

/** Domains of rules/exam-allow: one a line, `#` comments; each opens its subdomains. */
export function parseExamAllow(text: string): { hosts: Set<string>; bad: number[] } {
  const hosts = new Set<string>();
  const bad: number[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const host = validHost(line);
    if (host === null) bad.push(index + 1);
    else hosts.add(host);
  });
  return { hosts, bad };
}

function validHost(text: string): string | null {
  const trimmed = text
    .trim()
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/[/:?#].*$/, '');
  const host = canonicalRuleHost(trimmed);
  return host?.includes('.') && !/\s/.test(host) ? host : null;
}

/** A room range as written back (`10.1.2.0/24`), or null when it is not one or is wider than a room. */
export function validRoom(text: string): string | null {
  try {
    const trimmed = text.trim();
    const [address, prefix] = trimmed.includes('/') ? ipaddr.parseCIDR(trimmed) : ((a) => [a, a.kind() === 'ipv4' ? 32 : 128] as const)(ipaddr.parse(trimmed));
    if (prefix < WIDEST_PREFIX[address.kind()]) return null;
    return `${address.toString()}/${prefix}`;
  } catch {
    return null;
  }
}

function validMinutes(text: string, fallback: number | null, max: number): number | null {
  const trimmed = text.trim();
  if (trimmed === '') return fallback;
  if (!/^\d{1,4}$/.test(trimmed)) return null;
  const minutes = Number(trimmed);
  return minutes >= 1 && minutes <= max ? minutes : null;
}
