import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { buildYearlyReport, renderYearlyReport } from '../report/yearly.js';
import { CliError } from './errors.js';
import { withStore } from './central.js';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('the yearly report of blocked access for Phòng VH-TT (due before 15/11), from the collector\'s data')
    .requiredOption('--year <yyyy>', 'calendar year to report')
    .option('--out <file>', 'write the report (Markdown) here instead of stdout')
    .option('--data <dir>', 'collector data folder', './var/central')
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
