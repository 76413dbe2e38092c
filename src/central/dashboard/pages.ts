import type { AuditEntry, Principal } from '../accounts.js';
import { DEFAULT_ORGANISATION } from '../../rules/organisation.js';
import { currentReportYear, REPORT_DOWNLOAD_PATH } from '../../report/download.js';

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const ROLE_NAMES: Readonly<Record<string, string>> = {
  admin: 'Quản trị',
  'school-it': 'Cán bộ CNTT trường',
  viewer: 'Chỉ xem',
};

function document(title: string, body: string, extraHead = ''): string {
  return `<!DOCTYPE html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} — Lá chắn</title>
<link rel="stylesheet" href="/assets/app.css">
${extraHead}
</head>
${body}
</html>`;
}

/** `office`: the configured managing office, which names the dashboard. */
export function loginPage(csrf: string, message: string | null, name = '', office = DEFAULT_ORGANISATION.office.name): string {
  return document(
    'Đăng nhập',
    `<body class="login">
<main class="card">
<h1>Lá chắn — ${escapeHtml(office)}</h1>
<p>Đăng nhập bằng tài khoản do quản trị viên cấp.</p>
${message === null ? '' : `<p class="error" role="alert">${escapeHtml(message)}</p>`}
<form method="post" action="/login">
<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">
<label>Tên đăng nhập <input name="name" autocomplete="username" required value="${escapeHtml(name)}"></label>
<label>Mật khẩu <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Đăng nhập</button>
</form>
</main>
</body>`,
  );
}

export type PageName = 'overview' | 'logs' | 'reviews' | 'policy' | 'users' | 'audit';

export function shell(page: PageName, title: string, user: Principal, csrf: string, main: string): string {
  const link = (target: PageName, href: string, label: string) =>
    `<a href="${href}"${target === page ? ' aria-current="page"' : ''}>${label}</a>`;
  return document(
    title,
    `<body data-page="${page}">
<header>
<strong>Lá chắn</strong>
<nav>${link('overview', '/', 'Tổng quan')}${link('logs', '/logs', 'Nhật ký chặn')}${link('reviews', '/reviews', 'Đề nghị & báo cáo')}${link('policy', '/policy', 'Chính sách chung')}${user.role === 'admin' ? link('users', '/users', 'Tài khoản') + link('audit', '/audit', 'Nhật ký thay đổi') : ''}</nav>
<span class="who">${escapeHtml(user.name)} · ${ROLE_NAMES[user.role] ?? user.role}${user.school === null ? '' : ` · trường ${escapeHtml(user.school)}`}</span>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="${escapeHtml(csrf)}"><button type="submit">Đăng xuất</button></form>
</header>
<main>
<h1>${escapeHtml(title)}</h1>
${main}
</main>
<script src="/assets/app.js"></script>
</body>`,
    `<meta name="csrf" content="${escapeHtml(csrf)}">`,
  );
}

export function overviewPage(user: Principal, csrf: string): string {
  return shell(
    'overview',
    'Tổng quan',
    user,
    csrf,
    `<section><h2>Số lượt chặn theo danh mục, 14 ngày qua</h2><div id="chart" class="chart">Đang tải…</div><div id="legend" class="legend"></div></section>
<section class="grid">
<div><h2>Số lượt chặn theo trường (30 ngày)</h2><table id="by-school"><thead><tr><th>Trường</th><th>Lượt chặn</th></tr></thead><tbody></tbody></table></div>
<div><h2>Trường không liên lạc quá 1 ngày</h2><p class="hint">Không có sự kiện và cổng trường không gọi về: có thể cổng đã ngừng hoạt động.</p><ul id="silent"></ul></div>
</section>
<section><h2>Trang bị chặn nhiều nhất theo danh mục (30 ngày)</h2><div id="top-hosts"></div></section>${user.school === null ? reportLinks(currentReportYear()) : ''}`,
  );
}

