/**
 * The shipper's side of alerts.db: which alerts the collector has not seen as they are
 * now, and marking them once it acknowledged them. Its own connection, opened when
 * first needed and again after a failure, so that the process that ships (the cluster
 * primary) need not be the one that writes.
 */
import { existsSync } from 'node:fs';
import { closeQuietly, needsReopen, type SqliteDatabase } from '../storage/sqlite.js';
import { alertsFile, markAlertsShipped, openAlertsDatabase, unshippedAlerts } from './database.js';
import type { StoredAlert } from './types.js';

export class AlertOutbox {
  #db: SqliteDatabase | null = null;

  constructor(private readonly dataDir: string) {}

  /** Throws when the file cannot be read (the shipper logs it and asks again next round). */
  unshipped(limit: number): StoredAlert[] {
    const db = this.#open();
    return db === null ? [] : this.#using(db, () => unshippedAlerts(db, limit));
  }

  markShipped(sent: readonly StoredAlert[], at: number): void {
    const db = this.#open();
    if (db !== null) this.#using(db, () => markAlertsShipped(db, sent, at));
  }

  close(): void {
    this.#db?.close();
    this.#db = null;
  }

  /** Null until a proxy raised the first alert (the file is theirs to create). */
  #open(): SqliteDatabase | null {
    if (this.#db !== null) return this.#db;
    if (!existsSync(alertsFile(this.dataDir))) return null;
    this.#db = openAlertsDatabase(this.dataDir);
    return this.#db;
  }

  #using<T>(db: SqliteDatabase, work: () => T): T {
    try {
      return work();
    } catch (error) {
      if (needsReopen(error)) {
        closeQuietly(db);
        this.#db = null;
      }
      throw error;
    }
  }
}
