import type { Organisation } from '../rules/organisation.js';
import { ALERT_CATEGORIES, ALERT_CATEGORY_LABELS, ALERT_SEVERITIES, SEVERITY_LABELS } from '../central/alerts.js';
import { categoryLabel } from '../util/labels.js';
import type { YearlyReport } from './yearly.js';

/**
 * The yearly report as an administrative document in the form of Nghị định
 * 30/2020/NĐ-CP (the government's rules for official documents): the issuing body and
 * the national heading side by side, the number and the place and date, the title,
 * "Kính gửi", the body, then "Nơi nhận" beside the signature block. One model; the
 * HTML, PDF and DOCX renderers only lay it out.
 */

export type Align = 'left' | 'right';

export interface ReportTable {
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
  readonly align: readonly Align[];
  /** Relative column widths. */
  readonly widths: readonly number[];
}

export interface ReportSection {
  readonly title: string;
  readonly paragraphs: readonly string[];
  readonly table: ReportTable | null;
}

export interface ReportDocument {
  /** Left heading: the body above the issuer (may be absent) and the issuer, both upper case. */
  readonly parent: string | null;
  readonly issuer: string;
  /** "Số: 12/BC-SGDĐT", or blank (no-break) spaces for the clerk to write the number in. */
  readonly number: string;
  readonly nation: string;
  readonly motto: string;
  /** "Lào Cai, ngày 04 tháng 12 năm 2026" */
  readonly placeAndDate: string;
  readonly kind: string;
  readonly subject: string;
  readonly recipient: string;
  readonly intro: readonly string[];
  readonly sections: readonly ReportSection[];
  readonly recipients: readonly string[];
  readonly signerTitle: string;
  readonly signerName: string | null;
  /** Name of the file without extension: bao-cao-2026. */
  readonly fileStem: string;
}

export const NATION = 'CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM';
export const MOTTO = 'Độc lập - Tự do - Hạnh phúc';

/** Vietnamese digit grouping: 1.234.567 (a dot between thousands). */
export function vnNumber(value: number): string {
  return Math.round(value)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, '.');
}

/** A share with a decimal comma: "12,5%". */
export function vnPercent(part: number, whole: number): string {
  if (whole === 0) return '0%';
  return `${((100 * part) / whole).toFixed(1).replace('.', ',')}%`;
}

/** ISO day → "dd/mm/yyyy". */
export function vnDay(iso: string): string {
  return `${iso.slice(8, 10)}/${iso.slice(5, 7)}/${iso.slice(0, 4)}`;
}

/**
 * The date line of a document: days below 10 and the months January and February
 * take a leading zero, as the decree asks ("ngày 05 tháng 02 năm 2026").
 */
export function vnDateLine(place: string, date: Date): string {
  // The document is dated in Vietnam time (UTC+7).
  const local = new Date(date.getTime() + 7 * 3_600_000);
  const day = local.getUTCDate();
  const month = local.getUTCMonth() + 1;
  return `${place}, ngày ${String(day).padStart(2, '0')} tháng ${month < 3 ? `0${month}` : month} năm ${local.getUTCFullYear()}`;
}

export interface DocumentOptions {
  /** The number the office's clerk gives it; absent leaves the space to write it. */
  readonly number?: string;
  readonly date?: Date;
}

function categoryName(category: string | null): string {
  return category === null ? 'Quy định chung (địa chỉ IP, cổng kết nối)' : categoryLabel(category);
}

/** Alerts by category (rows) and severity (columns): counts of alerts, never of children. */
function alertSection(report: YearlyReport): ReportSection {
  const count = (category: string, severity: string) => report.alerts.find((a) => a.category === category && a.severity === severity)?.count ?? 0;
  const total = report.alerts.reduce((sum, a) => sum + a.count, 0);
  return {
    title: '6. Cảnh báo an toàn',
    paragraphs: [
      `Số cảnh báo an toàn (tự hại, dụ dỗ, bắt nạt, đe doạ bạo lực) hệ thống gửi tới cán bộ tư vấn học đường: ${vnNumber(total)}. Mỗi cảnh báo gộp các tín hiệu của một thiết bị; số liệu đếm cảnh báo, không đếm và không định danh học sinh.`,
    ],
    table: {
      header: ['Nhóm', ...ALERT_SEVERITIES.map((s) => `Mức ${SEVERITY_LABELS[s]}`), 'Tổng'],
      rows: ALERT_CATEGORIES.map((c) => [
        ALERT_CATEGORY_LABELS[c],
        ...ALERT_SEVERITIES.map((s) => vnNumber(count(c, s))),
        vnNumber(ALERT_SEVERITIES.reduce((sum, s) => sum + count(c, s), 0)),
      ]),
      align: ['left', 'right', 'right', 'right', 'right', 'right'],
      widths: [4, 2, 2, 2, 2, 2],
    },
  };
}

