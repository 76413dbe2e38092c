import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { forEachRuleLine } from '../rules/lines.js';
import { canonicalRuleHost } from '../policy/hostname.js';
import { describeImport, ImportError, importListSource, LIST_FORMATS, SKIP_REASON_TEXT, type ImportResult, type ListFormat } from '../rules/importers.js';
import { CliError } from './errors.js';
import { Progress } from './progress.js';

interface ImportOptions {
  format: string;
  category: string;
  rules: string;
  json?: boolean;
}

const CATEGORY_NAME = /^[a-z0-9][a-z0-9_-]*$/;

export function registerImport(rules: Command): void {
  rules
    .command('import')
    .description('đưa một danh sách bên ngoài (tệp hosts, danh sách tên miền, adblock, thư mục UT1) vào một nhóm')
    .requiredOption('--format <format>', `một trong ${LIST_FORMATS.join(', ')}`)
    .requiredOption('--category <name>', 'nhóm (thư mục) nhận quy tắc (tạo nếu chưa có)')
    .option('--rules <dir>', 'thư mục quy tắc', './rules')
    .option('--json', 'in kết quả nhập dạng JSON')
    .argument('<src>', 'tệp danh sách, hoặc thư mục nhóm UT1 với --format ut1')
    .action(async (src: string, options: ImportOptions) => {
      if (!(LIST_FORMATS as readonly string[]).includes(options.format)) {
        throw new CliError(`không có --format "${options.format}" (dùng ${LIST_FORMATS.join(', ')})`);
      }
      if (!CATEGORY_NAME.test(options.category)) {
        throw new CliError(`tên nhóm "${options.category}" chỉ gồm chữ thường, chữ số, "-" hoặc "_"`);
      }
      const progress = await Progress.forFile(src, `importing ${path.basename(src)}`);
      let result: ImportResult;
      try {
        result = await importListSource(options.format as ListFormat, src, (bytes: number) => progress.update(bytes));
      } catch (error) {
        if (error instanceof ImportError) throw new CliError(error.message);
        throw error;
      } finally {
        progress.done();
      }
      const folder = path.join(options.rules, 'categories', options.category);
      await mkdir(folder, { recursive: true });
      const header = `# imported from ${path.basename(src)} (--format ${options.format}) on ${new Date().toISOString().slice(0, 10)}`;
      const addedDomains = await mergeInto(path.join(folder, 'domains'), result.domains, header, (rule) => canonicalRuleHost(rule) ?? rule);
      const addedUrls = await mergeInto(path.join(folder, 'urls'), result.urls, header, (rule) => rule);
      report(result, options, folder, addedDomains, addedUrls);
    });
}

/**
 * Appends the entries not already in the file, keeping what is there (curated lines
 * and earlier imports). The file is replaced by rename so a running proxy that
 * reloads on change never reads half a list.
 */
async function mergeInto(file: string, entries: readonly string[], header: string, key: (rule: string) => string): Promise<number> {
  if (entries.length === 0) return 0;
  let existing = '';
  try {
    existing = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const present = new Set<string>();
  forEachRuleLine(existing, (rule) => present.add(key(rule)));
  const fresh = entries.filter((entry) => !present.has(entry));
  if (fresh.length === 0) return 0;
  const prefix = existing === '' || existing.endsWith('\n') ? existing : `${existing}\n`;
  const temporary = `${file}.import-${process.pid}`;
  await writeFile(temporary, `${prefix}${header}\n${fresh.join('\n')}\n`);
  await rename(temporary, file);
  return fresh.length;
}

function report(result: ImportResult, options: ImportOptions, folder: string, addedDomains: number, addedUrls: number): void {
  const { stats } = result;
  const skipped = [...stats.skipped.entries()].map(([reason, { count, examples }]) => ({ reason, count, explanation: SKIP_REASON_TEXT[reason], examples }));
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify({ category: options.category, folder, lines: stats.lines, domains: stats.domains, urls: stats.urls, addedDomains, addedUrls, duplicates: stats.duplicates, skipped, skippedFiles: stats.skippedFiles })}\n`,
    );
    return;
  }
  const out = describeImport(result);
  out.push(`${folder}: thêm ${addedDomains} tên miền, ${addedUrls} quy tắc URL mới (phần còn lại đã có sẵn).`);
  if (result.ut1Usage === 'white') out.push(`Thêm "${options.category}" vào allow_categories của hồ sơ, không phải block_categories.`);
  out.push(`Kiểm tra: lachan rules lint --rules ${options.rules}`);
  process.stdout.write(`${out.join('\n')}\n`);
}
