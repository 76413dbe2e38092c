import type { Command } from 'commander';
import { loadRules } from '../rules/loader.js';
import { formatProblem } from '../rules/problems.js';
import { EXIT_CHECK_FAILED } from './errors.js';
import { registerImport } from './rules-import.js';
import { lintListsFile } from '../lists/config.js';

export function registerRules(program: Command): void {
  const rules = program.command('rules').description('check and import filter rules');

  rules
    .command('lint')
    .description('report every problem in the rules folder as FILE:LINE: message; exit 1 on any error')
    .option('--rules <dir>', 'rules folder', './rules')
    .action(async (options: { rules: string }) => {
      const result = await loadRules(options.rules, { checkAll: true, cacheSize: 0 });
      const problems = [...result.problems, ...(await lintListsFile(options.rules))];
      for (const problem of problems) process.stdout.write(`${formatProblem(problem)}\n`);
      const errors = problems.filter((p) => p.severity === 'error').length;
      const warnings = problems.length - errors;
      const { domains, urls, keywords, categories, brands = 0 } = result.stats;
      process.stderr.write(
        `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}; ` +
          `${categories} categories, ${domains} domain, ${urls} URL and ${keywords} keyword rules` +
          `${brands > 0 ? `, ${brands} brands (written and derived)` : ''}\n`,
      );
      if (errors > 0) process.exitCode = EXIT_CHECK_FAILED;
    });

  registerImport(rules);
}
