import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addSchool,
  addUser,
  type Collector,
  ingest,
  lachan,
  type LoggedIn,
  login,
  REPO_ROOT,
  startCollector,
  stopCollector,
  wireEvent,
} from './harness/index.js';

/**
 * The yearly report as the office meets it: downloaded from the dashboard by an
 * administrator (curl with the session cookie, as a browser would), or made with
 * `lachan report`, in PDF, DOCX and HTML. The PDF is rendered to PNG with poppler's
 * pdftoppm (test/artifacts/) and its text read back with pdftotext.
 */

const ARTIFACTS = path.join(REPO_ROOT, 'test/artifacts');
// CI installs poppler-utils (.ci/run): there a missing tool fails the test instead of skipping it.
const havePoppler = (existsSync('/usr/bin/pdftoppm') && existsSync('/usr/bin/pdftotext')) || process.env.CI !== undefined;
const ORGANISATION = `# Lào Cai after the 2025 merger: a provincial office, reporting 01/11 → 31/10
office:
  name: "Sở Giáo dục và Đào tạo tỉnh Lào Cai"
  level: tinh
  parent: "Ủy ban nhân dân tỉnh Lào Cai"
  abbreviation: "SGDĐT"
  place: "Lào Cai"
hotline:
  number: "0214 3840 111"
  label: "Đường dây nóng bảo vệ trẻ em tỉnh Lào Cai"
report:
  recipient: "Sở Văn hóa, Thể thao và Du lịch tỉnh Lào Cai"
  period_start: "01/11"
  signer_title: "Giám đốc"
  signer_name: "Nguyễn Văn An"
`;

let work: string;
let data: string;
let collector: Collector;
let admin: LoggedIn;
let schoolIt: LoggedIn;

const at = (iso: string): number => Date.parse(`${iso}T03:00:00Z`);

function curlDownload(url: string, cookie: string, file: string): { status: number; headers: string } {
  const headers = execFileSync('curl', ['-sS', '-D', '-', '-o', file, '-b', cookie, url], { encoding: 'utf8' });
  return { status: Number(/^HTTP\/[\d.]+ (\d{3})/m.exec(headers)?.[1]), headers: headers.toLowerCase() };
}

function pdfText(file: string): string {
  // Reading order, not layout: the heading's two columns come out one after the other.
  // Lines the page wrapped are joined again.
  return execFileSync('pdftotext', [file, '-'], { encoding: 'utf8' }).replace(/\s+/g, ' ');
}

function docxText(file: string): string {
  const xml = execFileSync('unzip', ['-p', file, 'word/document.xml'], { encoding: 'utf8' });
  return xml.replace(/<w:p[ >]/g, '\n$&').replace(/<[^>]+>/g, '');
}

/** What the decree asks of the document, and the figures, whatever the format. */
function expectOfficialReport(text: string): void {
  expect(text).toContain('CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM');
  expect(text).toContain('Độc lập - Tự do - Hạnh phúc');
  expect(text).toContain('ỦY BAN NHÂN DÂN TỈNH LÀO CAI');
  expect(text).toContain('SỞ GIÁO DỤC VÀ ĐÀO TẠO TỈNH LÀO CAI');
  // Blank for the clerk's number (in the PDF's reading order the right column may come between).
  expect(text).toMatch(/Số:[^/]{1,150}\/BC-SGDĐT/);
  expect(text).toMatch(/Lào Cai, ngày \d{2} tháng (0[12]|[3-9]|1[0-2]) năm 20\d\d/);
  expect(text).toContain('BÁO CÁO');
  expect(text).toContain('Kính gửi: Sở Văn hóa, Thể thao và Du lịch tỉnh Lào Cai.');
  // The configured period: 01/11 of the year before to 31/10.
  expect(text).toContain('từ ngày 01/11/2025 đến ngày 31/10/2026');
  // Vietnamese digit grouping; the November 2026 events fall outside the period.
  expect(text).toContain('Tổng số lượt truy cập bị chặn: 1.234 lượt.');
  expect(text).not.toContain('1.290');
  expect(text).toMatch(/97,2%/);
  expect(text).toContain('không đếm và không định danh học sinh');
  expect(text).toContain('0214 3840 111');
  expect(text).not.toContain('Yên Bái');
  expect(text).toContain('Nơi nhận:');
  expect(text).toContain('GIÁM ĐỐC');
  expect(text).toContain('Nguyễn Văn An');
}

