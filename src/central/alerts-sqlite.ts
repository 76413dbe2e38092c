/**
 * Safeguarding alerts in the collector's SQLite file (docs/safeguarding.md): one row per
 * (school, ref), upserted in one transaction per batch, as events are.
 */
import type { SqliteDatabase } from '../storage/sqlite.js';
import {
  type AlertChange,
  deliveriesFor,
  type DeliveryJob,
  type AlertContacts,
  type AlertCount,
  type AlertFilter,
  type AlertStatus,
  type AlertStore,
  type CentralAlert,
  mergeAlert,
  type StoredAlert,
  type WireAlert,
} from './alerts.js';

/** The schema steps the collector's SQLite file takes for alerts (appended to CENTRAL_MIGRATIONS). */
export const ALERT_SQLITE_MIGRATIONS: readonly string[] = [
  `CREATE TABLE alerts (
     school TEXT NOT NULL,
     ref TEXT NOT NULL,
     time INTEGER NOT NULL,
     last_time INTEGER NOT NULL,
     severity TEXT NOT NULL,
     category TEXT NOT NULL,
     signal TEXT NOT NULL,
     trigger_text TEXT NOT NULL,
     host TEXT NOT NULL,
     device TEXT NOT NULL,
     profile TEXT NOT NULL,
     count INTEGER NOT NULL,
     status TEXT NOT NULL,
     note TEXT,
     received_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (school, ref)
   ) WITHOUT ROWID;
   CREATE INDEX alerts_last_time ON alerts(last_time);
   CREATE INDEX alerts_school_last_time ON alerts(school, last_time);
   CREATE INDEX alerts_time ON alerts(time);
   CREATE TABLE alert_contacts (school TEXT PRIMARY KEY, emails TEXT NOT NULL, webhook TEXT) WITHOUT ROWID;
   -- The outbox: messages owed to a school's contacts, written with the alert (alert-delivery.ts).
   CREATE TABLE alert_deliveries (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     school TEXT NOT NULL,
     ref TEXT NOT NULL,
     event TEXT NOT NULL,
     channel TEXT NOT NULL,
     target TEXT NOT NULL,
     attempts INTEGER NOT NULL,
     next_at INTEGER NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX alert_deliveries_due ON alert_deliveries(next_at);
   -- The counsellor's role (tu-van): SQLite cannot alter a CHECK, so users is rebuilt;
   -- dropping it would cascade to the sessions, which are kept aside and put back.
   CREATE TEMP TABLE sessions_kept AS SELECT * FROM sessions;
   CREATE TABLE users_next (
     name TEXT PRIMARY KEY,
     role TEXT NOT NULL CHECK (role IN ('admin', 'school-it', 'viewer', 'tu-van')),
     school TEXT,
     password_hash TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     disabled_at INTEGER
   );
   INSERT INTO users_next (name, role, school, password_hash, created_at, disabled_at)
     SELECT name, role, school, password_hash, created_at, disabled_at FROM users;
   DROP TABLE users;
   ALTER TABLE users_next RENAME TO users;
   INSERT INTO sessions SELECT * FROM sessions_kept;
   DROP TABLE sessions_kept;`,
];

export interface AlertRow {
  school: string;
  school_name: string | null;
  ref: string;
  time: number;
  last_time: number;
  severity: string;
  category: string;
  signal: string;
  trigger_text: string;
  host: string;
  device: string;
  profile: string;
  count: number;
  status: string;
  note: string | null;
}

/** A row as read back; the columns hold only what validation let in. */
export function toCentralAlert(row: AlertRow): CentralAlert {
  return {
    ref: row.ref,
    school: row.school,
    schoolName: row.school_name,
    time: row.time,
    lastTime: row.last_time,
    severity: row.severity as CentralAlert['severity'],
    category: row.category as CentralAlert['category'],
    signal: row.signal as CentralAlert['signal'],
    trigger: row.trigger_text,
    host: row.host,
    device: row.device,
    profile: row.profile,
    count: row.count,
    status: row.status as AlertStatus,
    note: row.note,
  };
}

/** The columns written for an alert, in ALERT_COLUMNS' order. */
export const ALERT_COLUMNS = 'time, last_time, severity, category, signal, trigger_text, host, device, profile, count, status, note';
export function alertValues(a: StoredAlert): (string | number | null)[] {
  return [a.time, a.lastTime, a.severity, a.category, a.signal, a.trigger, a.host, a.device, a.profile, a.count, a.status, a.note];
}

export const SELECT_ALERT = `SELECT a.school, s.name AS school_name, a.ref, a.time, a.last_time, a.severity, a.category, a.signal,
  a.trigger_text, a.host, a.device, a.profile, a.count, a.status, a.note FROM alerts a LEFT JOIN schools s ON s.id = a.school`;

export interface DeliveryRow {
  id: number;
  school: string;
  ref: string;
  event: DeliveryJob['event'];
  channel: DeliveryJob['channel'];
  target: string;
  attempts: number;
}

export class SqliteAlertStore implements AlertStore {
  readonly #db: SqliteDatabase;
  readonly #q;