/** Download links of the yearly report (office accounts: it covers every school). */
function reportLinks(year: number): string {
  const link = (format: string, label: string) => `<a href="${REPORT_DOWNLOAD_PATH}?year=${year}&amp;format=${format}" download>${label}</a>`;
  return `<section id="yearly-report"><h2>Báo cáo năm ${year}</h2><p>${link('pdf', 'Tải PDF')} · ${link('docx', 'Tải Word (DOCX)')} · ${link('html', 'Tải HTML')}</p></section>`;
}

export function logsPage(user: Principal, csrf: string): string {
  return shell(
    'logs',
    'Nhật ký chặn',
    user,
    csrf,
    `<form id="filters" class="filters">
<label>Trường <select name="school"><option value="">Tất cả</option></select></label>
<label>Cấp học (profile) <input name="profile" placeholder="tieu-hoc"></label>
<label>Danh mục <input name="category" placeholder="gambling"></label>
<label>Tên miền <input name="host" placeholder="www.example.com"></label>
<label>Từ <input name="from" type="datetime-local"></label>
<label>Đến <input name="to" type="datetime-local"></label>
<button type="submit">Lọc</button>
<a id="csv" href="/api/v1/events.csv" download>Tải CSV</a>
</form>
<table id="events"><thead><tr><th>Thời gian</th><th>Trường</th><th>Cấp học</th><th>Danh mục</th><th>Tên miền</th><th>Đường dẫn</th><th>Quy tắc</th><th>Nguồn</th></tr></thead><tbody></tbody></table>
<p><span id="count"></span> <button id="more" type="button" hidden>Trang sau</button></p>`,
  );
}

export function usersPage(user: Principal, csrf: string, users: readonly Principal[]): string {
  const rows = users
    .map((u) => `<tr><td>${escapeHtml(u.name)}</td><td>${ROLE_NAMES[u.role] ?? u.role}</td><td>${escapeHtml(u.school ?? '—')}</td></tr>`)
    .join('\n');
  return shell(
    'users',
    'Tài khoản',
    user,
    csrf,
    `<table id="users"><thead><tr><th>Tên đăng nhập</th><th>Vai trò</th><th>Trường</th></tr></thead><tbody>
${rows}
</tbody></table>
<section><h2>Thêm tài khoản</h2>
<form id="add-user" class="filters">
<label>Tên đăng nhập <input name="name" required autocomplete="off"></label>
<label>Vai trò <select name="role"><option value="viewer">${ROLE_NAMES.viewer}</option><option value="school-it">${ROLE_NAMES['school-it']}</option><option value="admin">${ROLE_NAMES.admin}</option></select></label>
<label>Trường (mã, cho cán bộ CNTT trường) <select name="school"><option value="">—</option></select></label>
<label>Mật khẩu (ít nhất 10 ký tự) <input name="password" type="password" required minlength="10" autocomplete="new-password"></label>
<button type="submit">Thêm</button>
</form>
<p id="add-user-result" role="status"></p>
</section>`,
  );
}

export function auditPage(user: Principal, csrf: string, entries: readonly AuditEntry[]): string {
  const rows = entries
    .map(
      (e) =>
        `<tr><td>${new Date(e.at).toISOString()}</td><td>${escapeHtml(e.actor)}</td><td>${escapeHtml(e.action)}</td><td>${escapeHtml(e.target)}</td><td><code>${escapeHtml(e.before ?? '')}</code></td><td><code>${escapeHtml(e.after ?? '')}</code></td></tr>`,
    )
    .join('\n');
  return shell(
    'audit',
    'Nhật ký thay đổi',
    user,
    csrf,
    `<table id="audit"><thead><tr><th>Lúc (UTC)</th><th>Người thực hiện</th><th>Thao tác</th><th>Đối tượng</th><th>Trước</th><th>Sau</th></tr></thead><tbody>
${rows || '<tr><td colspan="6">Chưa có thay đổi nào.</td></tr>'}
</tbody></table>`,
  );
}

export function errorPage(status: number, message: string, back = '/'): string {
  return document('Lỗi', `<body class="login"><main class="card"><h1>${status}</h1><p>${escapeHtml(message)}</p><p><a href="${escapeHtml(back)}">Quay lại</a></p></main></body>`);
}
