import Database from 'better-sqlite3';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { EVENTS_DB_FILE } from '../events/log.js';
import { BUSY_TIMEOUT_MS } from '../storage/sqlite.js';
import { ClientPseudonymizer, CLIENT_KEY_FILE } from '../events/pseudonym.js';
import { shortReference } from '../events/ids.js';
import { deviceTrustPath, readDeviceTrust } from '../proxy/device-trust-file.js';
import type { DeviceRecord } from '../proxy/device-trust.js';
import { ALERTS_DB_FILE, addressOf, eraseDeviceAlerts, listAlerts, openAlertsDatabase, openAlertsReadOnly } from '../safeguarding/database.js';
import { toWireAlert, type StoredAlert, type WireAlert } from '../safeguarding/types.js';

/**
 * What the gateway holds about one device, found by its address or by its pseudonym
 * (the 16 hex digits events carry): a parent's request under Law 91/2025/QH15
 * (docs/du-lieu-ca-nhan.md §7). Reads and erases the files of a data folder directly,
 * so it works whether or not the proxy runs (SQLite's locking keeps both consistent).
 */

const PSEUDONYM = /^[0-9a-f]{16}$/;

export class PrivacyError extends Error {
  constructor(
    readonly code: 'LACHAN_PRIVACY_BAD_DEVICE' | 'LACHAN_PRIVACY_NO_KEY',
    message: string,
  ) {
    super(message);
    this.name = 'PrivacyError';
  }
}

export interface DeviceSelector {
  /** The address asked about, or null when the request named the pseudonym. */
  readonly address: string | null;
  readonly pseudonym: string;
}

export interface DeviceEvent {
  readonly id: string;
  readonly reference: string;
  readonly time: number;
  readonly profile: string;
  readonly category: string | null;
  readonly host: string;
  readonly path: string;
  readonly count: number;
  readonly shippedAt: number | null;
}

export interface DeviceReview {
  readonly uid: string;
  readonly kind: string;
  readonly time: number;
  readonly host: string;
  readonly path: string;
  readonly category: string | null;
  readonly note: string;
  readonly status: string;
  readonly shippedAt: number | null;
}

/** A safeguarding alert as a parent's export shows it (docs/safeguarding.md). */
export type DeviceAlert = WireAlert & Pick<StoredAlert, 'shippedAt'>;

export interface DeviceData {
  readonly device: DeviceSelector;
  readonly events: readonly DeviceEvent[];
  readonly reviews: readonly DeviceReview[];
  /** Safeguarding alerts the device raised (alerts.db), newest first. */
  readonly alerts: readonly DeviceAlert[];
  /** The address or lab login alerts.db keeps behind the pseudonym (only for a device that raised an alert). */
  readonly alertAddress: string | null;
  /** The device's entry in device-trust.json (only when asked by address: the file holds addresses). */
  readonly trust: DeviceRecord | null;
}

/**
 * `ADDR` or a pseudonym as the device the request is about. An address is turned into
 * its pseudonym with the gateway's key, read and never created: without a key no event
 * was ever written.
 */
export function resolveDevice(dataDir: string, device: string): DeviceSelector | null {
  const text = device.trim().toLowerCase();
  if (PSEUDONYM.test(text)) return { address: null, pseudonym: text };
  const address = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (isIP(address) === 0) throw new PrivacyError('LACHAN_PRIVACY_BAD_DEVICE', `"${device}" is neither an IP address nor a device pseudonym (16 hex digits)`);
  const keyFile = path.join(dataDir, CLIENT_KEY_FILE);
  if (!existsSync(keyFile)) return null;
  const key = Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'hex');
  return { address, pseudonym: new ClientPseudonymizer(key).pseudonym(address) };
}

interface EventRow {
  id: string;
  time: number;
  profile: string;
  category: string | null;
  host: string;
  path: string;
  count: number | null;
  shipped_at: number | null;
}

interface ReviewRow {
  uid: string | null;
  id: number;
  kind: string | null;
  time: number;
  host: string;
  path: string | null;
  category: string | null;
  note: string;
  status: string;
  shipped_at: number | null;
}

function openEvents(dataDir: string, readonly: boolean): Database.Database | null {
  const file = path.join(dataDir, EVENTS_DB_FILE);
  if (!existsSync(file)) return null;
  const db = new Database(file, { readonly, fileMustExist: true });
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  return db;
}

