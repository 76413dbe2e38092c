import type { Command } from 'commander';
import { formatProblem } from '../rules/problems.js';
import { EXIT_CHECK_FAILED } from './errors.js';
import { registerImport } from './rules-import.js';
import { phraseTableNote } from './phrase-table.js';

export function registerRules(program: Command): void {
  const rules = program.command('rules').description('kiểm tra và nhập quy tắc lọc');

  rules
    .command('lint')
    .description('báo mọi lỗi trong thư mục quy tắc dạng TỆP:DÒNG: lỗi; thoát mã 1 khi có lỗi')
    .option('--rules <dir>', 'thư mục quy tắc', './rules')
    .action(async (options: { rules: string }) => {
      const [{ loadRules }, { lintListsFile }, { lintSafeguardingPhrases }] = await Promise.all([
        import('../rules/loader.js'),
        import('../lists/config.js'),
        import('../safeguarding/phrases.js'),
      ]);
      const result = await loadRules(options.rules, { checkAll: true, cacheSize: 0 });
      const problems = [...result.problems, ...(await lintListsFile(options.rules)), ...(await lintSafeguardingPhrases(options.rules))];
      for (const problem of problems) process.stdout.write(`${formatProblem(problem)}\n`);
      const errors = problems.filter((p) => p.severity === 'error').length;
      const warnings = problems.length - errors;
      const note = result.policy === null ? null : phraseTableNote(result.policy);
      if (note !== null) process.stderr.write(`${note}\n`);
      const { domains, urls, keywords, categories, brands = 0 } = result.stats;
      process.stderr.write(
        `${errors} lỗi, ${warnings} cảnh báo; ` +
          `${categories} nhóm, ${domains} quy tắc tên miền, ${urls} quy tắc URL và ${keywords} từ khoá` +
          `${brands > 0 ? `, ${brands} thương hiệu (viết tay và suy ra)` : ''}\n`,
      );
      if (errors > 0) process.exitCode = EXIT_CHECK_FAILED;
    });

  registerImport(rules);
}
