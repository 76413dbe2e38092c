import type { SqlConnection } from '../../storage/sql.js';

export interface SchoolHealth {
  readonly id: string;
  readonly name: string;
  /** Last time its gateway called the ingest API (ms), or null if never. */
  readonly lastContact: number | null;
  /** No contact for more than a day: the gateway may be down. */
  readonly silent: boolean;
}

export interface HostRule {
  readonly rule: string | null;
  readonly source: string | null;
}

const SILENT_AFTER_MS = 24 * 3_600_000;

/** Read-only queries the dashboard needs beyond the CentralStore interface. */
export class DashboardQueries {
  readonly #health;
  readonly #hostRule;
  readonly #hostRuleSchool;

  constructor(db: SqlConnection) {
    this.#health = db.prepare<[], { id: string; name: string; last_at: number | null }>(
      'SELECT s.id, s.name, c.last_at FROM schools s LEFT JOIN school_contact c ON c.school = s.id WHERE s.revoked_at IS NULL ORDER BY s.name',
    );
    // Through events_host_time: the newest event of the host names the rule now blocking it.
    this.#hostRule = db.prepare<[string, string], HostRule>(
      "SELECT rule, source FROM events WHERE host = ? AND coalesce(category, '') = ? ORDER BY time DESC LIMIT 1",
    );
    this.#hostRuleSchool = db.prepare<[string, string, string], HostRule>(
      "SELECT rule, source FROM events WHERE host = ? AND coalesce(category, '') = ? AND school = ? ORDER BY time DESC LIMIT 1",
    );
  }

  schools(school: string | null, now = Date.now()): SchoolHealth[] {
    return this.#health
      .all()
      .filter((row) => school === null || row.id === school)
      .map((row) => ({ id: row.id, name: row.name, lastContact: row.last_at, silent: row.last_at === null || now - row.last_at > SILENT_AFTER_MS }));
  }

  hostRule(host: string, category: string | null, school: string | null): HostRule {
    const row = school === null ? this.#hostRule.get(host, category ?? '') : this.#hostRuleSchool.get(host, category ?? '', school);
    return row ?? { rule: null, source: null };
  }
}
