/** A category's `phrases` file (docs/contract.md §8), read into the phrase set being built. */
import { readFile } from 'node:fs/promises';
import type { PhraseSetBuilder } from '../policy/phrases.js';
import { forEachRuleLine } from './lines.js';
import type { ProblemList } from './problems.js';

/**
 * Reads one category's `phrases` file (absent is fine) into `phrases`. A broken line
 * is an error at FILE:LINE, as in every rules file, so a reload with it is refused.
 */
export async function addPhrasesFile(
  file: string,
  displayName: string,
  categoryId: number,
  fileNames: string[],
  phrases: PhraseSetBuilder,
  problems: ProblemList,
): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    problems.error(displayName, 0, `cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    return;
  }
  const fileId = fileNames.push(displayName) - 1;
  forEachRuleLine(text, (rule, line) => {
    const error = phrases.addLine(rule, categoryId, fileId, line);
    if (error !== null) problems.error(displayName, line, error);
  });
}
