import type { CentralStore, Stats } from '../central/store.js';
import { CATEGORY_NAMES } from '../util/labels.js';

/**
 * The yearly report the directive asks of every office, due to Phòng VH-TT before
 * 15 November: what children ran into across the district's schools, by category,
 * month, school and age group. Built from the collector's roll-ups, so it survives
 * the expiry of raw events.
 */

export const SHIPPED_PROFILES: readonly { id: string; name: string }[] = [
  { id: 'mam-non', name: 'Mầm non' },
  { id: 'tieu-hoc', name: 'Tiểu học' },
  { id: 'thcs', name: 'Trung học cơ sở' },
  { id: 'thpt', name: 'Trung học phổ thông' },
  { id: 'giao-vien', name: 'Giáo viên' },
];

export interface YearlyReport {
  readonly year: number;
  readonly total: number;
  readonly byCategory: readonly { category: string | null; count: number }[];
  readonly byMonth: readonly { month: string; count: number }[];
  readonly bySchool: Stats['bySchool'];
  readonly byProfile: readonly { profile: string; name: string; count: number }[];
  readonly topHosts: Stats['topHosts'];
  readonly schools: number;
}

export async function buildYearlyReport(store: CentralStore, year: number): Promise<YearlyReport> {
  const range = { fromDay: `${year}-01-01`, toDay: `${year}-12-31` };
  const stats = await store.stats({ ...range, topHosts: 20 });
  const byCategory = new Map<string | null, number>();
  const byMonth = new Map<string, number>();
  for (const row of stats.byCategoryDay) {
    byCategory.set(row.category, (byCategory.get(row.category) ?? 0) + row.count);
    const month = row.day.slice(0, 7);
    byMonth.set(month, (byMonth.get(month) ?? 0) + row.count);
  }
  const byProfile: { profile: string; name: string; count: number }[] = [];
  for (const profile of SHIPPED_PROFILES) {
    const profileStats = await store.stats({ ...range, profile: profile.id, topHosts: 0 });
    byProfile.push({ profile: profile.id, name: profile.name, count: profileStats.total });
  }
  return {
    year,
    total: stats.total,
    byCategory: [...byCategory.entries()].map(([category, count]) => ({ category, count })).sort((a, b) => b.count - a.count),
    byMonth: [...byMonth.entries()].map(([month, count]) => ({ month, count })).sort((a, b) => a.month.localeCompare(b.month)),
    bySchool: stats.bySchool,
    byProfile,
    topHosts: stats.topHosts,
    schools: (await store.listSchools()).length,
  };
}

function categoryLabel(category: string | null): string {
  return category === null ? 'Quy định chung (địa chỉ IP, cổng)' : `${CATEGORY_NAMES[category] ?? category} (${category})`;
}

function table(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const line = (cells: readonly (string | number)[]): string => `| ${cells.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The report as Markdown, in Vietnamese: printable, and pastes into a document. */
export function renderYearlyReport(report: YearlyReport, generatedAt: Date = new Date()): string {
  const percent = (count: number): string => (report.total === 0 ? '0' : ((100 * count) / report.total).toFixed(1));
  const parts = [
    `# Báo cáo năm ${report.year}: kết quả lọc nội dung có hại cho trẻ em trên mạng trường học`,
    '',
    `Kính gửi: Phòng Văn hóa – Thông tin (hạn nộp trước ngày 15/11/${report.year}).`,
    '',
    `Số liệu do hệ thống Lá chắn tổng hợp từ ${report.schools} trường, từ 01/01/${report.year} đến 31/12/${report.year}, lập lúc ${generatedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC.`,
    'Số liệu chỉ đếm lượt truy cập bị chặn; không chứa tên, địa chỉ hay thông tin định danh học sinh (Nghị định 13/2023/NĐ-CP).',
    '',
    `**Tổng số lượt truy cập bị chặn: ${report.total}**`,
    '',
    '## Theo nhóm nội dung',
    '',
    table(['Nhóm nội dung', 'Số lượt', '%'], report.byCategory.map((r) => [categoryLabel(r.category), r.count, percent(r.count)])),
    '',
    '## Theo cấp học',
    '',
    table(['Cấp học', 'Số lượt', '%'], report.byProfile.map((r) => [r.name, r.count, percent(r.count)])),
    '',
    '## Theo tháng',
    '',
    table(['Tháng', 'Số lượt'], report.byMonth.map((r) => [r.month, r.count])),
    '',
    '## Theo trường',
    '',
    table(['Trường', 'Mã', 'Số lượt'], report.bySchool.map((r) => [r.name ?? '—', r.school, r.count])),
    '',
    '## Các trang bị chặn nhiều nhất',
    '',
    table(['Trang', 'Nhóm nội dung', 'Số lượt'], report.topHosts.map((r) => [r.host, categoryLabel(r.category), r.count])),
    '',
    '## Hỗ trợ trẻ em',
    '',
    'Trang chặn của hệ thống hướng dẫn học sinh gọi Tổng đài quốc gia bảo vệ trẻ em **111** và đường dây hỗ trợ của tỉnh Yên Bái **1800 1776** (miễn phí).',
    '',
  ];
  return parts.join('\n');
}
