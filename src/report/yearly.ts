import type { AlertCount } from '../central/alerts.js';
import { dayStart, isoToDay } from '../central/days.js';
import type { CentralStore, Stats } from '../central/store.js';
import { reportingPeriod, type Organisation } from '../rules/organisation.js';
import { PROFILE_NAMES } from '../util/labels.js';

/**
 * The figures of the yearly report the office sends before 15 November: blocked visits
 * across its schools by category, month, school and age group, over the reporting
 * year the organisation configures. Built from the collector's daily roll-ups (which
 * count visits, and survive the expiry of raw events); it counts visits, never children.
 */

export interface YearlyReport {
  readonly year: number;
  /** First and last day of the reporting year, ISO. */
  readonly fromDay: string;
  readonly toDay: string;
  readonly total: number;
  readonly byCategory: readonly { category: string | null; count: number }[];
  /** Each month of the period that had blocks, `YYYY-MM`, in order. */
  readonly byMonth: readonly { month: string; count: number }[];
  readonly bySchool: Stats['bySchool'];
  readonly byProfile: readonly { profile: string; name: string; count: number }[];
  readonly topHosts: Stats['topHosts'];
  /** Days that topHosts covers when the roll-ups count whole months (see Stats.monthlyRange). */
  readonly topHostsRange: { fromDay: string; toDay: string } | null;
  readonly schools: number;
  /** Events received but not yet counted when the report was built. */
  readonly pending: number;
  /** Safeguarding alerts first raised in the period, by category and severity (docs/safeguarding.md §6). */
  readonly alerts: readonly AlertCount[];
}

const TOP_HOSTS = 10;

export async function buildYearlyReport(store: CentralStore, year: number, organisation: Organisation): Promise<YearlyReport> {
  const range = reportingPeriod(organisation, year);
  const stats = await store.stats({ ...range, topHosts: TOP_HOSTS });
  const byCategory = new Map<string | null, number>();
  const byMonth = new Map<string, number>();
  for (const row of stats.byCategoryDay) {
    byCategory.set(row.category, (byCategory.get(row.category) ?? 0) + row.count);
    const month = row.day.slice(0, 7);
    byMonth.set(month, (byMonth.get(month) ?? 0) + row.count);
  }
  const byProfile: { profile: string; name: string; count: number }[] = [];
  for (const [profile, name] of Object.entries(PROFILE_NAMES)) {
    const profileStats = await store.stats({ ...range, profile, topHosts: 0 });
    byProfile.push({ profile, name, count: profileStats.total });
  }
  return {
    year,
    ...range,
    total: stats.total,
    byCategory: [...byCategory.entries()].map(([category, count]) => ({ category, count })).sort((a, b) => b.count - a.count),
    byMonth: [...byMonth.entries()].map(([month, count]) => ({ month, count })).sort((a, b) => a.month.localeCompare(b.month)),
    bySchool: stats.bySchool,
    byProfile,
    topHosts: stats.topHosts,
    topHostsRange: stats.monthlyRange,
    schools: (await store.listSchools()).length,
    pending: stats.pendingRollup,
    alerts: await store.alerts.counts(dayStart(isoToDay(range.fromDay)!), dayStart(isoToDay(range.toDay)! + 1)),
  };
}
