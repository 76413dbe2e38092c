import type { Logger } from 'pino';
import { appendAudit } from '../privacy/audit.js';
import { classroomStamp, readClassroom, updateClassroom, type ExamEntry, type OverrideEntry } from './store.js';

/**
 * Ends, on paper, what has ended in fact: exams and overrides past their end time are
 * removed from DATA/classroom.json and their end is written to the audit log. Run by
 * one process only (the single process, or the cluster's primary), so that each end is
 * audited once. Decisions do not wait for it: every process already decides by the
 * request's time (live.ts).
 */
const TICK_MS = 1_000;
/** After a failed write (full or read-only disk), the next try: not one error line a second. */
const RETRY_MS = 60_000;

export function startClassroomSweeper(dataDir: string, logger: Logger): { stop(): void } {
  let stamp = '';
  let nextEnd = Number.POSITIVE_INFINITY;
  let sweeping = false;
  let retryAt = 0;
  const tick = (): void => {
    const now = Date.now();
    if (now < retryAt) return;
    const current = classroomStamp(dataDir);
    if (current !== stamp) {
      stamp = current;
      const state = readClassroom(dataDir);
      nextEnd = Math.min(...state.exams.map((e) => e.endsAt), ...state.overrides.map((o) => o.endsAt));
    }
    if (now < nextEnd || sweeping) return;
    sweeping = true;
    void sweep(dataDir, now)
      .catch((error: Error) => {
        retryAt = Date.now() + RETRY_MS;
        logger.error({ err: error.message }, 'cannot tidy the classroom state; retrying in a minute (decisions already follow the end times)');
      })
      .finally(() => {
        sweeping = false;
        // Read again on the next tick, whatever the stamp says.
        stamp = '';
      });
  };
  const timer = setInterval(tick, TICK_MS);
  timer.unref();
  tick();
  return { stop: () => clearInterval(timer) };
}

async function sweep(dataDir: string, now: number): Promise<void> {
  const outcome = await updateClassroom(dataDir, (state) => {
    const endedExams = state.exams.filter((e) => e.endsAt <= now);
    const endedOverrides = state.overrides.filter((o) => o.endsAt <= now);
    if (endedExams.length === 0 && endedOverrides.length === 0) return null;
    return {
      next: { ...state, exams: state.exams.filter((e) => e.endsAt > now), overrides: state.overrides.filter((o) => o.endsAt > now) },
      result: { endedExams, endedOverrides },
    };
  });
  if (outcome === null) return;
  const audit = (action: string, target: string, entry: ExamEntry | OverrideEntry): void => {
    appendAudit(dataDir, action, target, { id: entry.id, by: entry.by, ended: 'time', endsAt: entry.endsAt }, entry.endsAt);
  };
  for (const exam of outcome.result.endedExams) audit('classroom.exam.end', exam.room, exam);
  for (const override of outcome.result.endedOverrides) audit('classroom.override.end', override.host, override);
}
