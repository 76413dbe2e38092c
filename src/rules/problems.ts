/** One problem found in the rules folder, reported as `FILE:LINE: message`. */
export interface RuleProblem {
  readonly file: string;
  readonly line: number;
  readonly severity: 'error' | 'warning';
  readonly message: string;
}

export function formatProblem(problem: RuleProblem): string {
  const prefix = problem.severity === 'warning' ? 'warning: ' : '';
  return `${problem.file}:${problem.line}: ${prefix}${problem.message}`;
}

/**
 * A load that found errors. Reload keeps the policy already serving when this is
 * thrown: a load yields a complete policy or this error, never half a policy.
 */
export class RulesLoadError extends Error {
  readonly code = 'LACHAN_RULES_INVALID';
  readonly problems: readonly RuleProblem[];
  constructor(problems: readonly RuleProblem[]) {
    const errors = problems.filter((p) => p.severity === 'error');
    const first = errors.slice(0, 5).map(formatProblem).join('\n');
    const more = errors.length > 5 ? `\n… and ${errors.length - 5} more` : '';
    super(`rules refused (${errors.length} error${errors.length === 1 ? '' : 's'}):\n${first}${more}`);
    this.name = 'RulesLoadError';
    this.problems = problems;
  }
}

/** Collects problems while a load or lint walks the files. */
export class ProblemList {
  readonly items: RuleProblem[] = [];
  error(file: string, line: number, message: string): void {
    this.items.push({ file, line, severity: 'error', message });
  }
  warning(file: string, line: number, message: string): void {
    this.items.push({ file, line, severity: 'warning', message });
  }
  get errorCount(): number {
    let count = 0;
    for (const item of this.items) if (item.severity === 'error') count++;
    return count;
  }
}
