import type { SqlConnection } from '../storage/sql.js';
import { DistrictPolicy, type AuditSink } from './district-policy.js';
import { ReviewQueue } from './reviews.js';
import type { PolicySigner } from './signing-key.js';

/** The district's own work at the collector: its policy overlay, the key that signs it, the review queue. */
export interface District {
  readonly policy: DistrictPolicy;
  readonly reviews: ReviewQueue;
  readonly signer: PolicySigner;
}

/** On the collector's database (tables from district-schema.ts, or pg-district-schema.ts on PostgreSQL). */
export function openDistrict(db: SqlConnection, signer: PolicySigner, audit: AuditSink): District {
  const policy = new DistrictPolicy(db, audit);
  return { policy, reviews: new ReviewQueue(db, policy, audit), signer };
}
