/**
 * The blocked-access event's fields, declared once (docs/contract.md §5, docs/events.md):
 * their wire names (which are also their column names, in the gateway's log and in the
 * collector), their types, and their SQL types in SQLite and PostgreSQL. The wire type,
 * the column lists, the insert statements' values and the PostgreSQL table are derived
 * from this list; the SQLite tables were built by migrations that have shipped, whose
 * text stays as it was (an upgrade test checks it still matches).
 *
 * In wire order; a gateway's row and the collector's row add their own columns (the
 * school, when it was shipped or received) around these.
 */
export const EVENT_FIELDS = [
  /** A ULID-like id, unique per gateway: the collector keys on (school, id). */
  { name: 'id', type: 'text', nullable: false, sqlite: 'TEXT', postgres: 'text' },
  /** Milliseconds since the epoch. */
  { name: 'time', type: 'integer', nullable: false, sqlite: 'INTEGER', postgres: 'bigint' },
  { name: 'profile', type: 'text', nullable: false, sqlite: 'TEXT', postgres: 'text' },
  { name: 'category', type: 'text', nullable: true, sqlite: 'TEXT', postgres: 'text' },
  { name: 'reason', type: 'text', nullable: false, sqlite: 'TEXT', postgres: 'text' },
  { name: 'rule', type: 'text', nullable: true, sqlite: 'TEXT', postgres: 'text' },
  { name: 'source', type: 'text', nullable: true, sqlite: 'TEXT', postgres: 'text' },
  { name: 'host', type: 'text', nullable: false, sqlite: 'TEXT', postgres: 'text' },
  /** Never carries a query string or fragment. */
  { name: 'path', type: 'text', nullable: false, sqlite: 'TEXT', postgres: 'text' },
  { name: 'method', type: 'text', nullable: false, sqlite: 'TEXT', postgres: 'text' },
  /** Pseudonymous client id (hex HMAC), never an address. */
  { name: 'client', type: 'text', nullable: false, sqlite: 'TEXT', postgres: 'text' },
  /**
   * Requests this event stands for: a gateway folds repeats from one device to one host
   * and category within a short window into one event (one visit). Absent on the wire
   * means 1 (gateways from before the folding); stored, it defaults to 1.
   */
  { name: 'count', type: 'integer', nullable: false, optional: true, default: 1, sqlite: 'INTEGER', postgres: 'integer' },
] as const;

type Field = (typeof EVENT_FIELDS)[number];
type FieldValue<F> = F extends Field ? (F['type'] extends 'integer' ? number : string) | (F['nullable'] extends true ? null : never) : never;
type ValuesOf<T extends readonly unknown[]> = { -readonly [K in keyof T]: FieldValue<T[K]> };
type Required = Exclude<Field, { optional: true }>;
type Optional = Extract<Field, { optional: true }>;

/** The event as it travels from a gateway to the collector, and as both store it. */
export type WireEvent = { readonly [F in Required as F['name']]: FieldValue<F> } & { readonly [F in Optional as F['name']]?: FieldValue<F> };

/** An event's values in EVENT_FIELDS order (the order of EVENT_COLUMNS and EVENT_PLACEHOLDERS). */
export type EventValues = ValuesOf<typeof EVENT_FIELDS>;

export type EventFieldName = Field['name'];

/** `id, time, …, count`: the event's columns, in EVENT_FIELDS order. */
export const EVENT_COLUMNS = EVENT_FIELDS.map((f) => f.name).join(', ');

/** Where the count sits in EventValues (a literal, so a tuple's element type follows; checked below). */
export const COUNT_INDEX = 11;
if (EVENT_FIELDS[COUNT_INDEX].name !== 'count') throw new Error('event-schema: COUNT_INDEX does not name count');

/**
 * The values of a wire event in column order, `count` defaulted. Copies only the wire
 * fields, so a store's row (with its own columns) gives its event.
 */
export function eventValues(event: WireEvent): EventValues {
  const values = EVENT_FIELDS.map((f) => (event as Record<string, unknown>)[f.name] ?? ('default' in f ? f.default : null));
  return values as unknown as EventValues;
}

/** The wire fields of a stored event (a row of either store names its columns alike), dropping the store's own columns. */
export function wireFieldsOf(row: WireEvent): WireEvent {
  const event: Record<string, unknown> = {};
  for (const f of EVENT_FIELDS) event[f.name] = (row as Record<string, unknown>)[f.name] ?? ('default' in f ? f.default : null);
  return event as WireEvent;
}

/**
 * Column definitions (`name TYPE [NOT NULL] [DEFAULT …]`) for a CREATE TABLE in
 * `dialect`. PostgreSQL text compares byte by byte (COLLATE "C"), as SQLite's does, so
 * both stores order hosts and names alike whatever the database's locale.
 */
export function eventColumnDefinitions(dialect: 'sqlite' | 'postgres'): string {
  const collate = (f: (typeof EVENT_FIELDS)[number]) => (dialect === 'postgres' && f.type === 'text' ? ' COLLATE "C"' : '');
  return EVENT_FIELDS.map((f) => `${f.name} ${f[dialect]}${collate(f)}${f.nullable ? '' : ' NOT NULL'}${'default' in f ? ` DEFAULT ${f.default}` : ''}`).join(
    ',\n     ',
  );
}

/** `?, ?, …` (SQLite) for one event's values. */
export const EVENT_PLACEHOLDERS = EVENT_FIELDS.map(() => '?').join(', ');
