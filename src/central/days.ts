/**
 * Roll-ups count per day as schools live it (the SQL twin of these is KEY_SQL in
 * sqlite-store.ts): Vietnam time (UTC+7, no daylight saving),
 * so a block at 06:30 local time counts on that school day, not the previous UTC one.
 */
const OFFSET_MS = 7 * 3_600_000;
const DAY_MS = 86_400_000;

/** Days since 1970-01-01 in Vietnam time. */
export function dayNumber(timeMs: number): number {
  return Math.floor((timeMs + OFFSET_MS) / DAY_MS);
}

export function monthOfDay(day: number): number {
  const d = new Date(day * DAY_MS);
  return d.getUTCFullYear() * 12 + d.getUTCMonth();
}

export function firstDayOfMonth(month: number): number {
  return Date.UTC(Math.floor(month / 12), month % 12, 1) / DAY_MS;
}

export function dayToIso(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** `YYYY-MM-DD` → day number, or null. */
export function isoToDay(text: string): number | null {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return null;
  const ms = Date.parse(`${text}T00:00:00Z`);
  return Number.isFinite(ms) ? ms / DAY_MS : null;
}

/** Start of a Vietnam-time day in ms since the epoch. */
export function dayStart(day: number): number {
  return day * DAY_MS - OFFSET_MS;
}