  constructor(db: SqliteDatabase) {
    this.#db = db;
    this.#q = {
      one: db.prepare<[string, string], AlertRow>(`${SELECT_ALERT} WHERE a.school = ? AND a.ref = ?`),
      insert: db.prepare(`INSERT INTO alerts (school, ref, ${ALERT_COLUMNS}, received_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      update: db.prepare(
        'UPDATE alerts SET time = ?, last_time = ?, severity = ?, category = ?, signal = ?, trigger_text = ?, host = ?, device = ?, profile = ?, count = ?, status = ?, note = ?, updated_at = ? WHERE school = ? AND ref = ?',
      ),
      counts: db.prepare<[number, number], AlertCount>(
        'SELECT category, severity, count(*) AS count FROM alerts WHERE time >= ? AND time < ? GROUP BY category, severity ORDER BY category, severity',
      ),
      expire: db.prepare('DELETE FROM alerts WHERE last_time < ?'),
      anonymise: db.prepare('UPDATE alerts SET device = ? WHERE school = ? AND device = ?'),
      contacts: db.prepare<[string], { emails: string; webhook: string | null }>('SELECT emails, webhook FROM alert_contacts WHERE school = ?'),
      queue: db.prepare('INSERT INTO alert_deliveries (school, ref, event, channel, target, attempts, next_at, created_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)'),
      due: db.prepare<[number, number], DeliveryRow>(
        'SELECT id, school, ref, event, channel, target, attempts FROM alert_deliveries WHERE next_at <= ? ORDER BY next_at, id LIMIT ?',
      ),
      hold: db.prepare('UPDATE alert_deliveries SET next_at = ?, attempts = attempts + 1 WHERE id = ?'),
      retry: db.prepare('UPDATE alert_deliveries SET next_at = ? WHERE id = ?'),
      settle: db.prepare('DELETE FROM alert_deliveries WHERE id = ?'),
      setContacts: db.prepare(
        'INSERT INTO alert_contacts (school, emails, webhook) VALUES (?, ?, ?) ON CONFLICT (school) DO UPDATE SET emails = excluded.emails, webhook = excluded.webhook',
      ),
    };
  }

  async ingest(school: string, alerts: readonly WireAlert[], receivedAt: number): Promise<AlertChange[]> {
    return this.#db.transaction(() => {
      const changes = alerts.map((sent): AlertChange => {
        const row = this.#q.one.get(school, sent.ref);
        if (row === undefined) {
          this.#q.insert.run(school, sent.ref, ...alertValues({ ...sent, status: 'new', note: null }), receivedAt, receivedAt);
          return { outcome: 'new', before: null, alert: toCentralAlert(this.#q.one.get(school, sent.ref)!) };
        }
        const stored = toCentralAlert(row);
        const { next, outcome } = mergeAlert(stored, sent);
        if (next === null) return { outcome, before: stored.severity, alert: stored };
        this.#q.update.run(...alertValues(next), receivedAt, school, sent.ref);
        return { outcome, before: stored.severity, alert: { ...stored, ...next } };
      });
      const owed = deliveriesFor(changes, this.#contactsNow(school));
      for (const d of owed) this.#q.queue.run(school, d.ref, d.event, d.channel, d.target, receivedAt, receivedAt);
      return changes;
    })();
  }

  async claimDeliveries(now: number, leaseMs: number, limit: number): Promise<DeliveryJob[]> {
    return this.#db.transaction(() =>
      this.#q.due.all(now, limit).map((row): DeliveryJob => {
        this.#q.hold.run(now + leaseMs, row.id);
        const alert = this.#q.one.get(row.school, row.ref);
        return {
          id: row.id,
          event: row.event,
          channel: row.channel,
          target: row.target,
          attempts: row.attempts,
          alert: alert === undefined ? null : toCentralAlert(alert),
        };
      }),
    )();
  }

  async settleDelivery(id: number, retryAt: number | null): Promise<void> {
    if (retryAt === null) this.#q.settle.run(id);
    else this.#q.retry.run(retryAt, id);
  }

  async list(filter: AlertFilter): Promise<CentralAlert[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.school !== undefined) {
      where.push('a.school = ?');
      params.push(filter.school);
    }
    if (filter.status !== undefined) {
      where.push('a.status = ?');
      params.push(filter.status);
    }
    const sql = `${SELECT_ALERT}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY a.last_time DESC, a.ref LIMIT ?`;
    return this.#db
      .prepare<(string | number)[], AlertRow>(sql)
      .all(...params, filter.limit)
      .map(toCentralAlert);
  }

  async setStatus(school: string, ref: string, status: AlertStatus, note: string | null, at: number) {
    return this.#db.transaction(() => {
      const row = this.#q.one.get(school, ref);
      if (row === undefined) return null;
      const before = toCentralAlert(row);
      const after: CentralAlert = { ...before, status, note: note ?? before.note };
      this.#q.update.run(...alertValues(after), at, school, ref);
      return { before, after };
    })();
  }

  async counts(from: number, to: number): Promise<AlertCount[]> {
    return this.#q.counts.all(from, to);
  }

  async expire(before: number): Promise<number> {
    return this.#q.expire.run(before).changes;
  }

  async anonymiseDevices(school: string, devices: readonly string[], replacement: string): Promise<number> {
    let changed = 0;
    for (const device of devices) changed += this.#q.anonymise.run(replacement, school, device).changes;
    return changed;
  }

  async contacts(school: string): Promise<AlertContacts> {
    return this.#contactsNow(school);
  }

  #contactsNow(school: string): AlertContacts {
    const row = this.#q.contacts.get(school);
    return { school, emails: row === undefined ? [] : (JSON.parse(row.emails) as string[]), webhook: row?.webhook ?? null };
  }

  async setContacts(contacts: AlertContacts): Promise<void> {
    this.#q.setContacts.run(contacts.school, JSON.stringify(contacts.emails), contacts.webhook);
  }
}
