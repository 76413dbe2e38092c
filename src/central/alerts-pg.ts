/**
 * Safeguarding alerts on the collector's PostgreSQL database (docs/safeguarding.md):
 * the twin of alerts-sqlite.ts. Rows of a batch are locked in key order (FOR UPDATE), so
 * two collector processes folding in the same alert take turns and neither loses a send.
 */
import { transaction, type PgPool } from '../storage/postgres.js';
import type { AlertChange, AlertContacts, AlertCount, AlertFilter, AlertStatus, AlertStore, CentralAlert, WireAlert } from './alerts.js';
import { mergeAlert } from './alerts.js';
import { ALERT_COLUMNS, type AlertRow, alertValues, toCentralAlert } from './alerts-sqlite.js';

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
   CREATE INDEX alerts_time ON alerts (time);
   CREATE TABLE alert_contacts (school text COLLATE "C" PRIMARY KEY, emails text NOT NULL, webhook text);`,
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
      return byRef;
    });
    return alerts.map((a) => changes.get(a.ref)!);
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
