/**
 * The shipped high-severity phrases (rules/safeguarding/, one file per alert category,
 * `<severity> <phrase>` a line), compiled once at load into one automaton of the
 * keyword family (src/policy/phrases.ts: whole words, any case, with or without
 * diacritics per word), then matched against search terms and page titles.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PhraseSetBuilder, type PhraseSet } from '../policy/phrases.js';
import { ProblemList, RulesLoadError, type RuleProblem } from '../rules/problems.js';
import { forEachRuleLine } from '../rules/lines.js';
import { ALERT_CATEGORIES, SEVERITIES, type AlertCategory, type SeverityRank } from './types.js';

export const SAFEGUARDING_DIR = 'safeguarding';
const LINE = /^(low|medium|high|critical)\s+(\S.*)$/u;

export interface PhraseMatch {
  readonly category: AlertCategory;
  readonly severity: SeverityRank;
  /** The phrase as written in the file. */
  readonly phrase: string;
}

export class SafeguardingPhrases {
  constructor(
    private readonly set: PhraseSet,
    /** Files read (for the log line at load). */
    readonly files: readonly string[],
  ) {}

  get size(): number {
    return this.set.size;
  }

  /** The most severe phrase found in `text` (on a tie, the one found first), or null. */
  match(text: string): PhraseMatch | null {
    if (this.set.size === 0) return null;
    const scanner = this.set.scanner(ALERT_CATEGORIES.length, true);
    scanner.append(text);
    scanner.finish();
    let best = -1;
    for (const entry of scanner.found) if (best < 0 || this.set.weights[entry]! > this.set.weights[best]!) best = entry;
    if (best < 0) return null;
    const automaton = this.set.automaton;
    return {
      category: ALERT_CATEGORIES[automaton.categoryOf(best)]!,
      severity: this.set.weights[best] as SeverityRank,
      phrase: automaton.phraseOf(best),
    };
  }
}

export const NO_PHRASES = new SafeguardingPhrases(new PhraseSetBuilder().build(), []);

/** What `lachan rules lint` says of the phrase files: their problems, FILE:LINE each. */
export async function lintSafeguardingPhrases(rulesDir: string): Promise<readonly RuleProblem[]> {
  try {
    await loadSafeguardingPhrases(rulesDir);
    return [];
  } catch (error) {
    if (error instanceof RulesLoadError) return error.problems;
    throw error;
  }
}

/**
 * Reads `<rulesDir>/safeguarding/<category>` for each alert category (a missing file or
 * folder is no phrases). Throws RulesLoadError with FILE:LINE for any broken line, so
 * a reload with it is refused and the phrases in force keep serving.
 */
export async function loadSafeguardingPhrases(rulesDir: string): Promise<SafeguardingPhrases> {
  const builder = new PhraseSetBuilder();
  const problems = new ProblemList();
  const files: string[] = [];
  for (const [categoryId, category] of ALERT_CATEGORIES.entries()) {
    const display = `${SAFEGUARDING_DIR}/${category}`;
    let text: string;
    try {
      text = await readFile(path.join(rulesDir, SAFEGUARDING_DIR, category), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      problems.error(display, 0, `cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      continue;
    }
    const fileId = files.push(display) - 1;
    forEachRuleLine(text, (rule, line) => {
      const parsed = LINE.exec(rule);
      if (parsed === null) return problems.error(display, line, `expected "<${SEVERITIES.join('|')}> <phrase>", e.g. "high cách tự tử"`);
      const severity = SEVERITIES.indexOf(parsed[1] as (typeof SEVERITIES)[number]) + 1;
      // The phrase set keeps an integer per phrase: here the severity's rank.
      const error = builder.addLine(`${severity} ${parsed[2]!.trim()}`, categoryId, fileId, line);
      if (error !== null) problems.error(display, line, error);
    });
  }
  if (problems.errorCount > 0) throw new RulesLoadError(problems.items);
  return new SafeguardingPhrases(builder.build(), files);
}
