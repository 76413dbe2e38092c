/**
 * Safeguarding alerts on the collector's PostgreSQL database (docs/safeguarding.md):
 * the twin of alerts-sqlite.ts. Rows of a batch are locked in key order (FOR UPDATE), so
 * two collector processes folding in the same alert take turns and neither loses a send.
 */
import { transaction, type PgPool } from '../storage/postgres.js';
import type { AlertChange, AlertContacts, AlertCount, AlertFilter, AlertStatus, AlertStore, CentralAlert, DeliveryJob, WireAlert } from './alerts.js';
import { deliveriesFor, mergeAlert } from './alerts.js';
import { ALERT_COLUMNS, type AlertRow, alertValues, type DeliveryRow, toCentralAlert } from './alerts-sqlite.js';

/** The alerts' schema step on PostgreSQL (appended to PG_MIGRATIONS). */
export const ALERT_PG_MIGRATIONS: readonly string[] = [
  `CREATE TABLE alerts (
     school text COLLATE "C" NOT NULL,
     ref text COLLATE "C" NOT NULL,
     time bigint NOT NULL,
     last_time bigint NOT NULL,
     severity text NOT NULL,
     category text NOT NULL,
     signal text NOT NULL,
     trigger_text text NOT NULL,
     host text NOT NULL,
     device text NOT NULL,
     profile text NOT NULL,
     count integer NOT NULL,
     status text NOT NULL,
     note text,
     received_at bigint NOT NULL,
     updated_at bigint NOT NULL,
     PRIMARY KEY (school, ref)
   );
   CREATE INDEX alerts_last_time ON alerts (last_time);
   CREATE INDEX alerts_school_last_time ON alerts (school, last_time);
   CREATE INDEX alerts_time ON alerts (time);
   CREATE TABLE alert_contacts (school text COLLATE "C" PRIMARY KEY, emails text NOT NULL, webhook text);
   CREATE TABLE alert_deliveries (
     id bigserial PRIMARY KEY,
     school text COLLATE "C" NOT NULL,
     ref text COLLATE "C" NOT NULL,
     event text NOT NULL,
     channel text NOT NULL,
     target text NOT NULL,
     attempts integer NOT NULL,
     next_at bigint NOT NULL,
     created_at bigint NOT NULL
   );
   CREATE INDEX alert_deliveries_due ON alert_deliveries (next_at);`,
];

const SELECT_ALERT = `SELECT a.school, s.name AS school_name, a.ref, a.time, a.last_time, a.severity, a.category, a.signal,
  a.trigger_text, a.host, a.device, a.profile, a.count, a.status, a.note FROM alerts a LEFT JOIN schools s ON s.id = a.school`;
const UPDATE_ALERT =
  'UPDATE alerts SET time = $1, last_time = $2, severity = $3, category = $4, signal = $5, trigger_text = $6, host = $7, device = $8, profile = $9, count = $10, status = $11, note = $12, updated_at = $13 WHERE school = $14 AND ref = $15';

export class PgAlertStore implements AlertStore {
  readonly #pool: PgPool;

  constructor(pool: PgPool) {
    this.#pool = pool;
  }

