/**
 * The district's side of a PostgreSQL collector database: the same account, policy,
 * review and dashboard modules as on SQLite, over a synchronous connection
 * (src/storage/pg-sync.ts), and the policy signing key kept in the database so that
 * every collector process signs with it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { SqlConnection } from '../storage/sql.js';
import { AccountStore } from './accounts.js';
import { DashboardQueries } from './dashboard/queries.js';
import type { AuditSink } from './district-policy.js';
import { openDistrict, type District } from './district.js';
import { newSigningKeyPem, SIGNING_KEY_FILE, SIGNING_PUBLIC_KEY_FILE, signerFromPem, type PolicySigner } from './signing-key.js';

/**
 * The signing key in the database; made once, by whichever process asks first. A
 * district coming from SQLite keeps its key (the file in `dataDir`), so its gateways,
 * which pinned it, go on trusting the overlay.
 */
export function databaseSigner(db: SqlConnection, dataDir: string | null): PolicySigner {
  const read = db.prepare<[], { private_pem: string }>('SELECT private_pem FROM signing_key WHERE id = 1');
  let pem = read.get()?.private_pem;
  if (pem === undefined) {
    const file = dataDir === null ? null : path.join(dataDir, SIGNING_KEY_FILE);
    const candidate = file !== null && existsSync(file) ? readFileSync(file, 'utf8').trim() : newSigningKeyPem();
    db.prepare('INSERT INTO signing_key (id, private_pem, created_at) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING').run(candidate, Date.now());
    pem = read.get()!.private_pem;
  }
  const signer = signerFromPem(pem, 'signing_key (PostgreSQL)');
  if (dataDir !== null && existsSync(dataDir)) writeFileSync(path.join(dataDir, SIGNING_PUBLIC_KEY_FILE), signer.publicKeyPem, { mode: 0o644 });
  return signer;
}

/** What CollectorDatabase adds to the event store, on one synchronous connection. */
export class PgDistrictTables {
  readonly #db: SqlConnection;
  #accounts: AccountStore | null = null;
  #queries: DashboardQueries | null = null;

  constructor(db: SqlConnection) {
    this.#db = db;
  }

  get accounts(): AccountStore {
    this.#accounts ??= new AccountStore(this.#db);
    return this.#accounts;
  }

  get dashboardQueries(): DashboardQueries {
    this.#queries ??= new DashboardQueries(this.#db);
    return this.#queries;
  }

  openDistrict(dataDir: string | null, audit: AuditSink): District {
    return openDistrict(this.#db, databaseSigner(this.#db, dataDir), audit);
  }
}
