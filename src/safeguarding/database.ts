/**
 * The gateway's alert file, `<data>/alerts.db` (SQLite, readable by the gateway's user
 * only): the alerts raised here and, for the devices that raised one, the address or
 * lab login behind the pseudonym. That mapping is kept nowhere else and never leaves
 * the gateway. Its own file, so that a parent's erasure or the retention of alerts
 * touches nothing of the event log, and the event log's schema stays its own.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { migrate, openPrivateDatabase, openReadOnly, type SqliteDatabase } from '../storage/sqlite.js';
import { severityOf, type AlertCategory, type SignalKind, type StoredAlert } from './types.js';

export const ALERTS_DB_FILE = 'alerts.db';

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE alerts (
     ref TEXT PRIMARY KEY,
     device TEXT NOT NULL,
     category TEXT NOT NULL,
     profile TEXT NOT NULL,
     time INTEGER NOT NULL,
     last_time INTEGER NOT NULL,
     severity INTEGER NOT NULL,
     base INTEGER NOT NULL,
     signal TEXT NOT NULL,
     trigger TEXT NOT NULL,
     host TEXT NOT NULL,
     count INTEGER NOT NULL,
     version INTEGER NOT NULL DEFAULT 1,
     shipped_version INTEGER NOT NULL DEFAULT 0,
     shipped_at INTEGER
   );
   CREATE INDEX alerts_by_device ON alerts (device, category, time);
   CREATE INDEX alerts_unshipped ON alerts (last_time) WHERE version > shipped_version;
   CREATE TABLE alert_devices (
     device TEXT PRIMARY KEY,
     address TEXT NOT NULL,
     last_time INTEGER NOT NULL
   );`,
];

export function alertsFile(dataDir: string): string {
  return path.join(dataDir, ALERTS_DB_FILE);
}

/** Opens (creating and migrating) the alert file for writing. */
export function openAlertsDatabase(dataDir: string): SqliteDatabase {
  const file = alertsFile(dataDir);
  const db = openPrivateDatabase(file);
  try {
    migrate(db, MIGRATIONS, file);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/** The alert file read-only, or null when no alert was ever raised here. */
export function openAlertsReadOnly(dataDir: string): SqliteDatabase | null {
  const file = alertsFile(dataDir);
  return existsSync(file) ? openReadOnly(file) : null;
}

export interface AlertRow {
  ref: string;
  device: string;
  category: string;
  profile: string;
  time: number;
  last_time: number;
  severity: number;
  base: number;
  signal: string;
  trigger: string;
  host: string;
  count: number;
  version: number;
  shipped_version: number;
  shipped_at: number | null;
}

export function toStoredAlert(row: AlertRow): StoredAlert {
  return {
    ref: row.ref,
    time: row.time,
    lastTime: row.last_time,
    severity: severityOf(row.severity),
    category: row.category as AlertCategory,
    signal: row.signal as SignalKind,
    trigger: row.trigger,
    host: row.host,
    device: row.device,
    profile: row.profile,
    count: row.count,
    version: row.version,
    shippedVersion: row.shipped_version,
    shippedAt: row.shipped_at,
  };
}

/** Alerts, newest first (`device`: one device's only). */
export function listAlerts(db: SqliteDatabase, device?: string): StoredAlert[] {
  const rows =
    device === undefined
      ? db.prepare<[], AlertRow>('SELECT * FROM alerts ORDER BY last_time DESC, ref').all()
      : db.prepare<[string], AlertRow>('SELECT * FROM alerts WHERE device = ? ORDER BY last_time DESC, ref').all(device);
  return rows.map(toStoredAlert);
}

export function findAlert(db: SqliteDatabase, ref: string): StoredAlert | null {
  const row = db.prepare<[string], AlertRow>('SELECT * FROM alerts WHERE ref = ?').get(ref);
  return row === undefined ? null : toStoredAlert(row);
}

/** The address or lab login behind a pseudonym that raised an alert, or null. */
export function addressOf(db: SqliteDatabase, device: string): string | null {
  return db.prepare<[string], { address: string }>('SELECT address FROM alert_devices WHERE device = ?').get(device)?.address ?? null;
}

/** Alerts the collector has not seen as they are now (new or escalated since), oldest change first. */
export function unshippedAlerts(db: SqliteDatabase, limit: number): StoredAlert[] {
  return db.prepare<[number], AlertRow>('SELECT * FROM alerts WHERE version > shipped_version ORDER BY last_time, ref LIMIT ?').all(limit).map(toStoredAlert);
}

/** Marks alerts acknowledged as they were sent: one that changed while it travelled stays unshipped. */
export function markAlertsShipped(db: SqliteDatabase, sent: readonly StoredAlert[], at: number): void {
  const mark = db.prepare<[number, number, string]>('UPDATE alerts SET shipped_version = max(shipped_version, ?), shipped_at = ? WHERE ref = ?');
  db.transaction(() => {
    for (const alert of sent) mark.run(alert.version, at, alert.ref);
  }).immediate();
}

/**
 * Deletes alerts whose last signal is older than `before` (with `keepUnshipped`, only
 * those the collector has), then the mappings of devices left without an alert.
 */
export function expireAlerts(db: SqliteDatabase, before: number, keepUnshipped: boolean): number {
  return db
    .transaction(() => {
      const removed = db
        .prepare<[number, number]>('DELETE FROM alerts WHERE last_time < ? AND (? = 0 OR shipped_version >= version)')
        .run(before, keepUnshipped ? 1 : 0).changes;
      db.prepare('DELETE FROM alert_devices WHERE device NOT IN (SELECT device FROM alerts)').run();
      return removed;
    })
    .immediate();
}

/** A parent's erasure: the device's alerts and its mapping. */
export function eraseDeviceAlerts(db: SqliteDatabase, device: string): { alerts: number; mapping: boolean } {
  return db
    .transaction(() => ({
      alerts: db.prepare('DELETE FROM alerts WHERE device = ?').run(device).changes,
      mapping: db.prepare('DELETE FROM alert_devices WHERE device = ?').run(device).changes > 0,
    }))
    .immediate();
}
