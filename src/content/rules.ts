/**
 * The content rules of a loaded policy (docs/contract.md §8): every category's
 * weighted phrases in one compiled PhraseSet, and each profile's content_limit.
 * Kept beside the Policy in a WeakMap, like the organisation, because the decision
 * engine has no use for them: a reload builds a new Policy and its content rules
 * with it, and the old pair is collected together.
 */
import { readFile } from 'node:fs/promises';
import type { Policy } from '../policy/engine.js';
import { PhraseSetBuilder, type PhraseSet } from '../policy/phrases.js';
import { forEachRuleLine } from '../rules/lines.js';
import type { ProblemList } from '../rules/problems.js';

export interface ContentRules {
  readonly phrases: PhraseSet;
  /** Profile id → content_limit; a profile absent here is not inspected. */
  readonly limits: ReadonlyMap<string, number>;
}

const CONTENT_RULES = new WeakMap<Policy, ContentRules>();
const EMPTY_RULES: ContentRules = { phrases: new PhraseSetBuilder().build(), limits: new Map() };

export function attachContentRules(policy: Policy, rules: ContentRules): void {
  CONTENT_RULES.set(policy, rules);
}

/** The content rules loaded with `policy`; none (nothing inspected) for a policy built without the loader. */
export function contentRulesOf(policy: Policy): ContentRules {
  return CONTENT_RULES.get(policy) ?? EMPTY_RULES;
}

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
