import type { PolicyConfig } from '../rules/policy-file.js';
import { formatClock, DAY_NAMES } from '../policy/schedules.js';
import { COLLECTOR_EVENT_RETENTION_DAYS, DEVICE_TRUST_RETENTION_DAYS, GATEWAY_EVENT_RETENTION_DAYS, retentionTable } from './retention.js';
import { formatVietnamTime } from './vietnam-time.js';

/**
 * A draft of the school's personal-data impact assessment (hồ sơ đánh giá tác động xử lý
 * dữ liệu cá nhân, Law 91/2025/QH15 and Decree 356/2025/NĐ-CP), written from what this
 * gateway is actually configured to do: the profiles of rules/policy.yaml, whether
 * events leave for a collector, the retention periods of retention.ts. The school
 * completes and signs it; lachan cannot know its staff or its legal advice.
 */

export interface DpiaInput {
  readonly policy: PolicyConfig;
  /** The collector's URL when the gateway runs with --central; null when nothing leaves the school. */
  readonly central: string | null;
  readonly collectorRetentionDays?: number;
  readonly now: number;
}

const DAY_LABELS: Readonly<Record<(typeof DAY_NAMES)[number], string>> = { mon: 'T2', tue: 'T3', wed: 'T4', thu: 'T5', fri: 'T6', sat: 'T7', sun: 'CN' };

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string[] {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)];
}

