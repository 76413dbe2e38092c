import { AlignmentType, BorderStyle, Document, Packer, Paragraph, Table, TableCell, TableRow, TextRun, WidthType, type IBorderOptions } from 'docx';
import type { ReportDocument, ReportTable } from './document.js';

/**
 * The report as a Word document (docx), for offices that edit before signing: A4, the
 * decree's margins, Times New Roman (what the decree names and every office PC has),
 * the heading and the signature block in borderless tables as offices lay them out.
 */

const FONT = 'Times New Roman';
/** docx sizes are half-points; page measures are twentieths of a point. */
const pt = (points: number): number => points * 2;
const CM = 567;
const NO_BORDER: IBorderOptions = { style: BorderStyle.NONE, size: 0, color: 'FFFFFF' };
const LINE: IBorderOptions = { style: BorderStyle.SINGLE, size: 4, color: '000000' };
const NO_BORDERS = { top: NO_BORDER, bottom: NO_BORDER, left: NO_BORDER, right: NO_BORDER, insideHorizontal: NO_BORDER, insideVertical: NO_BORDER };
const LINES = { top: LINE, bottom: LINE, left: LINE, right: LINE, insideHorizontal: LINE, insideVertical: LINE };

interface Line {
  readonly text: string;
  readonly size?: number;
  readonly bold?: boolean;
  readonly italics?: boolean;
  readonly align?: (typeof AlignmentType)[keyof typeof AlignmentType];
  readonly indent?: boolean;
  /** A short rule under the line (the heading's underlines). */
  readonly underRule?: boolean;
  readonly after?: number;
}

function line(l: Line): Paragraph {
  return new Paragraph({
    alignment: l.align ?? AlignmentType.JUSTIFIED,
    indent: l.indent === true ? { firstLine: CM } : undefined,
    spacing: { after: l.after ?? 60 },
    children: [
      new TextRun({ text: l.text, font: FONT, size: pt(l.size ?? 14), bold: l.bold, italics: l.italics }),
      ...(l.underRule === true ? [new TextRun({ text: '________', font: FONT, size: pt(8), break: 1 })] : []),
    ],
  });
}

function columns(leftLines: readonly Paragraph[], rightLines: readonly Paragraph[], leftShare: number): Table {
  return new Table({
    width: { size: 100, type: WidthType.PERCENTAGE },
    borders: NO_BORDERS,
    rows: [
      new TableRow({
        children: [
          new TableCell({ width: { size: leftShare, type: WidthType.PERCENTAGE }, borders: NO_BORDERS, children: [...leftLines] }),
          new TableCell({ width: { size: 100 - leftShare, type: WidthType.PERCENTAGE }, borders: NO_BORDERS, children: [...rightLines] }),
        ],
      }),
    ],
  });
}

function dataTable(table: ReportTable): Table {
  const total = table.widths.reduce((a, b) => a + b, 0);
  const cell = (text: string, i: number, header: boolean): TableCell =>
    new TableCell({
      width: { size: Math.round((100 * table.widths[i]!) / total), type: WidthType.PERCENTAGE },
      borders: LINES,
      children: [
        new Paragraph({
          alignment: header ? AlignmentType.CENTER : table.align[i] === 'right' ? AlignmentType.RIGHT : AlignmentType.LEFT,
          children: [new TextRun({ text, font: FONT, size: pt(13), bold: header })],
        }),
      ],
    });
  const rows = table.rows.length === 0 ? [['', 'Không có số liệu.', ...table.header.slice(2).map(() => '')]] : table.rows;
  return new Table({
    width: { size: 100, type: WidthType.PERCENTAGE },
    rows: [
      new TableRow({ tableHeader: true, children: table.header.map((h, i) => cell(h, i, true)) }),
      ...rows.map((row) => new TableRow({ children: row.map((text, i) => cell(text, i, false)) })),
    ],
  });
}

export async function renderReportDocx(report: ReportDocument): Promise<Buffer> {
  const center = AlignmentType.CENTER;
  const heading = columns(
    [
      ...(report.parent === null ? [] : [line({ text: report.parent, size: 13, align: center, after: 0 })]),
      line({ text: report.issuer, size: 13, bold: true, align: center, underRule: true, after: 120 }),
      line({ text: report.number, size: 13, align: center }),
    ],
    [
      line({ text: report.nation, size: 13, bold: true, align: center, after: 0 }),
      line({ text: report.motto, size: 14, bold: true, align: center, underRule: true, after: 120 }),
      line({ text: report.placeAndDate, size: 14, italics: true, align: center }),
    ],
    40,
  );
  const body: (Paragraph | Table)[] = [
    heading,
    line({ text: '', after: 120 }),
    line({ text: report.kind, bold: true, align: center, after: 0 }),
    line({ text: report.subject, bold: true, align: center, after: 240 }),
    line({ text: report.recipient, align: center, after: 240 }),
    ...report.intro.map((text) => line({ text, indent: true })),
  ];
  for (const section of report.sections) {
    body.push(line({ text: section.title, bold: true, align: AlignmentType.LEFT, after: 80 }));
    for (const text of section.paragraphs) body.push(line({ text, indent: true }));
    if (section.table !== null) body.push(dataTable(section.table), line({ text: '', after: 60 }));
  }
  body.push(
    line({ text: '', after: 120 }),
    columns(
      [
        new Paragraph({ children: [new TextRun({ text: 'Nơi nhận:', font: FONT, size: pt(12), bold: true, italics: true })] }),
        ...report.recipients.map((text) => new Paragraph({ children: [new TextRun({ text: `- ${text}`, font: FONT, size: pt(11) })] })),
      ],
      [line({ text: report.signerTitle, bold: true, align: center, after: 1400 }), line({ text: report.signerName ?? '', bold: true, align: center })],
      50,
    ),
  );
  const document = new Document({
    creator: 'Lá chắn',
    title: `${report.kind} ${report.subject}`,
    lastModifiedBy: 'Lá chắn',
    styles: { default: { document: { run: { font: FONT, size: pt(14) } } } },
    sections: [
      {
        properties: {
          page: { size: { width: 11906, height: 16838 }, margin: { top: 2 * CM, bottom: 2 * CM, left: 3 * CM, right: 1.5 * CM } },
        },
        children: body,
      },
    ],
  });
  return Packer.toBuffer(document);
}
