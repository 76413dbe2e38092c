/**
 * Parses the `--since` of `lachan logs` and `lachan central events`: a duration back
 * from now (`30m`, `1h`, `2d`, `1w`) or an ISO date or date-time (`2026-11-01`,
 * `2026-11-01T08:00:00+07:00`). Returns milliseconds since the epoch, or null when the
 * value is neither.
 */
const UNIT_MS: Readonly<Record<string, number>> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const DURATION_RE = /^(\d{1,6})\s*([smhdw])$/;
const ISO_RE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

export function parseSince(value: string, now: number = Date.now()): number | null {
  const text = value.trim();
  const duration = DURATION_RE.exec(text);
  if (duration) return now - Number(duration[1]) * UNIT_MS[duration[2]!]!;
  if (!ISO_RE.test(text)) return null;
  // A bare date means the start of that day where the command runs, as a person means it.
  const time = text.length === 10 ? new Date(`${text}T00:00:00`).getTime() : Date.parse(text);
  return Number.isFinite(time) ? time : null;
}

export const SINCE_HELP = 'a duration back from now (30m, 1h, 2d, 1w) or an ISO date (2026-11-01)';
