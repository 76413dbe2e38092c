import { createRequire } from 'node:module';
import path from 'node:path';
import PDFDocument from 'pdfkit';
import type { ReportDocument, ReportTable } from './document.js';

/**
 * The report as a PDF, laid out with pdfkit on A4 with the decree's margins (top and
 * bottom 2 cm, left 3 cm, right 1.5 cm). The font is DejaVu Serif, shipped as an npm
 * dependency (dejavu-fonts-ttf) and embedded in the file: it covers every Vietnamese
 * letter, and needs nothing installed on the collector or gateway that runs the report.
 */

const CM = 72 / 2.54;
const MARGINS = { top: 2 * CM, bottom: 2 * CM, left: 3 * CM, right: 1.5 * CM };
const BODY = 13;
const SMALL = 12;
const CELL_PAD = 3;

const fontDir = path.join(path.dirname(createRequire(import.meta.url).resolve('dejavu-fonts-ttf/package.json')), 'ttf');
const FONTS = {
  regular: path.join(fontDir, 'DejaVuSerifCondensed.ttf'),
  bold: path.join(fontDir, 'DejaVuSerifCondensed-Bold.ttf'),
  italic: path.join(fontDir, 'DejaVuSerifCondensed-Italic.ttf'),
  boldItalic: path.join(fontDir, 'DejaVuSerifCondensed-BoldItalic.ttf'),
} as const;

type Face = keyof typeof FONTS;

export function renderReportPdf(report: ReportDocument, created: Date = new Date()): Promise<Buffer> {
  const doc = new PDFDocument({
    size: 'A4',
    margins: MARGINS,
    lang: 'vi',
    bufferPages: true,
    info: { Title: `${report.kind} ${report.subject}`, Author: report.issuer, Creator: 'Lá chắn', CreationDate: created },
  });
  for (const [name, file] of Object.entries(FONTS)) doc.registerFont(name, file);
  const chunks: Buffer[] = [];
  doc.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });

  const left = MARGINS.left;
  const width = doc.page.width - MARGINS.left - MARGINS.right;
  const bottom = (): number => doc.page.height - MARGINS.bottom;
  const write = (text: string, face: Face, size: number, x: number, w: number, options: PDFKit.Mixins.TextOptions = {}): void => {
    doc
      .font(face)
      .fontSize(size)
      .text(text, x, doc.y, { width: w, ...options });
  };
  const rule = (x: number, w: number, fraction: number): void => {
    const y = doc.y + 2.5;
    const span = w * fraction;
    doc
      .moveTo(x + (w - span) / 2, y)
      .lineTo(x + (w + span) / 2, y)
      .lineWidth(0.6)
      .stroke();
    doc.y = y + 5;
  };

  // The heading: the issuer on the left, the national heading on the right.
  const top = doc.y;
  const leftWidth = width * 0.4;
  const rightX = left + leftWidth;
  const rightWidth = width - leftWidth;
  if (report.parent !== null) write(report.parent, 'regular', SMALL, left, leftWidth, { align: 'center' });
  write(report.issuer, 'bold', SMALL, left, leftWidth, { align: 'center' });
  rule(left, leftWidth, 0.35);
  write(report.number, 'regular', BODY, left, leftWidth, { align: 'center' });
  const leftEnd = doc.y;
  doc.y = top;
  write(report.nation, 'bold', SMALL, rightX, rightWidth, { align: 'center' });
  write(report.motto, 'bold', BODY, rightX, rightWidth, { align: 'center' });
  rule(rightX, rightWidth, 0.55);
  doc.moveDown(0.3);
  write(report.placeAndDate, 'italic', BODY, rightX, rightWidth, { align: 'center' });
  doc.y = Math.max(doc.y, leftEnd) + 18;

  write(report.kind, 'bold', BODY + 1, left, width, { align: 'center' });
  write(report.subject, 'bold', BODY, left, width, { align: 'center' });
  doc.moveDown(0.6);
  write(report.recipient, 'regular', BODY, left, width, { align: 'center' });
  doc.moveDown(0.6);
  for (const paragraph of report.intro) write(paragraph, 'regular', BODY, left, width, { align: 'justify', indent: CM, paragraphGap: 3 });

  for (const section of report.sections) {
    if (doc.y + 60 > bottom()) doc.addPage();
    doc.moveDown(0.4);
    write(section.title, 'bold', BODY, left, width);
    for (const paragraph of section.paragraphs) write(paragraph, 'regular', BODY, left, width, { align: 'justify', indent: CM, paragraphGap: 3 });
    if (section.table !== null) drawTable(doc, section.table, left, width, bottom);
  }

  // "Nơi nhận" on the left, the signature block on the right, kept together.
  doc.moveDown(1);
  if (doc.y + 130 > bottom()) doc.addPage();
  const endTop = doc.y;
  const half = width / 2;
  write('Nơi nhận:', 'boldItalic', SMALL, left, half);
  for (const line of report.recipients) write(`- ${line}`, 'regular', 11, left, half);
  const endLeft = doc.y;
  doc.y = endTop;
  write(report.signerTitle, 'bold', BODY, left + half, half, { align: 'center' });
  doc.y += 70;
  if (report.signerName !== null) write(report.signerName, 'bold', BODY, left + half, half, { align: 'center' });
  doc.y = Math.max(doc.y, endLeft);

  // Page numbers from the second page on, centred in the top margin.
  const pages = doc.bufferedPageRange();
  for (let i = 1; i < pages.count; i++) {
    doc.switchToPage(pages.start + i);
    doc
      .font('regular')
      .fontSize(BODY)
      .text(String(i + 1), left, MARGINS.top / 2, { width, align: 'center', lineBreak: false });
  }
  doc.end();
  return done;
}

function drawTable(doc: PDFKit.PDFDocument, table: ReportTable, left: number, width: number, bottom: () => number): void {
  const total = table.widths.reduce((a, b) => a + b, 0);
  const widths = table.widths.map((w) => (width * w) / total);
  const rowHeight = (cells: readonly string[], face: Face): number => {
    doc.font(face).fontSize(SMALL);
    return Math.max(...cells.map((cell, i) => doc.heightOfString(cell, { width: widths[i]! - 2 * CELL_PAD }))) + 2 * CELL_PAD;
  };
  const drawRow = (cells: readonly string[], face: Face, header: boolean): void => {
    const height = rowHeight(cells, face);
    const y = doc.y;
    let x = left;
    cells.forEach((cell, i) => {
      const w = widths[i]!;
      doc.lineWidth(0.5).rect(x, y, w, height).stroke();
      doc
        .font(face)
        .fontSize(SMALL)
        .text(cell, x + CELL_PAD, y + CELL_PAD, { width: w - 2 * CELL_PAD, align: header ? 'center' : (table.align[i] ?? 'left') });
      x += w;
    });
    doc.x = left;
    doc.y = y + height;
  };
  doc.moveDown(0.2);
  const rows: readonly (readonly string[])[] = table.rows.length === 0 ? [['', 'Không có số liệu.', ...table.header.slice(2).map(() => '')]] : table.rows;
  if (doc.y + rowHeight(table.header, 'bold') + rowHeight(rows[0]!, 'regular') > bottom()) doc.addPage();
  drawRow(table.header, 'bold', true);
  for (const row of rows) {
    if (doc.y + rowHeight(row, 'regular') > bottom()) {
      doc.addPage();
      drawRow(table.header, 'bold', true);
    }
    drawRow(row, 'regular', false);
  }
  doc.moveDown(0.3);
}
