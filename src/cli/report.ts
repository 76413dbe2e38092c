import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { buildReportDocument } from '../report/document.js';
import { formatOfFile, isReportFormat, renderReport, REPORT_FORMATS, type ReportFormat } from '../report/render.js';
import { buildYearlyReport } from '../report/yearly.js';
import { CliError } from './errors.js';
import { explainOrganisation, withStore } from './central.js';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('the yearly report of blocked visits for the office to send (due before 15/11), from the collector\'s data')
    .requiredOption('--year <yyyy>', 'the reporting year (the period ending in that year, see organisation.yaml report.period_start)')
    .option('--out <file>', 'write the report here (format from the extension: .pdf, .docx, .html, otherwise Markdown) instead of stdout')
    .option('--format <format>', `${Object.keys(REPORT_FORMATS).join(', ')} (default: from --out, Markdown on stdout)`)
    .option('--number <n>', 'the document number the office gives it (default: left blank to write in)')
    .option('--data <dir>', 'collector data folder (its organisation.yaml names the office, place and signer)', './var/central')
    .action(async (options: { year: string; out?: string; format?: string; number?: string; data: string }) => {
      const year = Number(options.year);
      if (!/^\d{4}$/.test(options.year) || year < 2020 || year > 2100) throw new CliError(`--year must be a year such as 2026, not "${options.year}"`);
      if (options.format !== undefined && !isReportFormat(options.format)) throw new CliError(`--format must be one of ${Object.keys(REPORT_FORMATS).join(', ')}, not "${options.format}"`);
      const format: ReportFormat = (options.format as ReportFormat | undefined) ?? (options.out === undefined ? 'md' : formatOfFile(options.out));
      const organisation = explainOrganisation(options.data);
      const body = await withStore(options.data, async (store) =>
        renderReport(buildReportDocument(await buildYearlyReport(store, year, organisation), organisation, { number: options.number }), format),
      );
      if (options.out === undefined) process.stdout.write(body);
      else {
        await writeFile(options.out, body);
        process.stderr.write(`wrote ${options.out}\n`);
      }
    });
}
