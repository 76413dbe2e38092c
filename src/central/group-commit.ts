/**
 * Group commit for the PostgreSQL store's ingest (pg-store.ts): at most `statements`
 * ingest statements of a process run at once; batches that arrive meanwhile wait, and
 * the next statement takes all of them (up to `maxEvents` events, one batch a school,
 * so each school's count of new rows is its own batch's). Under load many small batches
 * become one statement: one round trip, and each hot roll-up row updated once for all
 * of them instead of once a batch. With no load a batch goes at once, alone.
 */
import type { WireEvent } from '../events/event-schema.js';

export interface SchoolBatch {
  readonly school: string;
  readonly events: readonly WireEvent[];
  readonly receivedAt: number;
}

/** Runs one statement for `group`; resolves to the rows stored new, by school. */
export type GroupWriter = (group: readonly SchoolBatch[]) => Promise<ReadonlyMap<string, number>>;

interface Pending extends SchoolBatch {
  readonly done: (stored: number) => void;
  readonly failed: (error: unknown) => void;
}

export class GroupCommit {
  readonly #write: GroupWriter;
  readonly #statements: number;
  readonly #maxEvents: number;
  #running = 0;
  /** Batches waiting for a statement, oldest first. */
  #pending: Pending[] = [];

  constructor(write: GroupWriter, statements: number, maxEvents: number) {
    this.#write = write;
    this.#statements = statements;
    this.#maxEvents = maxEvents;
  }

  /** Stores `batch` in the next statement with room; how many of its events were new. */
  add(batch: SchoolBatch): Promise<number> {
    return new Promise((done, failed) => {
      this.#pending.push({ ...batch, done, failed });
      this.#flush();
    });
  }

  #flush(): void {
    while (this.#running < this.#statements && this.#pending.length > 0) {
      const group: Pending[] = [];
      const later: Pending[] = [];
      const schools = new Set<string>();
      let size = 0;
      for (const batch of this.#pending) {
        if (schools.has(batch.school) || (group.length > 0 && size + batch.events.length > this.#maxEvents)) later.push(batch);
        else {
          group.push(batch);
          schools.add(batch.school);
          size += batch.events.length;
        }
      }
      this.#pending = later;
      this.#running++;
      void this.#run(group).finally(() => {
        this.#running--;
        this.#flush();
      });
    }
  }

  /**
   * A group's statement that fails is run again a batch at a time, so that only a batch
   * that fails on its own is refused: one school's bad batch must not refuse the schools
   * that happened to share its statement (their gateways would resend in vain).
   */
  async #run(group: readonly Pending[]): Promise<void> {
    try {
      const stored = await this.#write(group);
      for (const batch of group) batch.done(stored.get(batch.school) ?? 0);
    } catch (error) {
      if (group.length === 1) group[0]!.failed(error);
      else for (const batch of group) await this.#run([batch]);
    }
  }
}
