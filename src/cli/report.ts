import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { buildYearlyReport, renderYearlyReport } from '../report/yearly.js';
import { CliError } from './errors.js';
import { withStore } from './central.js';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('báo cáo năm về truy cập bị chặn gửi Phòng VH-TT (trước 15/11), từ dữ liệu máy chủ huyện')
    .requiredOption('--year <yyyy>', 'năm cần báo cáo')
    .option('--out <file>', 'ghi báo cáo (Markdown) vào tệp này thay vì stdout')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ huyện', './var/central')
    .action(async (options: { year: string; out?: string; data: string }) => {
      const year = Number(options.year);
      if (!/^\d{4}$/.test(options.year) || year < 2020 || year > 2100) throw new CliError(`--year phải là một năm, ví dụ 2026, không phải "${options.year}"`);
      const text = await withStore(options.data, async (store) => renderYearlyReport(await buildYearlyReport(store, year)));
      if (options.out === undefined) process.stdout.write(text);
      else {
        await writeFile(options.out, text);
        process.stderr.write(`đã ghi ${options.out}\n`);
      }
    });
}
