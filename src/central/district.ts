import type Database from 'better-sqlite3';
import { DistrictPolicy, type AuditSink } from './district-policy.js';
import { ReviewQueue } from './reviews.js';
import { loadOrCreateSigner, type PolicySigner } from './signing-key.js';

/** The district's own work at the collector: its policy overlay, the key that signs it, the review queue. */
export interface District {
  readonly policy: DistrictPolicy;
  readonly reviews: ReviewQueue;
  readonly signer: PolicySigner;
}

/** On the collector's database (tables from district-schema.ts); the signing key lives in `dataDir`. */
export function openDistrict(db: Database.Database, dataDir: string, audit: AuditSink): District {
  const policy = new DistrictPolicy(db, audit);
  return { policy, reviews: new ReviewQueue(db, policy, audit), signer: loadOrCreateSigner(dataDir) };
}