describe('the yearly report, as an office downloads and sends it', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    work = mkdtempSync(path.join(tmpdir(), 'lachan-report-'));
    data = path.join(work, 'central');
    const a = addSchool(data, 'TH Kim Đồng');
    const b = addSchool(data, 'THCS Bắc Hà');
    writeFileSync(path.join(data, 'organisation.yaml'), ORGANISATION);
    addUser(data, 'an.nguyen', 'admin');
    addUser(data, 'it.kimdong', 'school-it', a.id);
    collector = await startCollector(data);
    const batch = (n: number, event: Parameters<typeof wireEvent>[0]) => Array.from({ length: n }, () => wireEvent(event));
    for (let i = 0; i < 3; i++) await ingest(collector.url, a, batch(400, { time: at('2026-03-10') }));
    await ingest(collector.url, b, batch(34, { time: at('2025-12-05'), category: 'adult', profile: 'thcs', host: 'nguoilon.example' }));
    await ingest(collector.url, b, batch(56, { time: at('2026-11-20') }));
    admin = await login(collector.url, 'an.nguyen');
    schoolIt = await login(collector.url, 'it.kimdong');
    // The writer folds the inbox into the roll-ups every few seconds.
    for (;;) {
      const response = await fetch(`${collector.url}/report?year=2026&format=md`, { headers: { cookie: admin.cookie } });
      if ((await response.text()).includes('1.234 lượt')) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }, 120_000);

  afterAll(async () => {
    if (collector) await stopCollector(collector);
    rmSync(work, { recursive: true, force: true });
  });

  it('names the configured office on the dashboard, not a district', async () => {
    const loginPage = await (await fetch(`${collector.url}/login`)).text();
    expect(loginPage).toContain('Lá chắn — Sở Giáo dục và Đào tạo tỉnh Lào Cai');
    const overview = await (await fetch(`${collector.url}/`, { headers: { cookie: admin.cookie } })).text();
    for (const page of [loginPage, overview]) expect(page).not.toContain('quận/huyện');
  });

  it('offers each format on the overview, to office accounts only', async () => {
    const overview = await (await fetch(`${collector.url}/`, { headers: { cookie: admin.cookie } })).text();
    for (const format of ['pdf', 'docx', 'html']) expect(overview).toMatch(new RegExp(`href="/report\\?year=\\d{4}&amp;format=${format}"`));
    const schoolView = await (await fetch(`${collector.url}/`, { headers: { cookie: schoolIt.cookie } })).text();
    expect(schoolView).not.toContain('/report?');
    expect((await fetch(`${collector.url}/report?year=2026&format=pdf`, { headers: { cookie: schoolIt.cookie } })).status).toBe(403);
    expect((await fetch(`${collector.url}/report?year=2026&format=pdf`)).status).toBe(401);
    expect((await fetch(`${collector.url}/report?year=2026&format=exe`, { headers: { cookie: admin.cookie } })).status).toBe(400);
  });

  it.runIf(havePoppler)("downloads a PDF in the decree's form that renders and reads back", () => {
    const file = path.join(ARTIFACTS, 'yearly-report.pdf');
    const { status, headers } = curlDownload(`${collector.url}/report?year=2026&format=pdf`, admin.cookie, file);
    expect(status).toBe(200);
    expect(headers).toContain('content-type: application/pdf');
    expect(headers).toContain('content-disposition: attachment; filename="bao-cao-2026.pdf"');
    expect(readFileSync(file).subarray(0, 5).toString()).toBe('%PDF-');
    expectOfficialReport(pdfText(file));
    // Rendered by poppler, page by page, for a person to look at.
    const prefix = path.join(ARTIFACTS, 'yearly-report');
    execFileSync('pdftoppm', ['-png', '-r', '60', file, prefix]);
    const first = `${prefix}-1.png`;
    expect(existsSync(first)).toBe(true);
    expect(statSync(first).size).toBeGreaterThan(10_000);
    // The font is embedded: the file does not depend on fonts of the machine that opens it.
    expect(execFileSync('pdffonts', [file], { encoding: 'utf8' })).toMatch(/DejaVuSerif\S*\s+CID TrueType\s+Identity-H\s+yes\s+yes/);
  });

  it('downloads a Word document with the same content', () => {
    const file = path.join(work, 'bao-cao.docx');
    const { status, headers } = curlDownload(`${collector.url}/report?year=2026&format=docx`, admin.cookie, file);
    expect(status).toBe(200);
    expect(headers).toContain('content-type: application/vnd.openxmlformats-officedocument.wordprocessingml.document');
    expectOfficialReport(docxText(file));
    expect(execFileSync('unzip', ['-p', file, 'word/document.xml'], { encoding: 'utf8' })).toContain('Times New Roman');
  });

  it('downloads the HTML page', () => {
    const file = path.join(work, 'bao-cao.html');
    expect(curlDownload(`${collector.url}/report?year=2026&format=html`, admin.cookie, file).status).toBe(200);
    const html = readFileSync(file, 'utf8');
    expect(html).toContain('<html lang="vi">');
    expectOfficialReport(html.replace(/<[^>]+>/g, ' ').replace(/&#(\d+);/g, (_m, code: string) => String.fromCharCode(Number(code))));
  });

  it.runIf(havePoppler)('is made the same way by `lachan report`, with the number the clerk gives', () => {
    const file = path.join(work, 'cli.pdf');
    const result = lachan(['report', '--year', '2026', '--out', file, '--data', data, '--number', '15']);
    expect(result.code).toBe(0);
    const text = pdfText(file);
    expect(text).toContain('Số: 15/BC-SGDĐT');
    expect(text).toContain('Tổng số lượt truy cập bị chặn: 1.234 lượt.');
  });

  it('refuses a broken organisation.yaml with FILE:LINE, and keeps defaults without one', () => {
    const broken = path.join(work, 'broken');
    addSchool(broken, 'TH Thử');
    writeFileSync(path.join(broken, 'organisation.yaml'), 'office:\n  level: huyện\nhotline:\n  number: "gọi 111"\n');
    const refused = lachan(['report', '--year', '2026', '--data', broken]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/organisation\.yaml:2: organisation\.office\.level must be tinh, xa or huyen/);
    expect(refused.stderr).toMatch(/organisation\.yaml:4: organisation\.hotline\.number/);
    rmSync(path.join(broken, 'organisation.yaml'));
    const defaults = lachan(['report', '--year', '2026', '--data', broken]);
    expect(defaults.code).toBe(0);
    expect(defaults.stdout).toContain('PHÒNG GIÁO DỤC VÀ ĐÀO TẠO');
    expect(defaults.stdout).toContain('Yên Bái, ngày');
    expect(defaults.stdout).toContain('từ ngày 01/01/2026 đến ngày 31/12/2026');
    expect(defaults.stdout).toContain('1800 1776');
  });
});