export function renderDpia(input: DpiaInput): string {
  const { policy, central } = input;
  const org = policy.organisation;
  const school = org.school ?? '…………………… (đặt organisation.school trong rules/policy.yaml)';
  const collectorDays = input.collectorRetentionDays ?? COLLECTOR_EVENT_RETENTION_DAYS;
  const intercepting = policy.profiles.filter((p) => p.inspect).map((p) => p.name);
  const out: string[] = [
    `# Hồ sơ đánh giá tác động xử lý dữ liệu cá nhân (bản nháp)`,
    '',
    `**Bên kiểm soát và xử lý dữ liệu:** ${school}`,
    `**Cơ quan quản lý:** ${org.office.name}`,
    `**Hệ thống:** Lá chắn (lachan), máy chủ lọc nội dung Internet trên mạng của trường`,
    `**Lập lúc:** ${formatVietnamTime(input.now)} (giờ Việt Nam), từ cấu hình đang dùng (\`lachan privacy dpia\`)`,
    '',
    '> Bản nháp do phần mềm lập từ cấu hình thực tế của máy chủ lọc. Nhà trường bổ sung người phụ trách, rà soát với cán bộ pháp chế, ký và cập nhật khi cấu hình hoặc hoạt động xử lý thay đổi. Căn cứ: Luật Bảo vệ dữ liệu cá nhân số 91/2025/QH15 (hiệu lực từ 01/01/2026) và Nghị định 356/2025/NĐ-CP; dữ liệu của trẻ em theo Điều 24 của Luật.',
    '',
    '## 1. Mục đích và căn cứ xử lý',
    '',
    '- Bảo vệ học sinh trên môi trường mạng: chặn nội dung không phù hợp lứa tuổi, biết loại nội dung độc hại nào đang tìm đến học sinh.',
    '- Sửa chặn nhầm và bổ sung trang độc hại còn lọt (đề nghị xem lại, báo cáo trang có hại).',
    '- Thống kê, báo cáo theo trường và theo danh mục.',
    '- Không dùng để chấm điểm, xếp loại, xử phạt học sinh, quảng cáo hay chuyển cho bên thứ ba.',
    '- Chủ thể dữ liệu phần lớn là trẻ em: cha mẹ (người đại diện theo pháp luật) thay mặt con thực hiện các quyền (Điều 24); nhà trường thông báo cho cha mẹ bằng văn bản “Dữ liệu cá nhân được thu thập và xử lý như thế nào” (docs/du-lieu-ca-nhan.md).',
    '',
    '## 2. Các nhóm lọc đang áp dụng',
    '',
    ...table(
      ['Nhóm lọc', 'Danh mục bị chặn', 'Giải mã HTTPS', 'Khung giờ'],
      policy.profiles.map((p) => [
        `${p.name} (\`${p.id}\`)`,
        p.blockCategories.map((c) => c.value).join(', ') || '(không)',
        p.inspect ? 'có' : 'không',
        p.schedules.length === 0
          ? '—'
          : p.schedules
              .map(
                (s) =>
                  `${s.name}: ${[...new Set(s.windows.map((w) => DAY_LABELS[DAY_NAMES[Math.floor(w.start / 1440)]!]))].join(', ')} ${formatClock(s.windows[0]!.start % 1440)}–${formatClock(s.windows[0]!.end - Math.floor(s.windows[0]!.start / 1440) * 1440)}, chặn ${s.blockCategories.map((c) => c.value).join(', ') || '(không)'}`,
              )
              .join('; '),
      ]),
    ),
    '',
    `Thiết bị được xếp vào nhóm lọc theo dải địa chỉ mạng (${policy.clients.length} dải trong mục \`clients\`)${policy.proxyAuth.usersFile === null ? '' : ' hoặc theo tài khoản đăng nhập máy chủ lọc (mục `proxy_auth`)'}; nhóm mặc định: \`${policy.defaultProfile.value}\`.`,
    '',
    '## 3. Dữ liệu được xử lý',
    '',
    '- Chỉ lần truy cập **bị chặn** được ghi: thời điểm, nhóm lọc, danh mục, quy tắc, tên trang web, đường dẫn không có phần sau dấu “?”, kiểu truy cập, mã tham chiếu, **mã thiết bị ẩn danh** (HMAC-SHA256 của địa chỉ IP, khoá không rời khỏi trường).',
    '- Đề nghị xem lại và báo cáo trang có hại: như trên, kèm lời ghi chú học sinh tự viết (tối đa 500 ký tự).',
    `- Địa chỉ IP của thiết bị mở trang HTTPS và việc thiết bị đã cài chứng chỉ của trường hay chưa (device-trust.json, ${DEVICE_TRUST_RETENTION_DAYS} ngày, không rời khỏi trường).`,
    intercepting.length === 0
      ? '- Không nhóm lọc nào giải mã HTTPS.'
      : `- Giải mã HTTPS (để lọc theo đường dẫn và bật tìm kiếm an toàn) với các nhóm: ${intercepting.join(', ')}. Nội dung trang chỉ đi qua bộ nhớ của máy chủ lọc, **không** được lưu.`,
    '- Không thu thập họ tên, lớp, tài khoản, mật khẩu, nội dung trang, tin nhắn, từ khoá tìm kiếm, hình ảnh, vị trí. Mã thiết bị ẩn danh vẫn là dữ liệu cá nhân theo Luật (giúp xác định một thiết bị, và qua đó có thể là một học sinh), nên được bảo vệ như dữ liệu cá nhân.',
    '',
    '## 4. Nơi lưu, thời hạn lưu',
    '',
    ...table(
      ['Nơi lưu', 'Dữ liệu', 'Thời hạn'],
      retentionTable(collectorDays).map((r) => [r.where, r.what, r.period]),
    ),
    '',
    '## 5. Chuyển dữ liệu ra khỏi trường',
    '',
    ...(central === null
      ? [
          '- Máy chủ lọc **không** gửi dữ liệu ra khỏi trường (chạy không có `--central`): mọi sự kiện chỉ ở máy chủ của trường, ' +
            `được xoá sau ${GATEWAY_EVENT_RETENTION_DAYS} ngày.`,
        ]
      : [
          `- Sự kiện chặn và đề nghị xem lại được gửi tới máy chủ tập trung \`${central}\` của ${org.office.name}, chỉ với mã thiết bị ẩn danh (không có địa chỉ IP, không có khoá). Nên dùng kết nối HTTPS.`,
          `- Tại đó dữ liệu gốc được giữ ${collectorDays} ngày; số liệu tổng hợp theo ngày (không mã thiết bị) được giữ lâu dài.`,
          '- Yêu cầu xoá của cha mẹ được chuyển tiếp lên máy chủ tập trung theo mã ẩn danh (`lachan privacy erase`).',
        ]),
    '- Không chuyển dữ liệu ra nước ngoài. Danh sách chặn được tải về (một chiều), không kèm dữ liệu của học sinh.',
    '',
    '## 6. Rủi ro và biện pháp',
    '',
    ...table(
      ['Rủi ro', 'Biện pháp'],
      [
        ['Lộ thói quen truy cập của một học sinh', 'chỉ ghi lần bị chặn; mã ẩn danh thay địa chỉ; không có phần sau “?”; thời hạn lưu ngắn'],
        [
          'Đối chiếu mã ẩn danh với thiết bị khi không cần',
          'chỉ quản trị viên máy chủ đọc được khoá; chỉ làm khi cần bảo vệ học sinh và được Ban giám hiệu đồng ý',
        ],
        [
          'Giải mã HTTPS đọc nội dung riêng tư',
          intercepting.length === 0
            ? 'không nhóm nào giải mã'
            : 'không lưu nội dung; ngân hàng, y tế, dịch vụ công nằm trong danh sách không giải mã (rules/no_inspect)',
        ],
        [
          'Dữ liệu bị truy cập trái phép',
          'tệp dữ liệu và khoá chỉ tài khoản quản trị đọc được; mã xác thực lưu dạng băm; thông báo cơ quan chuyên trách (Bộ Công an) và cha mẹ khi có sự cố, trong thời hạn luật định',
        ],
        [
          'Không đáp ứng yêu cầu của cha mẹ',
          '`lachan privacy export` và `lachan privacy erase` trả lời theo địa chỉ hoặc mã ẩn danh của thiết bị; mỗi lần được ghi vào audit.jsonl',
        ],
      ],
    ),
    '',
    '## 7. Liên hệ và ký duyệt',
    '',
    `- Đường dây nóng bảo vệ trẻ em: 111 và ${org.hotline.display} (${org.hotline.label}).`,
    '- Người phụ trách bảo vệ dữ liệu cá nhân của trường: ……………………',
    '- Ngày rà soát lại: ……………………',
    '',
    'Hiệu trưởng (ký, ghi rõ họ tên)',
  ];
  return `${out.join('\n')}\n`;
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function inline(text: string): string {
  return escapeHtml(text)
    .replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>')
    .replace(/`([^`]+)`/g, '<code>$1</code>');
}

/** The Markdown above as a standalone HTML page (only what renderDpia writes: headings, lists, tables, quotes, paragraphs). */
export function dpiaHtml(markdown: string): string {
  const body: string[] = [];
  let list = false;
  let rows: string[][] = [];
  const flush = () => {
    if (list) body.push('</ul>');
    list = false;
    if (rows.length > 0) {
      const [head, , ...rest] = rows;
      body.push(
        `<table><thead><tr>${head!.map((c) => `<th>${inline(c)}</th>`).join('')}</tr></thead><tbody>${rest.map((r) => `<tr>${r.map((c) => `<td>${inline(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`,
      );
    }
    rows = [];
  };
  for (const line of markdown.split('\n')) {
    if (line.startsWith('|')) {
      if (list) flush();
      rows.push(
        line
          .slice(1, -1)
          .split(/(?<!\\) \| ?/)
          .map((c) => c.trim().replace(/\\\|/g, '|')),
      );
      continue;
    }
    if (line.startsWith('- ')) {
      if (rows.length > 0) flush();
      if (!list) body.push('<ul>');
      list = true;
      body.push(`<li>${inline(line.slice(2))}</li>`);
      continue;
    }
    flush();
    if (line.startsWith('## ')) body.push(`<h2>${inline(line.slice(3))}</h2>`);
    else if (line.startsWith('# ')) body.push(`<h1>${inline(line.slice(2))}</h1>`);
    else if (line.startsWith('> ')) body.push(`<blockquote>${inline(line.slice(2))}</blockquote>`);
    else if (line !== '') body.push(`<p>${inline(line)}</p>`);
  }
  flush();
  return `<!doctype html>\n<html lang="vi"><head><meta charset="utf-8"><title>Hồ sơ đánh giá tác động xử lý dữ liệu cá nhân</title>
<style>body{font-family:"Times New Roman",serif;max-width:50em;margin:2em auto;line-height:1.45}table{border-collapse:collapse}td,th{border:1px solid #444;padding:.3em .5em;vertical-align:top}blockquote{border-left:3px solid #999;margin-left:0;padding-left:1em}</style>
</head><body>
${body.join('\n')}
</body></html>\n`;
}