/** Everything the data folder holds for `device`, oldest first. */
export function findDeviceData(dataDir: string, device: DeviceSelector): DeviceData {
  const db = openEvents(dataDir, true);
  let events: DeviceEvent[] = [];
  let reviews: DeviceReview[] = [];
  if (db !== null) {
    try {
      events = db
        .prepare<[string], EventRow>('SELECT * FROM events WHERE client = ? ORDER BY time, id')
        .all(device.pseudonym)
        .map((r) => ({
          id: r.id,
          reference: shortReference(r.id),
          time: r.time,
          profile: r.profile,
          category: r.category,
          host: r.host,
          path: r.path,
          count: r.count ?? 1,
          shippedAt: r.shipped_at,
        }));
      reviews = db
        .prepare<[string], ReviewRow>('SELECT * FROM reviews WHERE client = ? ORDER BY time, id')
        .all(device.pseudonym)
        .map((r) => ({
          uid: r.uid ?? String(r.id),
          kind: r.kind ?? 'review',
          time: r.time,
          host: r.host,
          path: r.path ?? '/',
          category: r.category,
          note: r.note,
          status: r.status,
          shippedAt: r.shipped_at,
        }));
    } finally {
      db.close();
    }
  }
  const trust = device.address === null ? null : (readDeviceTrust(dataDir).devices[device.address] ?? null);
  return { device, events, reviews, ...findDeviceAlerts(dataDir, device.pseudonym), trust };
}

function findDeviceAlerts(dataDir: string, pseudonym: string): Pick<DeviceData, 'alerts' | 'alertAddress'> {
  const db = openAlertsReadOnly(dataDir);
  if (db === null) return { alerts: [], alertAddress: null };
  try {
    const alerts = listAlerts(db, pseudonym).map((alert) => ({ ...toWireAlert(alert), shippedAt: alert.shippedAt }));
    return { alerts, alertAddress: addressOf(db, pseudonym) };
  } finally {
    db.close();
  }
}

export interface ErasureCounts {
  readonly events: number;
  readonly reviews: number;
  /** Safeguarding alerts deleted from alerts.db. */
  readonly alerts: number;
  /** Whether alerts.db held the device's address or lab login (deleted with its alerts). */
  readonly alertAddress: boolean;
  readonly trust: boolean;
}

/**
 * Deletes the device's events and review requests, its safeguarding alerts and the
 * address kept behind them, and its address from
 * device-trust.json. A proxy that is running keeps its own copy of the trust table in
 * memory and writes it back at its next change: the receipt says to restart it.
 */
export function eraseDeviceData(dataDir: string, device: DeviceSelector): ErasureCounts {
  const db = openEvents(dataDir, false);
  let events = 0;
  let reviews = 0;
  if (db !== null) {
    try {
      db.transaction(() => {
        events = db.prepare('DELETE FROM events WHERE client = ?').run(device.pseudonym).changes;
        reviews = db.prepare('DELETE FROM reviews WHERE client = ?').run(device.pseudonym).changes;
      }).immediate();
    } finally {
      db.close();
    }
  }
  const alerts = existsSync(path.join(dataDir, ALERTS_DB_FILE)) ? eraseAlerts(dataDir, device.pseudonym) : { alerts: 0, mapping: false };
  return {
    events,
    reviews,
    alerts: alerts.alerts,
    alertAddress: alerts.mapping,
    trust: device.address !== null && forgetTrustedAddress(dataDir, device.address),
  };
}

function eraseAlerts(dataDir: string, pseudonym: string): { alerts: number; mapping: boolean } {
  const db = openAlertsDatabase(dataDir);
  try {
    return eraseDeviceAlerts(db, pseudonym);
  } finally {
    db.close();
  }
}

function forgetTrustedAddress(dataDir: string, address: string): boolean {
  const file = deviceTrustPath(dataDir);
  if (!existsSync(file)) return false;
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { devices?: Record<string, unknown> };
  if (parsed.devices === undefined || !(address in parsed.devices)) return false;
  delete parsed.devices[address];
  // Whole and atomic, as the proxy writes it (device-trust-file.ts).
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(parsed), { mode: 0o600 });
  renameSync(temporary, file);
  return true;
}
