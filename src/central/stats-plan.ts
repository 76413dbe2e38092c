/**
 * Which roll-up (or raw events) answers each part of a statistics request, as SQL both
 * stores run: `?` placeholders (the PostgreSQL store numbers them) and functions both
 * dialects know. One plan, so both stores answer the same request with the same rows.
 */
import { dayStart, dayToIso, firstDayOfMonth, isoToDay, monthOfDay } from './days.js';
import { StoreError, type Stats, type StatsFilter } from './store.js';

/**
 * Statistics over more days than this count bySchool (with filters) and topHosts in whole
 * calendar months, the range widened to cover the request: a school year then reads
 * ~13 rows per host or school instead of ~365.
 */
export const MONTHLY_AFTER_DAYS = 31;

export interface PlannedQuery {
  readonly sql: string;
  readonly params: (string | number)[];
}

export interface StatsPlan {
  readonly fromDay: string;
  readonly toDay: string;
  /** Rows `day` (day number), `category` ('' for none), `count`. */
  readonly byCategoryDay: PlannedQuery;
  /** Rows `school`, `count`, most first. */
  readonly bySchool: PlannedQuery;
  /** Rows `host`, `category` ('' for none), `count`, most first. */
  readonly topHosts: PlannedQuery;
  readonly monthlyRange: { fromDay: string; toDay: string } | null;
}

interface Conditions {
  day?: [number, number];
  month?: [number, number];
  school?: string;
  profile?: string;
  category?: string;
}

function where(conditions: Conditions): PlannedQuery {
  const clauses: string[] = [];
  const params: (string | number)[] = [];
  if (conditions.school !== undefined) {
    clauses.push('school = ?');
    params.push(conditions.school);
  }
  if (conditions.day !== undefined) {
    clauses.push('day BETWEEN ? AND ?');
    params.push(...conditions.day);
  }
  if (conditions.month !== undefined) {
    clauses.push('month BETWEEN ? AND ?');
    params.push(...conditions.month);
  }
  if (conditions.profile !== undefined) {
    clauses.push('profile = ?');
    params.push(conditions.profile);
  }
  if (conditions.category !== undefined) {
    clauses.push('category = ?');
    params.push(conditions.category);
  }
  return { sql: clauses.length ? ` WHERE ${clauses.join(' AND ')}` : '', params };
}

/**
 * The whole calendar months inside [from, to] and the days left around them: a range up
 * to MONTHLY_AFTER_DAYS that holds a whole month ("last month") reads that month's row
 * per host instead of ~30, and is still exact.
 */
function wholeMonthsIn(from: number, to: number): { months: [number, number]; days: [number, number][] } | null {
  const first = firstDayOfMonth(monthOfDay(from)) === from ? monthOfDay(from) : monthOfDay(from) + 1;
  const last = firstDayOfMonth(monthOfDay(to) + 1) - 1 === to ? monthOfDay(to) : monthOfDay(to) - 1;
  if (first > last) return null;
  const before: [number, number] = [from, firstDayOfMonth(first) - 1];
  const after: [number, number] = [firstDayOfMonth(last + 1), to];
  return { months: [first, last], days: [before, after].filter(([a, b]) => a <= b) };
}

/** Top hosts of all schools from whole months of r_host_month and the days around them from r_host_day. */
function hostsOfMonthsAndDays(split: { months: [number, number]; days: [number, number][] }, category: string | undefined): { table: string } & PlannedQuery {
  const parts = [
    ...split.days.map((day) => ({ table: 'r_host_day', ...where({ day, category }) })),
    { table: 'r_host_month', ...where({ month: split.months, category }) },
  ];
  return {
    table: `(${parts.map((p) => `SELECT host, category, n FROM ${p.table}${p.sql}`).join(' UNION ALL ')}) AS hosts`,
    sql: '',
    params: parts.flatMap((p) => p.params),
  };
}

/** A few weeks of one school's raw events, through the (school, time) index. */
function eventsWhere(school: string, fromMs: number, toMs: number, category: string | undefined): PlannedQuery {
  const params: (string | number)[] = [school, fromMs, toMs];
  let sql = ' WHERE school = ? AND time >= ? AND time < ?';
  if (category !== undefined) {
    sql += " AND coalesce(category, '') = ?";
    params.push(category);
  }
  return { sql, params };
}

