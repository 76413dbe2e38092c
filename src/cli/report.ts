import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { buildReportDocument } from '../report/document.js';
import { formatOfFile, isReportFormat, renderReport, REPORT_FORMATS, type ReportFormat } from '../report/render.js';
import { CliError } from './errors.js';
import { explainOrganisation, withStore } from './central.js';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('báo cáo năm về lượt truy cập bị chặn để cơ quan gửi đi (trước 15/11), từ dữ liệu máy chủ huyện')
    .requiredOption('--year <yyyy>', 'năm báo cáo (kỳ báo cáo kết thúc trong năm đó, xem report.period_start trong organisation.yaml)')
    .option('--out <file>', 'ghi báo cáo vào tệp này thay vì stdout (định dạng theo đuôi tệp: .pdf, .docx, .html, còn lại là Markdown)')
    .option('--format <format>', `${Object.keys(REPORT_FORMATS).join(', ')} (mặc định: theo --out, Markdown ra stdout)`)
    .option('--number <n>', 'số văn bản do cơ quan cấp (mặc định: để trống để điền tay)')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ huyện (organisation.yaml trong đó ghi cơ quan, địa danh, người ký)', './var/central')
    .option('--database <url>', 'cơ sở dữ liệu PostgreSQL của máy chủ huyện (postgres://…); không có: SQLite trong --data')
    .action(async (options: { year: string; out?: string; format?: string; number?: string; data: string; database?: string }) => {
      const year = Number(options.year);
      if (!/^\d{4}$/.test(options.year) || year < 2020 || year > 2100) throw new CliError(`--year phải là một năm, ví dụ 2026, không phải "${options.year}"`);
      if (options.format !== undefined && !isReportFormat(options.format))
        throw new CliError(`--format phải là một trong ${Object.keys(REPORT_FORMATS).join(', ')}, không phải "${options.format}"`);
      const format: ReportFormat = (options.format as ReportFormat | undefined) ?? (options.out === undefined ? 'md' : formatOfFile(options.out));
      const organisation = await explainOrganisation(options.data);
      const { buildYearlyReport } = await import('../report/yearly.js');
      const body = await withStore(options, async (store) =>
        renderReport(buildReportDocument(await buildYearlyReport(store, year, organisation), organisation, { number: options.number }), format),
      );
      if (options.out === undefined) process.stdout.write(body);
      else {
        await writeFile(options.out, body);
        process.stderr.write(`đã ghi ${options.out}\n`);
      }
    });
}
