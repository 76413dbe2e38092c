import type { Logger } from 'pino';
import type { Policy } from '../policy/engine.js';
import { decideByPolicy, type DecideHook } from '../proxy/hooks.js';
import type { BlockRecorder } from '../proxy/ports.js';
import { Classroom } from './service.js';
import { StaffPage } from './staff-page.js';

export { startClassroomSweeper } from './sweeper.js';

export const MINUTE_MS = 60_000;

export interface ClassroomParts {
  readonly classroom: Classroom;
  readonly staffPage: StaffPage;
  /** The rules, with exams and overrides around them (docs/classroom.md). */
  readonly decide: DecideHook;
  /** Staff profiles named that the rules do not have: nobody could reach the staff page through them. */
  unknownStaffProfiles(policy: Policy): string[];
}

/** One gateway process's classroom: its live state, its staff page, its decide hook. */
export function openClassroom(options: {
  dataDir: string;
  rulesDir: string;
  policy: () => Policy;
  recorder: BlockRecorder | null;
  onRecorded: () => void;
  staffProfiles: string;
  minuteMs?: number;
  logger: Logger;
}): ClassroomParts {
  const staffProfiles = new Set(
    options.staffProfiles
      .split(',')
      .map((id) => id.trim())
      .filter((id) => id !== ''),
  );
  const classroom = new Classroom({ ...options, staffProfiles, minuteMs: options.minuteMs ?? MINUTE_MS });
  const staffPage = new StaffPage({ classroom, policy: options.policy, dataDir: options.dataDir, logger: options.logger });
  return {
    classroom,
    staffPage,
    decide: classroom.live.decideHook(decideByPolicy),
    unknownStaffProfiles: (policy) => [...staffProfiles].filter((id) => policy.profile(id) === undefined),
  };
}
