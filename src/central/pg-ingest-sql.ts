/**
 * The PostgreSQL store's ingest statements (pg-store.ts) and the columns they take: a
 * group of batches goes in as one array a column, which `unnest` turns back into rows.
 */
import { EVENT_COLUMNS, EVENT_FIELDS, type WireEvent } from '../events/event-schema.js';
import { dayNumber, monthOfDay } from './days.js';
import { ROLLUPS } from './event-writer.js';
import { PG_KEY_SQL } from './pg-schema.js';

const ROW_TYPES = [...EVENT_FIELDS.map((f) => `${f.postgres}[]`), 'text[]', 'bigint[]'];
const ROW_COLUMNS = `${EVENT_COLUMNS}, school, received_at`;
const FIELD_COUNT = EVENT_FIELDS.length;
const FIELD_NAMES: readonly string[] = EVENT_FIELDS.map((f) => f.name);
/** What a field absent from an event is stored as. */
const FIELD_DEFAULTS: readonly unknown[] = EVENT_FIELDS.map((f) => ('default' in f ? f.default : null));

/**
 * One statement, one round trip for a group of batches (group-commit.ts): stores rows (the
 * event's fields, then school and time received: one array a column, which `unnest`
 * turns back into rows; each (school, id, time) once, with its highest count, in key
 * order), unless told not to counts the rows it inserted in every roll-up
 * (`$N::boolean`), records the schools' contact (`$N+1`, `$N+2`: schools in order and
 * times; empty for `central migrate`'s copies) and answers how many rows each school
 * stored. A single statement commits on its own: no BEGIN and COMMIT round trips, and
 * the roll-up rows, the hot rows every batch of the day updates, are locked for that
 * statement only.
 */
const insertSql = (rows: 'any' | 'unique and in key order') => {
  const countThem = `$${ROW_TYPES.length + 1}::boolean`;
  const contacts = `$${ROW_TYPES.length + 2}::text[]`;
  const contactTimes = `$${ROW_TYPES.length + 3}::bigint[]`;
  const unnested = `unnest(${ROW_TYPES.map((t, i) => `$${i + 1}::${t}`).join(', ')}) AS input(${ROW_COLUMNS})`;
  // Rows known unique and ordered go in as unnest gives them, in array order: no sort.
  const input = rows === 'any' ? `SELECT DISTINCT ON (school, id, time) * FROM ${unnested} ORDER BY school, id, time, count DESC` : `SELECT * FROM ${unnested}`;
  const keys = (r: (typeof ROLLUPS)[number]) => r.keys.map((k) => `${PG_KEY_SQL[k]}`).join(', ');
  const positions = (r: (typeof ROLLUPS)[number]) => r.keys.map((_, j) => j + 1).join(', ');
  const rollups = ROLLUPS.map(
    (r, i) =>
      `r${i} AS (INSERT INTO ${r.table} AS t (${r.keys.join(', ')}, n) SELECT ${keys(r)}, count(*) FROM fresh WHERE ${countThem} GROUP BY ${positions(r)} ORDER BY ${positions(r)} ON CONFLICT (${r.keys.join(', ')}) DO UPDATE SET n = t.n + excluded.n)`,
  );
  return `WITH input AS (${input}),
    fresh AS (
      INSERT INTO events (${ROW_COLUMNS}) SELECT * FROM input
      ON CONFLICT (school, id, time) DO NOTHING
      RETURNING time, school, profile, category, host
    ),
    ${rollups.join(',\n    ')},
    touched AS (
      INSERT INTO school_contact AS c (school, last_at) SELECT * FROM unnest(${contacts}, ${contactTimes})
      ON CONFLICT (school) DO UPDATE SET last_at = greatest(c.last_at, excluded.last_at)
    )
    SELECT school, count(*) AS stored FROM fresh GROUP BY school`;
};
export const INSERT_SQL = insertSql('any');
/** For a group whose batches each carry rising ids (idsRise), put in school order: PostgreSQL need not sort or dedupe them. */
export const INSERT_ORDERED_SQL = insertSql('unique and in key order');

/** Whether a batch's ids rise strictly, as a gateway makes them (ids.ts: ULIDs in time order): then they are unique, and in key order. */
export function idsRise(events: readonly WireEvent[]): boolean {
  for (let i = 1; i < events.length; i++) if (!(events[i - 1]!.id < events[i]!.id)) return false;
  return true;
}

/**
 * A visit's event sent again with more requests: its count grows, nothing else changes.
 * A statement of its own, after the insert has committed: its snapshot sees what another
 * process committed meanwhile (one that stored the same event first). Should the process
 * stop between the two, the batch was not acknowledged and comes again.
 */
export const RAISE_COUNTS_SQL = `UPDATE events AS e SET count = raised.count
  FROM unnest($1::text[], $2::bigint[], $3::integer[]) AS raised(id, time, count)
  WHERE e.school = $4 AND e.id = raised.id AND e.time = raised.time AND e.count < raised.count`;

/**
 * The statements' column arrays for `events` (each event's fields in EVENT_FIELDS order,
 * then its school and time received), filled an event at a time straight from the
 * batches, and the months they fall in (their partitions).
 */
export class IngestColumns {
  readonly columns: unknown[][];
  readonly months = new Set<number>();
  #row = 0;
  // A batch's events mostly share a day: its month is worked out again only when the day changes.
  #lastDay = Number.NaN;

  /** For `rows` events, added with `add`. */
  constructor(rows: number) {
    this.columns = ROW_TYPES.map(() => new Array<unknown>(rows));
  }

  add(event: WireEvent, school: string, receivedAt: number): void {
    const { columns } = this;
    const row = this.#row++;
    const fields = event as unknown as Record<string, unknown>;
    for (let column = 0; column < FIELD_COUNT; column++) columns[column]![row] = fields[FIELD_NAMES[column]!] ?? FIELD_DEFAULTS[column];
    columns[FIELD_COUNT]![row] = school;
    columns[FIELD_COUNT + 1]![row] = receivedAt;
    const day = dayNumber(event.time);
    if (day !== this.#lastDay) {
      this.months.add(monthOfDay(day));
      this.#lastDay = day;
    }
  }
}
