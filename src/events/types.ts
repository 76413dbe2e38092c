/**
 * The blocked-access event (docs/contract.md §5) as the proxy hands it to the event log.
 * The proxy never sees how events are stored or shipped.
 */
export interface BlockEventInput {
  /** Milliseconds since the epoch. */
  readonly time: number;
  readonly profile: string;
  readonly category: string | null;
  readonly reason: string;
  readonly rule: string | null;
  readonly source: string | null;
  readonly host: string;
  /** Path without the query string: queries never leave the request path. */
  readonly path: string;
  readonly method: string;
  /** The raw client address; the log turns it into a pseudonymous id before storing. */
  readonly clientAddress: string;
}

export interface EventLog {
  /**
   * Records a block without blocking the request path: the write is batched.
   * Returns the event reference shown on the block page.
   */
  record(event: BlockEventInput): string;
  /** Flushes pending events and closes the store. */
  close(): Promise<void>;
}