export function planStats(filter: StatsFilter): StatsPlan {
  const from = isoToDay(filter.fromDay);
  const to = isoToDay(filter.toDay);
  if (from === null || to === null || from > to) throw new StoreError('LACHAN_BAD_RANGE', 'from/to: YYYY-MM-DD, from not after to');

  const cd = where({ day: [from, to], school: filter.school, profile: filter.profile, category: filter.category });
  const byCategoryDay = {
    sql: `SELECT day, category, CAST(sum(n) AS BIGINT) AS count FROM ${filter.school === undefined ? 'r_category_day' : 'r_school_category_day'}${cd.sql} GROUP BY day, category ORDER BY day, category`,
    params: cd.params,
  };

  // Long ranges read monthly roll-ups, widened to whole months.
  const monthly = to - from + 1 > MONTHLY_AFTER_DAYS ? { first: monthOfDay(from), last: monthOfDay(to) } : null;
  const filtered = filter.profile !== undefined || filter.category !== undefined;
  const dims = { school: filter.school, profile: filter.profile, category: filter.category };
  const sd = !filtered
    ? { table: 'r_day_school', ...where({ day: [from, to], school: filter.school }) }
    : monthly === null
      ? { table: 'r_school_category_day', ...where({ day: [from, to], ...dims }) }
      : { table: 'r_school_category_month', ...where({ month: [monthly.first, monthly.last], ...dims }) };
  const bySchool = {
    sql: `SELECT school, CAST(sum(n) AS BIGINT) AS count FROM ${sd.table}${sd.sql} GROUP BY school ORDER BY count DESC, school`,
    params: sd.params,
  };

  const limit = Math.min(Math.max(1, filter.topHosts ?? 20), 1000);
  const split = monthly === null && filter.school === undefined ? wholeMonthsIn(from, to) : null;
  const th =
    filter.school !== undefined
      ? monthly === null
        ? { table: 'events', ...eventsWhere(filter.school, dayStart(from), dayStart(to + 1), filter.category) }
        : { table: 'r_school_host_month', ...where({ school: filter.school, month: [monthly.first, monthly.last], category: filter.category }) }
      : monthly === null
        ? split === null
          ? { table: 'r_host_day', ...where({ day: [from, to], category: filter.category }) }
          : hostsOfMonthsAndDays(split, filter.category)
        : { table: 'r_host_month', ...where({ month: [monthly.first, monthly.last], category: filter.category }) };
  const counted = th.table === 'events' ? "coalesce(category, '') AS category, count(*)" : 'category, CAST(sum(n) AS BIGINT)';
  const groupCategory = th.table === 'events' ? "coalesce(category, '')" : 'category';
  const topHosts = {
    sql: `SELECT host, ${counted} AS count FROM ${th.table}${th.sql} GROUP BY host, ${groupCategory} ORDER BY count DESC, host, category LIMIT ${limit}`,
    params: th.params,
  };

  const monthlyRange = monthly === null ? null : { fromDay: dayToIso(firstDayOfMonth(monthly.first)), toDay: dayToIso(firstDayOfMonth(monthly.last + 1) - 1) };
  return { fromDay: dayToIso(from), toDay: dayToIso(to), byCategoryDay, bySchool, topHosts, monthlyRange };
}

export interface StatsRows {
  readonly byCategoryDay: readonly { day: number; category: string; count: number }[];
  readonly bySchool: readonly { school: string; count: number }[];
  readonly topHosts: readonly { host: string; category: string; count: number }[];
}

/** The answer from the plan's rows (counts as numbers), school names and the roll-up backlog. */
export function statsFromRows(plan: StatsPlan, pendingRollup: number, names: ReadonlyMap<string, string>, rows: StatsRows): Stats {
  const cat = (c: string) => (c === '' ? null : c);
  const byCategoryDay = rows.byCategoryDay.map((r) => ({ day: dayToIso(Number(r.day)), category: cat(r.category), count: Number(r.count) }));
  const bySchool = rows.bySchool.map((r) => ({ school: r.school, name: names.get(r.school) ?? null, count: Number(r.count) }));
  const topHosts = rows.topHosts.map((r) => ({ host: r.host, category: cat(r.category), count: Number(r.count) }));
  const total = byCategoryDay.reduce((sum, r) => sum + r.count, 0);
  return { fromDay: plan.fromDay, toDay: plan.toDay, total, byCategoryDay, bySchool, topHosts, monthlyRange: plan.monthlyRange, pendingRollup };
}
