import type { ReportDocument, ReportTable } from './document.js';
import { renderReportHtml } from './html.js';

/** The formats the yearly report is given in, by file extension. */
export const REPORT_FORMATS = {
  pdf: 'application/pdf',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  html: 'text/html; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
} as const;

export type ReportFormat = keyof typeof REPORT_FORMATS;

export function isReportFormat(value: string): value is ReportFormat {
  return Object.hasOwn(REPORT_FORMATS, value);
}

/** The format a file name asks for; Markdown for anything else (a text file, or stdout). */
export function formatOfFile(file: string): ReportFormat {
  const extension = /\.([a-z]+)$/i.exec(file)?.[1]?.toLowerCase() ?? '';
  if (extension === 'htm') return 'html';
  return isReportFormat(extension) ? extension : 'md';
}

/**
 * pdfkit and docx are loaded on first use: every `lachan` command and the collector's
 * start would otherwise pay for parsing them.
 */
export async function renderReport(doc: ReportDocument, format: ReportFormat): Promise<Buffer> {
  if (format === 'pdf') return (await import('./pdf.js')).renderReportPdf(doc);
  if (format === 'docx') return (await import('./docx.js')).renderReportDocx(doc);
  if (format === 'html') return Buffer.from(renderReportHtml(doc));
  return Buffer.from(renderReportMarkdown(doc));
}

function markdownTable(table: ReportTable): string {
  const line = (cells: readonly string[]): string => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  const rule = `| ${table.align.map((a) => (a === 'right' ? '---:' : '---')).join(' | ')} |`;
  return [line(table.header), rule, ...table.rows.map(line)].join('\n');
}

/** Plain text for a terminal or a paste: the same content, without the page layout. */
function renderReportMarkdown(doc: ReportDocument): string {
  const parts = [
    ...(doc.parent === null ? [] : [doc.parent]),
    `**${doc.issuer}** — ${doc.number}`,
    '',
    `**${doc.nation}**  `,
    `**${doc.motto}**`,
    '',
    `*${doc.placeAndDate}*`,
    '',
    `# ${doc.kind}: ${doc.subject}`,
    '',
    doc.recipient,
    '',
    ...doc.intro.flatMap((p) => [p, '']),
  ];
  for (const section of doc.sections) {
    parts.push(`## ${section.title}`, '', ...section.paragraphs.flatMap((p) => [p, '']));
    if (section.table !== null) parts.push(section.table.rows.length === 0 ? 'Không có số liệu.' : markdownTable(section.table), '');
  }
  parts.push('**Nơi nhận:**', ...doc.recipients.map((r) => `- ${r}`), '', `**${doc.signerTitle}**`, '', doc.signerName ?? '', '');
  return parts.join('\n');
}
