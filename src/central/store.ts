import type { WireEvent } from '../events/event-schema.js';
import type { AlertStore } from './alerts.js';
import type { AccountStore } from './accounts.js';
import type { DashboardQueries } from './dashboard/queries.js';
import type { AuditSink } from './district-policy.js';
import type { District } from './district.js';

/**
 * What the collector needs of its storage. The HTTP API and the CLI speak only to
 * this, so a province that outgrows one SQLite file can put PostgreSQL behind it
 * without touching either. Methods are async for that reason, although the SQLite
 * store answers synchronously.
 */
export interface CentralStore {
  addSchool(name: string): Promise<NewSchool>;
  listSchools(): Promise<School[]>;
  /** Returns false when no such school exists. A revoked school's token stops working at once. */
  revokeSchool(id: string): Promise<boolean>;
  /** The active school a bearer token belongs to, or null. */
  authenticate(token: string): Promise<School | null>;
  /** Stores each event once by id; acknowledges every id stored now or held already. */
  ingest(school: string, events: readonly WireEvent[], receivedAt: number): Promise<IngestResult>;
  queryEvents(filter: EventFilter, page: PageRequest): Promise<EventPage>;
  stats(filter: StatsFilter): Promise<Stats>;
  /** Deletes raw events older than `before` (roll-ups stay); returns how many. */
  expire(before: number): Promise<number>;
  /**
   * A parent's erasure request (docs/du-lieu-ca-nhan.md): deletes the raw events of these
   * pseudonymous devices of `school` and anonymises their review requests; roll-ups hold
   * no device and stay.
   */
  eraseDevices(school: string, clients: readonly string[]): Promise<{ events: number; reviews: number }>;
  /** Safeguarding alerts (docs/safeguarding.md). */
  readonly alerts: AlertStore;
  close(): Promise<void>;
}

/**
 * The collector's whole database as `lachan central serve` and its CLI use it: the
 * events (CentralStore) and the district's own tables (accounts and sessions, the policy
 * overlay, the review queue), which are synchronous and SQLite's for now.
 */
export interface CollectorDatabase extends CentralStore {
  /** Dashboard accounts, sessions and the audit log. */
  readonly accounts: AccountStore;
  readonly dashboardQueries: DashboardQueries;
  /** The policy overlay and review queue on this database; the signing key lives in `dataDir`. */
  openDistrict(dataDir: string, audit: AuditSink): District;
}

export interface School {
  readonly id: string;
  readonly name: string;
  readonly createdAt: number;
  readonly revokedAt: number | null;
}

export interface NewSchool {
  readonly id: string;
  /** Shown once; only its hash is stored. */
  readonly token: string;
}

export interface CentralEvent extends WireEvent {
  readonly school: string;
  readonly receivedAt: number;
}

export interface IngestResult {
  readonly acked: readonly string[];
  readonly stored: number;
  readonly duplicates: number;
}

export interface EventFilter {
  readonly school?: string;
  readonly profile?: string;
  readonly category?: string;
  readonly host?: string;
  /** Inclusive, ms since the epoch. */
  readonly from?: number;
  /** Exclusive, ms since the epoch. */
  readonly to?: number;
}

export interface PageRequest {
  /** Opaque, from the previous page's `nextCursor`. */
  readonly cursor?: string;
  readonly limit: number;
}

export interface EventPage {
  /** Newest first. */
  readonly events: CentralEvent[];
  readonly nextCursor: string | null;
}

export interface StatsFilter {
  readonly school?: string;
  readonly profile?: string;
  readonly category?: string;
  /** First day, `YYYY-MM-DD` (Vietnam time, UTC+7). */
  readonly fromDay: string;
  /** Last day, inclusive. */
  readonly toDay: string;
  readonly topHosts?: number;
}

export interface Stats {
  readonly fromDay: string;
  readonly toDay: string;
  readonly total: number;
  readonly byCategoryDay: { day: string; category: string | null; count: number }[];
  /** Schools by number of events, most first. */
  readonly bySchool: { school: string; name: string | null; count: number }[];
  /** Honours school, category and the range (not profile). */
  readonly topHosts: { host: string; category: string | null; count: number }[];
  /**
   * Set when the range is longer than a month: bySchool (with a profile or category
   * filter) and topHosts then count the whole calendar months that cover the range, and
   * this says which days that is. byCategoryDay and total are always exact.
   */
  readonly monthlyRange: { fromDay: string; toDay: string } | null;
  /** Events received but not yet counted (a burst being folded in); 0 when the figures are complete. */
  readonly pendingRollup: number;
}

export class StoreError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}