export function buildReportDocument(report: YearlyReport, organisation: Organisation, options: DocumentOptions = {}): ReportDocument {
  const { office } = organisation;
  const total = report.total;
  const period = `từ ngày ${vnDay(report.fromDay)} đến ngày ${vnDay(report.toDay)}`;
  const share = (count: number): string => vnPercent(count, total);
  const numberText =
    options.number === undefined || options.number.trim() === ''
      ? `Số:${'\u00a0'.repeat(8)}/BC-${office.abbreviation}`
      : `Số: ${options.number.trim()}/BC-${office.abbreviation}`;
  /** A numbered table of counts with each one's share of the total. */
  const counts = (title: string, label: string, rows: readonly { name: string; count: number }[]): ReportSection => ({
    title,
    paragraphs: [],
    table: {
      header: ['STT', label, 'Số lượt', 'Tỷ lệ'],
      rows: rows.map((row, i) => [String(i + 1), row.name, vnNumber(row.count), share(row.count)]),
      align: ['right', 'left', 'right', 'right'],
      widths: [1, 6, 2, 2],
    },
  });
  const sections: ReportSection[] = [
    counts(
      '1. Số lượt truy cập bị chặn theo nhóm nội dung',
      'Nhóm nội dung',
      report.byCategory.map((r) => ({ name: categoryName(r.category), count: r.count })),
    ),
    counts('2. Theo cấp học', 'Cấp học', report.byProfile),
    counts(
      '3. Theo tháng',
      'Tháng',
      report.byMonth.map((r) => ({ name: `${r.month.slice(5, 7)}/${r.month.slice(0, 4)}`, count: r.count })),
    ),
    counts(
      '4. Theo trường',
      'Trường',
      report.bySchool.map((r) => ({ name: r.name ?? r.school, count: r.count })),
    ),
    {
      title: '5. Các trang bị chặn nhiều nhất',
      paragraphs:
        report.topHostsRange === null || (report.topHostsRange.fromDay === report.fromDay && report.topHostsRange.toDay === report.toDay)
          ? []
          : [`Mục này tính theo các tháng trọn vẹn ${`từ ngày ${vnDay(report.topHostsRange.fromDay)} đến ngày ${vnDay(report.topHostsRange.toDay)}`}.`],
      table: {
        header: ['STT', 'Trang', 'Nhóm nội dung', 'Số lượt'],
        rows: report.topHosts.map((row, i) => [String(i + 1), row.host, categoryName(row.category), vnNumber(row.count)]),
        align: ['right', 'left', 'left', 'right'],
        widths: [1, 5, 4, 2],
      },
    },
    alertSection(report),
    {
      title: '7. Hỗ trợ trẻ em',
      paragraphs: [
        `Trang thông báo chặn của hệ thống hướng dẫn học sinh gọi Tổng đài quốc gia bảo vệ trẻ em 111 và ${organisation.hotline.label} ${organisation.hotline.display} (miễn phí).`,
      ],
      table: null,
    },
  ];
  const pending = report.pending > 0 ? [`Lưu ý: ${vnNumber(report.pending)} lượt vừa nhận chưa được cộng vào số liệu khi lập báo cáo.`] : [];
  return {
    parent: office.parent === null ? null : office.parent.toLocaleUpperCase('vi'),
    issuer: office.name.toLocaleUpperCase('vi'),
    number: numberText,
    nation: NATION,
    motto: MOTTO,
    placeAndDate: vnDateLine(office.place, options.date ?? new Date()),
    kind: 'BÁO CÁO',
    subject: `Kết quả lọc nội dung có hại cho trẻ em trên mạng các trường học năm ${report.year}`,
    recipient: `Kính gửi: ${organisation.report.recipient}.`,
    intro: [
      `${office.name} báo cáo kết quả lọc nội dung có hại cho trẻ em trên mạng của ${vnNumber(report.schools)} trường học, ${period}, như sau:`,
      `Tổng số lượt truy cập bị chặn: ${vnNumber(total)} lượt.`,
      'Số liệu do hệ thống Lá chắn tổng hợp tự động; chỉ đếm lượt truy cập bị chặn, không đếm và không định danh học sinh, không chứa tên hay địa chỉ thiết bị (Luật Bảo vệ dữ liệu cá nhân 2025, Nghị định 13/2023/NĐ-CP). Một lượt truy cập là một lần một thiết bị mở một trang bị chặn: các yêu cầu lặp lại của cùng thiết bị tới cùng trang, cùng nhóm nội dung trong 30 giây (trang, biểu tượng, kết nối HTTPS) được tính là một lượt.',
      ...pending,
    ],
    sections,
    recipients: ['Như trên;', 'Lưu: VT.'],
    signerTitle: organisation.report.signerTitle.toLocaleUpperCase('vi'),
    signerName: organisation.report.signerName,
    fileStem: `bao-cao-${report.year}`,
  };
}