  async ingest(school: string, alerts: readonly WireAlert[], receivedAt: number): Promise<AlertChange[]> {
    if (alerts.length === 0) return [];
    const inOrder = [...alerts].sort((x, y) => (x.ref < y.ref ? -1 : x.ref > y.ref ? 1 : 0));
    const changes = await transaction(this.#pool, async (client) => {
      const byRef = new Map<string, AlertChange>();
      for (const sent of inOrder) {
        const inserted = await client.query(
          `INSERT INTO alerts (school, ref, ${ALERT_COLUMNS}, received_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (school, ref) DO NOTHING`,
          [school, sent.ref, ...alertValues({ ...sent, status: 'new', note: null }), receivedAt, receivedAt],
        );
        const row = (await client.query<AlertRow>(`${SELECT_ALERT} WHERE a.school = $1 AND a.ref = $2 FOR UPDATE OF a`, [school, sent.ref])).rows[0]!;
        const stored = toCentralAlert(row);
        if (inserted.rowCount === 1) {
          byRef.set(sent.ref, { outcome: 'new', before: null, alert: stored });
          continue;
        }
        const { next, outcome } = mergeAlert(stored, sent);
        if (next !== null) await client.query(UPDATE_ALERT, [...alertValues(next), receivedAt, school, sent.ref]);
        byRef.set(sent.ref, { outcome, before: stored.severity, alert: next === null ? stored : { ...stored, ...next } });
      }
      const contacts = (
        await client.query<{ emails: string; webhook: string | null }>('SELECT emails, webhook FROM alert_contacts WHERE school = $1', [school])
      ).rows[0];
      const owed = deliveriesFor([...byRef.values()], {
        emails: contacts === undefined ? [] : (JSON.parse(contacts.emails) as string[]),
        webhook: contacts?.webhook ?? null,
      });
      for (const d of owed) {
        await client.query(
          'INSERT INTO alert_deliveries (school, ref, event, channel, target, attempts, next_at, created_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $6)',
          [school, d.ref, d.event, d.channel, d.target, receivedAt],
        );
      }
      return byRef;
    });
    return alerts.map((a) => changes.get(a.ref)!);
  }

  /** Rows another process holds are skipped (SKIP LOCKED), and each taken row's lease keeps it away once committed. */
  async claimDeliveries(now: number, leaseMs: number, limit: number): Promise<DeliveryJob[]> {
    const { rows } = await this.#pool.query<DeliveryRow & { before: number }>(
      `UPDATE alert_deliveries AS d SET next_at = $2, attempts = d.attempts + 1
       FROM (SELECT id, attempts AS before FROM alert_deliveries WHERE next_at <= $1 ORDER BY next_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) AS due
       WHERE d.id = due.id RETURNING d.id, d.school, d.ref, d.event, d.channel, d.target, due.before`,
      [now, now + leaseMs, limit],
    );
    if (rows.length === 0) return [];
    const found = await this.#pool.query<AlertRow>(`${SELECT_ALERT} WHERE (a.school, a.ref) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, [
      rows.map((r) => r.school),
      rows.map((r) => r.ref),
    ]);
    const alerts = new Map(found.rows.map((row) => [`${row.school}\n${row.ref}`, toCentralAlert(row)]));
    return rows
      .sort((x, y) => x.id - y.id)
      .map((row) => ({
        id: row.id,
        event: row.event,
        channel: row.channel,
        target: row.target,
        attempts: row.before,
        alert: alerts.get(`${row.school}\n${row.ref}`) ?? null,
      }));
  }

  async settleDelivery(id: number, retryAt: number | null): Promise<void> {
    if (retryAt === null) await this.#pool.query('DELETE FROM alert_deliveries WHERE id = $1', [id]);
    else await this.#pool.query('UPDATE alert_deliveries SET next_at = $1 WHERE id = $2', [retryAt, id]);
  }

  async list(filter: AlertFilter): Promise<CentralAlert[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.school !== undefined) {
      params.push(filter.school);
      where.push(`a.school = $${params.length}`);
    }
    if (filter.status !== undefined) {
      params.push(filter.status);
      where.push(`a.status = $${params.length}`);
    }
    params.push(filter.limit);
    const sql = `${SELECT_ALERT}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY a.last_time DESC, a.ref LIMIT $${params.length}`;
    return (await this.#pool.query<AlertRow>(sql, params)).rows.map(toCentralAlert);
  }

  async setStatus(school: string, ref: string, status: AlertStatus, note: string | null, at: number) {
    return transaction(this.#pool, async (client) => {
      const row = (await client.query<AlertRow>(`${SELECT_ALERT} WHERE a.school = $1 AND a.ref = $2 FOR UPDATE OF a`, [school, ref])).rows[0];
      if (row === undefined) return null;
      const before = toCentralAlert(row);
      const after: CentralAlert = { ...before, status, note: note ?? before.note };
      await client.query(UPDATE_ALERT, [...alertValues(after), at, school, ref]);
      return { before, after };
    });
  }

  async counts(from: number, to: number): Promise<AlertCount[]> {
    const { rows } = await this.#pool.query<AlertCount>(
      'SELECT category, severity, count(*)::integer AS count FROM alerts WHERE time >= $1 AND time < $2 GROUP BY category, severity ORDER BY category COLLATE "C", severity COLLATE "C"',
      [from, to],
    );
    return rows;
  }

  async expire(before: number): Promise<number> {
    return (await this.#pool.query('DELETE FROM alerts WHERE last_time < $1', [before])).rowCount ?? 0;
  }

  async anonymiseDevices(school: string, devices: readonly string[], replacement: string): Promise<number> {
    const { rowCount } = await this.#pool.query('UPDATE alerts SET device = $1 WHERE school = $2 AND device = ANY($3)', [replacement, school, [...devices]]);
    return rowCount ?? 0;
  }

  async contacts(school: string): Promise<AlertContacts> {
    const row = (await this.#pool.query<{ emails: string; webhook: string | null }>('SELECT emails, webhook FROM alert_contacts WHERE school = $1', [school]))
      .rows[0];
    return { school, emails: row === undefined ? [] : (JSON.parse(row.emails) as string[]), webhook: row?.webhook ?? null };
  }

  async setContacts(contacts: AlertContacts): Promise<void> {
    await this.#pool.query(
      'INSERT INTO alert_contacts (school, emails, webhook) VALUES ($1, $2, $3) ON CONFLICT (school) DO UPDATE SET emails = excluded.emails, webhook = excluded.webhook',
      [contacts.school, JSON.stringify(contacts.emails), contacts.webhook],
    );
  }
}
