import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { LIST_FORMATS, type ListFormat } from '../rules/importers.js';
import { ProblemList, RulesLoadError, type RuleProblem } from '../rules/problems.js';
import { displayPath } from '../rules/loader.js';

/** The file in a rules folder (or a collector's data folder) that subscribes categories to outside lists. */
export const LISTS_FILE = 'lists.yaml';

/** One subscription: an outside list whose entries join a category. */
export interface ListSubscription {
  /** Unique; names the list in `check` sources, metrics and the data folder. */
  readonly name: string;
  readonly category: string;
  readonly url: string;
  readonly format: ListFormat;
  /** How often to look for a new version, in milliseconds. */
  readonly refreshMs: number;
  /** The interval as written (`1d`), for messages. */
  readonly refresh: string;
  readonly line: number;
}

const FIELDS = new Set(['name', 'category', 'url', 'format', 'refresh']);
/** A list name is also a file name under the data folder: no slashes, no dots first. */
const LIST_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/i;
const CATEGORY_NAME = /^[a-z0-9][a-z0-9_-]*$/i;
const UNIT_MS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30m`, `12h`, `1d`, `7d` (seconds too, for tests and labs) → milliseconds, or null. */
export function parseRefresh(text: string): number | null {
  const match = /^(\d{1,6})\s*([smhd])$/.exec(text.trim());
  if (match === null) return null;
  const ms = Number(match[1]) * UNIT_MS[match[2]!]!;
  return ms > 0 ? ms : null;
}

/**
 * Parses lists.yaml text. Every problem goes to `problems` as FILE:LINE; the
 * subscriptions returned are those without errors.
 */
export function parseListsFile(text: string, file: string, problems: ProblemList): ListSubscription[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  for (const error of doc.errors) problems.error(file, lineCounter.linePos(error.pos[0]).line, `YAML: ${error.message.split('\n', 1)[0]!}`);
  if (doc.errors.length > 0) return [];
  const lineOf = (node: Node | null | undefined): number => (node?.range ? lineCounter.linePos(node.range[0]).line : 1);
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return [];
  if (!isMap(root)) {
    problems.error(file, lineOf(root), 'lists.yaml must be a mapping with a "lists:" sequence');
    return [];
  }
  const subscriptions: ListSubscription[] = [];
  const names = new Map<string, number>();
  for (const pair of root.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    const keyLine = lineOf(pair.key as Node);
    if (key !== 'lists') {
      problems.error(file, keyLine, `unknown field "${key}" (expected "lists")`);
      continue;
    }
    if (pair.value === null || (isScalar(pair.value) && pair.value.value === null)) continue;
    if (!isSeq(pair.value)) {
      problems.error(file, keyLine, '"lists" must be a sequence of subscriptions (- name: …)');
      continue;
    }
    for (const item of pair.value.items) {
      const line = lineOf(item as Node);
      if (!isMap(item)) {
        problems.error(file, line, 'a subscription is a mapping with name, category, url, format, refresh');
        continue;
      }
      const fields = new Map<string, { value: unknown; line: number }>();
      for (const field of item.items) {
        const name = isScalar(field.key) ? String(field.key.value) : '';
        const valueNode = field.value as Node | null;
        if (!FIELDS.has(name)) problems.error(file, lineOf(field.key as Node), `unknown field "${name}" (name, category, url, format, refresh)`);
        else
          fields.set(name, {
            value: isScalar(valueNode) ? valueNode.value : valueNode === null ? null : '(not text)',
            line: lineOf(valueNode ?? (field.key as Node)),
          });
      }
      const text = (name: string): { value: string; line: number } | null => {
        const field = fields.get(name);
        if (field === undefined || field.value === null || field.value === '') {
          problems.error(file, line, `subscription needs "${name}"`);
          return null;
        }
        return { value: String(field.value).trim(), line: field.line };
      };
      const name = text('name');
      const category = text('category');
      const url = text('url');
      const format = text('format');
      const refresh = fields.has('refresh') ? text('refresh') : { value: '1d', line };
      let ok = name !== null && category !== null && url !== null && format !== null && refresh !== null;
      if (name !== null) {
        if (!LIST_NAME.test(name.value)) {
          problems.error(file, name.line, `list name "${name.value}": letters, digits, . _ - (at most 64)`);
          ok = false;
        } else if (names.has(name.value.toLowerCase())) {
          problems.error(file, name.line, `list name "${name.value}" is used twice (first on line ${names.get(name.value.toLowerCase())})`);
          ok = false;
        } else names.set(name.value.toLowerCase(), name.line);
      }
      if (category !== null && !CATEGORY_NAME.test(category.value)) {
        problems.error(file, category.line, `category "${category.value}" is not a category folder name`);
        ok = false;
      }
      if (url !== null && !isHttpUrl(url.value)) {
        problems.error(file, url.line, `url "${url.value}" must be an http:// or https:// address`);
        ok = false;
      }
      if (format !== null && !(LIST_FORMATS as readonly string[]).includes(format.value)) {
        problems.error(file, format.line, `format "${format.value}": one of ${LIST_FORMATS.join(', ')}`);
        ok = false;
      }
      const refreshMs = refresh === null ? null : parseRefresh(refresh.value);
      if (refresh !== null && refreshMs === null) {
        problems.error(file, refresh.line, `refresh "${refresh.value}": a number and a unit, e.g. 30m, 12h, 1d, 7d`);
        ok = false;
      }
      if (!ok) continue;
      subscriptions.push({
        name: name!.value,
        category: category!.value,
        url: url!.value,
        format: format!.value as ListFormat,
        refreshMs: refreshMs!,
        refresh: refresh!.value,
        line,
      });
    }
  }
  return subscriptions;
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/**
 * Reads a lists.yaml (by default `RULES/lists.yaml`). No file means no subscriptions; a
 * file with errors throws RulesLoadError with every FILE:LINE, so a typo never
 * silently drops a list.
 */
export async function readListsConfig(file: string): Promise<ListSubscription[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    const problems = new ProblemList();
    problems.error(displayPath(file), 0, `cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    throw new RulesLoadError(problems.items);
  }
  const problems = new ProblemList();
  const subscriptions = parseListsFile(text, displayPath(file), problems);
  if (problems.errorCount > 0) throw new RulesLoadError(problems.items);
  return subscriptions;
}

/**
 * Every problem of `RULES/lists.yaml` for `lachan rules lint`, including a category
 * without a folder under categories/ (its entries would join nothing).
 */
export async function lintListsFile(rulesDir: string): Promise<RuleProblem[]> {
  const file = path.join(rulesDir, LISTS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    return [
      { file: displayPath(file), line: 0, severity: 'error', message: `cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` },
    ];
  }
  const problems = new ProblemList();
  for (const subscription of parseListsFile(text, displayPath(file), problems)) {
    const folder = await stat(path.join(rulesDir, 'categories', subscription.category)).catch(() => null);
    if (folder === null || !folder.isDirectory()) {
      problems.error(
        displayPath(file),
        subscription.line,
        `list "${subscription.name}": no folder categories/${subscription.category} (create it, even empty, and block the category in a profile)`,
      );
    }
  }
  return problems.items;
}
