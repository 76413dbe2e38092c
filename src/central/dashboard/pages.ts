import type { AuditEntry, Principal, User } from '../accounts.js';
import { DEFAULT_ORGANISATION } from '../../rules/organisation.js';
import { currentReportYear, REPORT_DOWNLOAD_PATH } from '../../report/download.js';
import { vnDateTime } from './vn-time.js';

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const ROLE_NAMES: Readonly<Record<string, string>> = {
  admin: 'Quản trị',
  'school-it': 'Cán bộ CNTT trường',
  viewer: 'Chỉ xem',
  'tu-van': 'Tư vấn học đường',
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

export type PageName = 'overview' | 'logs' | 'reviews' | 'policy' | 'lists' | 'users' | 'audit' | 'alerts';

export function shell(page: PageName, title: string, user: Principal, csrf: string, main: string): string {
  const link = (target: PageName, href: string, label: string) => `<a href="${href}"${target === page ? ' aria-current="page"' : ''}>${label}</a>`;
  return document(
    title,
    `<body data-page="${page}">
<header>
<strong>Lá chắn</strong>
<nav>${
      // A counsellor has the alert queue only (docs/safeguarding.md §3).
      user.role === 'tu-van'
        ? link('alerts', '/alerts', 'Cảnh báo')
        : `${link('overview', '/', 'Tổng quan')}${link('logs', '/logs', 'Nhật ký chặn')}${link('reviews', '/reviews', 'Đề nghị & báo cáo')}${link('policy', '/policy', 'Chính sách chung')}${link('lists', '/lists', 'Danh sách chặn')}${user.role === 'admin' ? link('alerts', '/alerts', 'Cảnh báo') + link('users', '/users', 'Tài khoản') + link('audit', '/audit', 'Nhật ký thay đổi') : ''}`
    }</nav>
<span class="who">${escapeHtml(user.name)} · ${ROLE_NAMES[user.role] ?? user.role}${user.school === null ? '' : ` · ${escapeHtml(user.schoolName ?? user.school)}`}</span>
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
<label>Cấp học <select name="profile"><option value="">Tất cả</option></select></label>
<label>Danh mục <select name="category"><option value="">Tất cả</option></select></label>
<label>Tên miền <input name="host" placeholder="www.example.com"></label>
<label>Từ <input name="from" type="datetime-local"></label>
<label>Đến <input name="to" type="datetime-local"></label>
<button type="submit">Lọc</button>
<a id="csv" href="/api/v1/events.csv" download>Tải CSV</a>
</form>
<div class="scroll"><table id="events"><thead><tr><th>Thời gian</th><th>Trường</th><th>Cấp học</th><th>Danh mục</th><th>Tên miền</th><th>Đường dẫn</th><th>Quy tắc</th><th>Nguồn</th></tr></thead><tbody></tbody></table></div>
<p><span id="count"></span> <button id="more" type="button" hidden>Trang sau</button></p>`,
  );
}

const USER_NOTICES: Readonly<Record<string, string>> = {
  disable: 'Đã khóa tài khoản: các phiên đăng nhập của tài khoản này đã kết thúc.',
  enable: 'Đã mở lại tài khoản.',
  delete: 'Đã xóa tài khoản.',
  password: 'Đã đặt mật khẩu mới: các phiên đăng nhập cũ của tài khoản này đã kết thúc.',
};

export function usersPage(user: Principal, csrf: string, users: readonly User[], schoolNames: ReadonlyMap<string, string>, done: string | null): string {
  const hidden = `<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">`;
  const rows = users
    .map((u) => {
      const action = `/api/v1/users/${encodeURIComponent(u.name)}`;
      const disabled = u.disabledAt !== null;
      const toggle = `<form method="post" action="${action}/${disabled ? 'enable' : 'disable'}">${hidden}<button type="submit">${disabled ? 'Mở lại' : 'Khóa'}</button></form>`;
      const reset = `<form method="post" action="${action}/password" class="reset">${hidden}<input name="password" type="password" required minlength="10" autocomplete="new-password" placeholder="Mật khẩu mới" aria-label="Mật khẩu mới cho ${escapeHtml(u.name)}"><button type="submit">Đặt mật khẩu</button></form>`;
      const remove = `<form method="post" action="${action}/delete" class="delete">${hidden}<button type="submit" class="danger">Xóa</button></form>`;
      const school = u.school === null ? '—' : (schoolNames.get(u.school) ?? u.school);
      return `<tr data-user="${escapeHtml(u.name)}"${disabled ? ' class="disabled"' : ''}><td class="name">${escapeHtml(u.name)}</td><td data-label="Vai trò">${ROLE_NAMES[u.role] ?? u.role}</td><td data-label="Trường">${escapeHtml(school)}</td><td data-label="Trạng thái">${disabled ? `Đã khóa (${vnDateTime(u.disabledAt!)})` : 'Hoạt động'}</td><td><div class="actions">${toggle}${reset}${remove}</div></td></tr>`;
    })
    .join('\n');
  const notice = done === null || USER_NOTICES[done] === undefined ? '' : `<p class="notice" role="status">${USER_NOTICES[done]}</p>`;
  return shell(
    'users',
    'Tài khoản',
    user,
    csrf,
    `${notice}<table id="users" class="cards"><thead><tr><th>Tên đăng nhập</th><th>Vai trò</th><th>Trường</th><th>Trạng thái</th><th>Thao tác</th></tr></thead><tbody>
${rows}
</tbody></table>
<p class="hint">Khóa, xóa hoặc đặt mật khẩu mới sẽ kết thúc ngay các phiên đăng nhập của tài khoản đó. Mọi thao tác được ghi vào nhật ký thay đổi.</p>
<section><h2>Thêm tài khoản</h2>
<form id="add-user" class="filters">
<label>Tên đăng nhập <input name="name" required autocomplete="off"></label>
<label>Vai trò <select name="role"><option value="viewer">${ROLE_NAMES.viewer}</option><option value="school-it">${ROLE_NAMES['school-it']}</option><option value="tu-van">${ROLE_NAMES['tu-van']}</option><option value="admin">${ROLE_NAMES.admin}</option></select></label>
<label>Trường (cho cán bộ CNTT trường) <select name="school"><option value="">—</option></select></label>
<label>Mật khẩu (ít nhất 10 ký tự) <input name="password" type="password" required minlength="10" autocomplete="new-password"></label>
<button type="submit">Thêm</button>
</form>
<p id="add-user-result" role="status"></p>
</section>`,
  );
}

/** Vietnamese for the audit log's actions; an action not listed shows as recorded. */
const AUDIT_ACTIONS: Readonly<Record<string, string>> = {
  'user.add': 'Thêm tài khoản',
  'user.disable': 'Khóa tài khoản',
  'user.enable': 'Mở lại tài khoản',
  'user.delete': 'Xóa tài khoản',
  'user.password.reset': 'Đặt mật khẩu mới',
  'login.throttle': 'Đăng nhập sai nhiều lần (tạm chờ)',
  'login.lockout': 'Khóa đăng nhập',
  'policy.rule.add': 'Thêm quy tắc chính sách',
  'policy.rule.remove': 'Bỏ quy tắc chính sách',
  'review.approve': 'Chấp thuận đề nghị',
  'review.reject': 'Từ chối đề nghị',
  'review.block': 'Chặn trang được báo cáo',
  'school.add': 'Thêm trường',
  'school.revoke': 'Thu hồi trường',
};

/** A recorded before/after value as `field: value` lines, times in Vietnam time, schools by name. */
function auditDetail(json: string | null, schoolNames: ReadonlyMap<string, string>): string {
  if (json === null) return '';
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return escapeHtml(json);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return escapeHtml(JSON.stringify(value));
  return Object.entries(value as Record<string, unknown>)
    .map(([key, v]) => {
      const shown =
        (key === 'createdAt' || key === 'at') && typeof v === 'number'
          ? vnDateTime(v)
          : key === 'school' && typeof v === 'string'
            ? (schoolNames.get(v) ?? v)
            : typeof v === 'string'
              ? v
              : JSON.stringify(v);
      return `<span class="kv"><b>${escapeHtml(key)}</b>: ${escapeHtml(shown)}</span>`;
    })
    .join('<br>');
}

/** `school:ID` as the school's name (with the id, which scripts search for). */
function targetText(target: string, schoolNames: ReadonlyMap<string, string>): string {
  if (!target.startsWith('school:')) return target;
  const name = schoolNames.get(target.slice(7));
  return name === undefined ? target : `${name} (${target})`;
}

export function auditPage(user: Principal, csrf: string, entries: readonly AuditEntry[], schoolNames: ReadonlyMap<string, string> = new Map()): string {
  const rows = entries
    .map(
      (e) =>
        `<tr><td class="nowrap" data-label="Lúc">${vnDateTime(e.at)}</td><td data-label="Người thực hiện">${escapeHtml(e.actor)}</td><td data-label="Thao tác">${escapeHtml(AUDIT_ACTIONS[e.action] ?? e.action)} <small class="muted">${escapeHtml(e.action)}</small></td><td data-label="Đối tượng">${escapeHtml(targetText(e.target, schoolNames))}</td>${e.before === null ? '<td class="empty"></td>' : `<td class="detail" data-label="Trước">${auditDetail(e.before, schoolNames)}</td>`}${e.after === null ? '<td class="empty"></td>' : `<td class="detail" data-label="Sau">${auditDetail(e.after, schoolNames)}</td>`}</tr>`,
    )
    .join('\n');
  return shell(
    'audit',
    'Nhật ký thay đổi',
    user,
    csrf,
    `<table id="audit" class="cards"><thead><tr><th>Lúc (giờ Việt Nam)</th><th>Người thực hiện</th><th>Thao tác</th><th>Đối tượng</th><th>Trước</th><th>Sau</th></tr></thead><tbody>
${rows || '<tr><td colspan="6">Chưa có thay đổi nào.</td></tr>'}
</tbody></table>`,
  );
}

export function errorPage(status: number, message: string, back = '/'): string {
  return document(
    'Lỗi',
    `<body class="login"><main class="card"><h1>${status}</h1><p>${escapeHtml(message)}</p><p><a href="${escapeHtml(back)}">Quay lại</a></p></main></body>`,
  );
}
