import { isMap, isScalar, isSeq, type LineCounter, type Node, type Pair } from 'yaml';
import { dayIndex, DAY_NAMES, formatClock, MINUTES_PER_DAY, parseClock, type WeekWindow } from '../policy/schedules.js';
import type { ProblemList } from './problems.js';
import type { Located } from './policy-file.js';

/** One entry of a profile's `schedules:` list (docs/contract.md §9), validated. */
export interface ScheduleConfig {
  readonly name: string;
  readonly line: number;
  readonly windows: readonly WeekWindow[];
  /** Replaces the profile's block_categories inside the windows. */
  readonly blockCategories: readonly Located<string>[];
}

const SCHEDULE_FIELDS = new Set(['name', 'days', 'from', 'to', 'block_categories']);

/**
 * Reads a profile's `schedules:` list. Every mistake is an error at its line, so a
 * reload with a bad schedule is refused and the policy already serving stays.
 */
export function readSchedules(node: Node | null | undefined, lines: LineCounter, file: string, problems: ProblemList): ScheduleConfig[] {
  const lineOf = (at: Node | Pair | null | undefined): number => {
    const range = at && 'range' in at ? at.range : at && 'key' in at ? (at.key as Node | null)?.range : undefined;
    return range ? lines.linePos(range[0]).line : 1;
  };
  const error = (at: Node | Pair | null | undefined, message: string): void => problems.error(file, lineOf(at), message);
  if (node === undefined || node === null || (isScalar(node) && node.value === null)) return [];
  if (!isSeq(node)) {
    error(node, 'schedules must be a list of { name, days, from, to, block_categories }');
    return [];
  }
  const schedules: ScheduleConfig[] = [];
  for (const item of node.items) {
    if (!isMap(item)) {
      error(item as Node, 'each schedule needs name, days, from, to and block_categories');
      continue;
    }
    for (const field of item.items) {
      const key = isScalar(field.key) ? String(field.key.value) : '';
      if (!SCHEDULE_FIELDS.has(key)) problems.warning(file, lineOf(field.key as Node), `unknown schedule field "${key}" (ignored)`);
    }
    const line = lineOf(item);
    const nameNode = item.get('name', true) as Node | undefined;
    const name = isScalar(nameNode) && typeof nameNode.value === 'string' && nameNode.value.trim() !== '' ? nameNode.value.trim() : null;
    if (name === null) error(nameNode ?? item, 'schedule needs a "name" (shown by lachan check and on the block page)');
    const label = name ?? 'schedule';

    const days = readDays(item.get('days', true) as Node | undefined, label, error, item);
    const from = readClock(item.get('from', true) as Node | undefined, 'from', label, error, item);
    const to = readClock(item.get('to', true) as Node | undefined, 'to', label, error, item);
    if (from !== null && to !== null && to <= from) {
      error(
        item.get('to', true) as Node,
        `schedule "${label}": "to" (${formatClock(to)}) must be later than "from" (${formatClock(from)}); a window ends the day it starts`,
      );
    }
    if (from !== null && from === MINUTES_PER_DAY) error(item.get('from', true) as Node, `schedule "${label}": "from" must be 00:00 … 23:59`);

    const categoriesNode = item.get('block_categories', true) as Node | undefined;
    const blockCategories: Located<string>[] = [];
    if (categoriesNode === undefined) error(item, `schedule "${label}" needs "block_categories" (the list in force inside the window; [] blocks none)`);
    else if (!isSeq(categoriesNode)) error(categoriesNode, `schedule "${label}": block_categories must be a list, e.g. [adult, gambling]`);
    else {
      for (const element of categoriesNode.items) {
        if (isScalar(element) && typeof element.value === 'string') blockCategories.push({ value: element.value, line: lineOf(element as Node) });
        else error(element as Node, 'list entries must be plain text');
      }
    }
    if (name === null || days === null || from === null || to === null || to <= from) continue;
    const windows = days.map((day) => ({ start: day * MINUTES_PER_DAY + from, end: day * MINUTES_PER_DAY + to }));
    const clash = findOverlap(schedules, windows);
    if (clash !== null) {
      error(item, `schedule "${name}" overlaps schedule "${clash.name}" (line ${clash.line}) on ${DAY_NAMES[Math.floor(clash.start / MINUTES_PER_DAY)]}`);
      continue;
    }
    schedules.push({ name, line, windows, blockCategories });
  }
  return schedules;
}

function readDays(node: Node | undefined, label: string, error: (at: Node | Pair | undefined, message: string) => void, owner: Node): number[] | null {
  if (node === undefined || !isSeq(node) || node.items.length === 0) {
    error(node ?? owner, `schedule "${label}": days must be a list of ${DAY_NAMES.join(', ')}`);
    return null;
  }
  const days = new Set<number>();
  let ok = true;
  for (const element of node.items) {
    const value = isScalar(element) ? String(element.value).toLowerCase() : '';
    const day = dayIndex(value);
    if (day < 0) {
      error(element as Node, `schedule "${label}": "${value}" is not a day (${DAY_NAMES.join(', ')})`);
      ok = false;
    } else days.add(day);
  }
  return ok ? [...days].sort((a, b) => a - b) : null;
}

function readClock(
  node: Node | undefined,
  field: 'from' | 'to',
  label: string,
  error: (at: Node | Pair | undefined, message: string) => void,
  owner: Node,
): number | null {
  // Unquoted 11:30 is a sexagesimal number to YAML 1.1 but a string to YAML 1.2 (this parser's default).
  const value = isScalar(node) ? node.value : undefined;
  const minutes = typeof value === 'string' ? parseClock(value) : null;
  if (minutes === null)
    error(node ?? owner, `schedule "${label}": "${field}" must be a time HH:MM in Vietnam time (00:00 … 24:00), not "${String(value ?? '')}"`);
  return minutes;
}

function findOverlap(earlier: readonly ScheduleConfig[], windows: readonly WeekWindow[]): { name: string; line: number; start: number } | null {
  for (const schedule of earlier) {
    for (const a of schedule.windows) {
      for (const b of windows) {
        if (a.start < b.end && b.start < a.end) return { name: schedule.name, line: schedule.line, start: Math.max(a.start, b.start) };
      }
    }
  }
  return null;
}
