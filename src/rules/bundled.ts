/**
 * The bundled layer of the rules folder: public lists shipped with lachan in
 * rules/bundled/, next to the school's own hand-written files in rules/categories/.
 *
 * rules/bundled/lists names them, one a line: `FILE CATEGORY`. FILE is a name in
 * that folder ending in `.domains` or `.urls` (the formats of a category's files),
 * optionally followed by `.gz`; its rules join CATEGORY wherever a profile blocks
 * it, and decisions name the file and its line (counted in the uncompressed text).
 * No `lists` file means no bundled layer.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { forEachRuleLine } from './lines.js';
import type { ProblemList } from './problems.js';

export const BUNDLED_FOLDER = 'bundled';
export const BUNDLED_MANIFEST = 'lists';

const gunzipAsync = promisify(gunzip);
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*\.(domains|urls)(\.gz)?$/;

export interface BundledList {
  /** Absolute (or rules-relative) path of the list file. */
  readonly file: string;
  readonly kind: 'domains' | 'urls';
  readonly category: string;
}

/**
 * Reads rules/bundled/lists. Every problem is reported against its line; lines
 * naming a category without a folder are refused, since the list would silently
 * never apply.
 */
export async function readBundledManifest(
  rulesDir: string,
  categories: ReadonlySet<string>,
  displayName: (file: string) => string,
  problems: ProblemList,
): Promise<BundledList[]> {
  const folder = path.join(rulesDir, BUNDLED_FOLDER);
  const manifest = path.join(folder, BUNDLED_MANIFEST);
  const shown = displayName(manifest);
  let text: string;
  try {
    text = await readFile(manifest, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      problems.error(shown, 0, `cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    return [];
  }
  const lists: BundledList[] = [];
  const seen = new Map<string, number>();
  forEachRuleLine(text, (rule, line) => {
    const fields = rule.split(/\s+/);
    const [name, category] = fields;
    const match = FILE_NAME.exec(name!);
    if (fields.length !== 2 || match === null) {
      problems.error(shown, line, `expected "FILE CATEGORY" with FILE ending in .domains or .urls (optionally .gz), not "${rule}"`);
      return;
    }
    if (!categories.has(category!)) {
      problems.error(shown, line, `category "${category}" has no folder categories/${category}: create it or delete this line`);
      return;
    }
    const first = seen.get(name!);
    if (first !== undefined) {
      problems.warning(shown, line, `${name} is listed again (first on line ${first}); read once`);
      return;
    }
    seen.set(name!, line);
    lists.push({ file: path.join(folder, name!), kind: match[1] as 'domains' | 'urls', category: category! });
  });
  return lists;
}

/** The text of a bundled list, decompressed when its name ends in `.gz`. */
export async function readBundledText(file: string): Promise<string> {
  const bytes = await readFile(file);
  return file.endsWith('.gz') ? (await gunzipAsync(bytes)).toString('utf8') : bytes.toString('utf8');
}
