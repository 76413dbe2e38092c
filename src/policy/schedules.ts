/**
 * Time bands of a profile (docs/contract.md §9): named weekly windows in Vietnam time
 * (UTC+7, no daylight saving) inside which the profile decides with other categories.
 *
 * Everything here is integer arithmetic on the epoch milliseconds the caller passes:
 * the engine never reads the clock, and a request never makes a Date or a string. A
 * profile with schedules compiles to a table of one entry a minute of the week
 * (10,080 entries), each the index of the profile variant in force then; deciding is
 * one division and one array read.
 */

export const DAY_NAMES = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type DayName = (typeof DAY_NAMES)[number];

export const MINUTES_PER_DAY = 1440;
export const MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY;
/** Vietnam is UTC+7 all year. */
const VIETNAM_OFFSET_MINUTES = 7 * 60;
const MS_PER_MINUTE = 60_000;
/**
 * 1970-01-01 (day 0 of the epoch) was a Thursday, day 3 of a week counted from Monday;
 * the shift makes minute 0 of the week Monday 00:00.
 */
const EPOCH_WEEK_SHIFT_MINUTES = 3 * MINUTES_PER_DAY + VIETNAM_OFFSET_MINUTES;

/** One window of a schedule, in minutes of the week from Monday 00:00 (Vietnam): [start, end). */
export interface WeekWindow {
  readonly start: number;
  readonly end: number;
}

/** A schedule as the engine needs it: its name, its windows and the actions vector in force inside them. */
export interface ScheduleSpec {
  /** Display name, Vietnamese (`Nghỉ trưa`). */
  readonly name: string;
  readonly windows: readonly WeekWindow[];
  readonly actions: Uint8Array;
}

/** Minute of the week (0 = Monday 00:00 in Vietnam) of an instant given in ms since the epoch. */
export function minuteOfWeek(epochMs: number): number {
  const minute = Math.floor(epochMs / MS_PER_MINUTE) + EPOCH_WEEK_SHIFT_MINUTES;
  const inWeek = minute % MINUTES_PER_WEEK;
  return inWeek < 0 ? inWeek + MINUTES_PER_WEEK : inWeek;
}

/**
 * The weekly table of one profile: entry m is `base` outside every window, else the
 * variant index of the schedule whose window holds minute m. Windows must not
 * overlap (the loader refuses that); a later one would win.
 */
export function buildWeekTable(base: number, schedules: readonly { readonly variant: number; readonly windows: readonly WeekWindow[] }[]): Uint16Array {
  const table = new Uint16Array(MINUTES_PER_WEEK).fill(base);
  for (const { variant, windows } of schedules) {
    for (const { start, end } of windows) table.fill(variant, start, end);
  }
  return table;
}

/** `HH:MM` (00:00 … 24:00) as minutes of the day, or null. `24:00` ends a day. */
export function parseClock(text: string): number | null {
  const match = /^([01]\d|2[0-4]):([0-5]\d)$/.exec(text);
  if (match === null) return null;
  const minutes = Number(match[1]) * 60 + Number(match[2]);
  return minutes > MINUTES_PER_DAY ? null : minutes;
}

/** `HH:MM` of a minute of the day. */
export function formatClock(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

/** Index 0 … 6 (Monday first) of a day name, or -1. */
export function dayIndex(name: string): number {
  return (DAY_NAMES as readonly string[]).indexOf(name);
}

/**
 * `YYYY-MM-DD HH:MM` in Vietnam time (what `lachan check --at` takes) as ms since the
 * epoch, or null when it is not such a date and time.
 */
export function parseVietnamTime(text: string): number | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})$/.exec(text.trim());
  if (match === null) return null;
  const [year, month, day, hour, minute] = match.slice(1).map(Number) as [number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59) return null;
  const utc = Date.UTC(year, month - 1, day, hour, minute);
  // Date.UTC rolls 2026-02-30 over into March: such a date does not exist.
  if (new Date(utc).getUTCDate() !== day) return null;
  return utc - VIETNAM_OFFSET_MINUTES * MS_PER_MINUTE;
}
