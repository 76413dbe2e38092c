import type { ReviewRequestInput } from '../events/log.js';
import type { BlockEventInput } from '../events/types.js';

/**
 * What the proxy needs from the event store, and nothing more: a block recorder and a
 * review recorder. The gateway's event log satisfies both as it is; tests and later
 * work can hand in anything that does. The record shapes are the event model's own
 * (docs/contract.md §5).
 */

export type BlockRecord = BlockEventInput;
export type ReviewRecord = ReviewRequestInput;

export interface BlockRecorder {
  /** Records a block without holding up the request; returns the reference shown on the block page. */
  record(block: BlockRecord): string;
}

export interface ReviewRecorder {
  /** Stores a review request or report; null when it was refused. */
  recordReviewRequest(request: ReviewRecord): number | null;
}
