import type { Principal } from '../accounts.js';
import { SCOPE_WORDS, scopedValue, scopeOf, type PolicyRule, type PolicyVersion } from '../district-policy.js';
import type { ReviewRequestRow } from '../reviews.js';
import type { School } from '../store.js';
import { categoryLabel, profileLabel } from '../../util/labels.js';
import { escapeHtml, shell } from './pages.js';

/** Server-rendered pages of the review queue and the district policy: plain forms, so they work without script. */

import { vnDateTime as vnTime } from './vn-time.js';

function options(values: readonly string[], selected: string | null, label: (v: string) => string): string {
  return values.map((v) => `<option value="${escapeHtml(v)}"${v === selected ? ' selected' : ''}>${escapeHtml(label(v))}</option>`).join('');
}

/** People choose by the Vietnamese name; a name with no label (a school's own category) shows as written. */
const nameWithId = (label: (v: string) => string) => (v: string) => label(v);

const NOTICES: Readonly<Record<string, string>> = {
  approved: 'Đã chấp thuận. Cổng lọc của các trường liên quan sẽ áp dụng trong vòng một phút.',
  rejected: 'Đã từ chối đề nghị.',
  blocked: 'Đã chặn trang. Cổng lọc của các trường liên quan sẽ áp dụng trong vòng một phút.',
  added: 'Đã thêm quy tắc: một phiên bản chính sách mới đã được tạo.',
  exists: 'Quy tắc này đã có: không tạo phiên bản mới.',
  removed: 'Đã bỏ quy tắc: một phiên bản chính sách mới đã được tạo.',
};

function notice(key: string | null): string {
  const text = key === null ? undefined : NOTICES[key];
  return text === undefined ? '' : `<p class="notice" role="status">${text}</p>`;
}

const STATUS: Readonly<Record<string, string>> = {
  open: 'Đang chờ',
  approved: 'Đã chấp thuận',
  rejected: 'Đã từ chối',
  blocked: 'Đã chặn',
};

export interface ReviewsPageInput {
  readonly user: Principal;
  readonly csrf: string;
  readonly status: 'open' | 'decided' | 'all';
  readonly requests: readonly ReviewRequestRow[];
  readonly openCount: number;
  readonly profiles: readonly string[];
  readonly categories: readonly string[];
  readonly notice: string | null;
}

export function reviewsPage(input: ReviewsPageInput): string {
  const { user, csrf } = input;
  const canAct = user.role !== 'viewer';
  const scopeSelect = (request: ReviewRequestRow) =>
    `<select name="scope" aria-label="Phạm vi"><option value="school">Chỉ ${escapeHtml(request.schoolName ?? request.school)}</option>${user.school === null ? '<option value="all">Mọi trường</option>' : ''}</select>`;
  const hidden = `<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">`;
  // What an approval opens, narrowest first and preselected: the page, its folder, the site.
  const matchSelect = (r: ReviewRequestRow) => {
    const choice = (match: 'page' | 'path' | 'site', label: string) =>
      `<option value="${match}"${match === 'page' ? ' selected' : ''}>${label}: ${escapeHtml(scopedValue(r.host, r.path, match).value)}</option>`;
    return `<select name="match" aria-label="Mở đến đâu">${choice('page', 'Chỉ trang này')}${choice('path', 'Cả thư mục')}${choice('site', 'Cả trang web')}</select>`;
  };
  const keywordsSelect =
    '<select name="keywords" aria-label="Từ khóa"><option value="on" selected>Từ khóa vẫn chặn (tìm kiếm, trang khác)</option><option value="off">Không xét từ khóa ở đây</option></select>';

  const actions = (r: ReviewRequestRow): string => {
    if (r.status !== 'open') {
      const rule = r.ruleId === null ? '' : ` · <a href="/policy#rule-${r.ruleId}">quy tắc #${r.ruleId}</a>`;
      return `<span>${STATUS[r.status] ?? r.status}</span><br><small class="muted">${escapeHtml(r.decidedBy ?? '')}${r.decidedAt === null ? '' : `, ${vnTime(r.decidedAt)}`}${rule}</small>${r.decisionNote === null ? '' : `<br><small>${escapeHtml(r.decisionNote)}</small>`}`;
    }
    if (!canAct) return STATUS.open!;
    const action = `/api/v1/reviews/${r.seq}`;
    const reject = `<form method="post" action="${action}" class="reject">${hidden}<input type="hidden" name="action" value="reject"><input name="reason" required placeholder="Lý do từ chối" aria-label="Lý do từ chối"><button type="submit">Từ chối</button></form>`;
    if (r.kind === 'review') {
      return `<div class="actions"><form method="post" action="${action}" class="approve">${hidden}<input type="hidden" name="action" value="approve"><select name="profile" aria-label="Nhóm được mở">${options(input.profiles, r.profile, nameWithId(profileLabel))}</select>${matchSelect(r)}${keywordsSelect}${scopeSelect(r)}<button type="submit">Chấp thuận (mở trang)</button></form>${reject}</div>`;
    }
    return `<div class="actions"><form method="post" action="${action}" class="block">${hidden}<input type="hidden" name="action" value="block"><select name="category" aria-label="Danh mục">${options(input.categories, r.category, nameWithId(categoryLabel))}</select>${scopeSelect(r)}<button type="submit">Chặn trang</button></form>${reject}</div>`;
  };

  const rows = input.requests
    .map(
      (r) => `<tr data-seq="${r.seq}" data-host="${escapeHtml(r.host)}" data-kind="${r.kind}" data-status="${r.status}">
<td data-label="Lúc">${vnTime(r.time)}</td><td data-label="Trường">${escapeHtml(r.schoolName ?? r.school)}</td>
<td>${r.kind === 'review' ? 'Đề nghị mở' : '<span class="kind-report">Báo cáo trang có hại</span>'}</td>
<td class="page"><b>${escapeHtml(r.host)}</b>${r.path === '/' ? '' : `<br><small>${escapeHtml(r.path)}</small>`}${r.count > 1 ? `<br><span class="count" data-count="${r.count}">${r.count} lượt đề nghị giống nhau</span>` : ''}</td>
<td data-label="Danh mục">${escapeHtml(r.category === null ? '—' : categoryLabel(r.category))}</td><td data-label="Nhóm">${escapeHtml(profileLabel(r.profile))}</td>
<td data-label="Ghi chú">${r.notes.length === 0 ? '—' : r.notes.map(escapeHtml).join('<br>')}</td><td data-label="Mã tham chiếu">${escapeHtml(r.reference ?? '—')}</td><td>${actions(r)}</td></tr>`,
    )
    .join('\n');
  const tab = (status: string, label: string) => `<a href="/reviews?status=${status}"${status === input.status ? ' aria-current="page"' : ''}>${label}</a>`;
  return shell(
    'reviews',
    'Đề nghị & báo cáo',
    user,
    csrf,
    `${notice(input.notice)}<p class="hint">Đề nghị mở trang từ trang chặn, và báo cáo trang có hại chưa bị chặn, do học sinh và giáo viên gửi qua cổng lọc của trường. Chấp thuận hoặc chặn sẽ thêm một quy tắc vào chính sách chung của các trường.</p>
<nav class="tabs">${tab('open', `Đang chờ (${input.openCount})`)}${tab('decided', 'Đã xử lý')}${tab('all', 'Tất cả')}</nav>
<table id="reviews" class="cards"><thead><tr><th>Thời gian</th><th>Trường</th><th>Loại</th><th>Trang</th><th>Danh mục</th><th>Nhóm</th><th>Ghi chú</th><th>Mã tham chiếu</th><th>Xử lý</th></tr></thead><tbody>
${rows || '<tr><td colspan="9">Không có đề nghị nào.</td></tr>'}
</tbody></table>`,
  );
}

/** The kind column of the rules table: a keyword, or how much of a site, and for an allow whether keywords still apply. */
function ruleKindLabel(rule: PolicyRule): string {
  if (rule.kind === 'keyword') return 'Từ khóa';
  const scope = SCOPE_WORDS[scopeOf(rule)];
  const what = scope.charAt(0).toUpperCase() + scope.slice(1);
  if (rule.action !== 'allow') return what === 'Cả trang web' ? 'Tên miền' : what;
  return `${what} <small class="muted">(${rule.keywords ? 'từ khóa vẫn chặn' : 'không xét từ khóa'})</small>`;
}

/**
 * A history line names the school, age group and category as stored when the rule was
 * made (ids and slugs); people read their names.
 */
function withSchoolNames(summary: string, names: ReadonlyMap<string, string>): string {
  return summary
    .replace(/nhóm ([a-z0-9_.-]+)/, (_whole, id: string) => `nhóm ${profileLabel(id)}`)
    .replace(/danh mục ([a-z0-9_.-]+)/, (_whole, id: string) => `danh mục ${categoryLabel(id)}`)
    .replace(/trường (\S+)$/, (whole, id: string) => names.get(id) ?? whole);
}

export interface PolicyPageInput {
  readonly user: Principal;
  readonly csrf: string;
  readonly version: number;
  readonly rules: readonly PolicyRule[];
  readonly versions: readonly PolicyVersion[];
  readonly schools: readonly School[];
  readonly profiles: readonly string[];
  readonly categories: readonly string[];
  readonly publicKeyPem: string;
  readonly fingerprint: string;
  readonly notice: string | null;
}

export function policyPage(input: PolicyPageInput): string {
  const { user, csrf } = input;
  const admin = user.role === 'admin';
  const schoolName = new Map(input.schools.map((s) => [s.id, s.name]));
  const hidden = `<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">`;
  const rows = input.rules
    .map(
      (
        r,
      ) => `<tr id="rule-${r.id}" data-rule="${r.id}" data-value="${escapeHtml(r.value)}"><td data-label="#">${r.id}</td><td data-label="Hành động">${r.action === 'allow' ? 'Cho phép' : 'Chặn'}</td><td data-label="Loại">${ruleKindLabel(r)}</td><td class="value"><b>${escapeHtml(r.value)}</b></td>
<td data-label="Áp dụng cho">${r.profile !== null ? `Nhóm: ${escapeHtml(profileLabel(r.profile))}` : `Danh mục: ${escapeHtml(categoryLabel(r.category))}`}</td>
<td data-label="Phạm vi">${r.school === null ? 'Mọi trường' : escapeHtml(schoolName.get(r.school) ?? r.school)}</td><td data-label="Ghi chú">${escapeHtml(r.note || '—')}</td>
<td data-label="Người tạo">${escapeHtml(r.createdBy)}, <span class="muted nowrap">${vnTime(r.createdAt)}</span></td>
<td>${admin ? `<form method="post" action="/api/v1/district-policy/rules/${r.id}/remove">${hidden}<button type="submit">Bỏ</button></form>` : ''}</td></tr>`,
    )
    .join('\n');
  const history = input.versions
    .map(
      (v) =>
        `<tr><td data-label="Phiên bản">v${v.version}</td><td class="nowrap" data-label="Lúc">${vnTime(v.at)}</td><td data-label="Người thực hiện">${escapeHtml(v.actor)}</td><td data-label="Thay đổi">${escapeHtml(withSchoolNames(v.summary, schoolName))}</td></tr>`,
    )
    .join('\n');
  const addForm = admin
    ? `<section><h2>Thêm quy tắc</h2>
<form method="post" action="/api/v1/district-policy/rules" class="filters" id="add-rule">${hidden}
<label>Hành động <select name="action"><option value="block">Chặn</option><option value="allow">Cho phép (trang, thư mục hoặc tên miền, theo nhóm)</option></select></label>
<label>Loại <select name="kind"><option value="domain">Tên miền (cả trang web)</option><option value="page">Một trang (cho phép)</option><option value="path">Một thư mục (cho phép)</option><option value="keyword">Từ khóa</option></select></label>
<label>Tên miền, địa chỉ trang hoặc từ khóa <input name="value" required placeholder="vd: lode88.example"></label>
<label>Khi cho phép ${'<select name="keywords"><option value="on" selected>Từ khóa vẫn chặn</option><option value="off">Không xét từ khóa</option></select>'}</label>
<label>Nhóm (profile) <select name="profile"><option value="">—</option>${options(input.profiles, null, nameWithId(profileLabel))}</select></label>
<label>hoặc Danh mục <select name="category"><option value="">—</option>${options(input.categories, null, nameWithId(categoryLabel))}</select></label>
<label>Phạm vi <select name="school"><option value="">Mọi trường</option>${input.schools
        .filter((s) => s.revokedAt === null)
        .map((s) => `<option value="${escapeHtml(s.id)}">${escapeHtml(s.name)}</option>`)
        .join('')}</select></label>
<label>Ghi chú <input name="note" placeholder="Lý do"></label>
<button type="submit">Thêm</button>
</form>
<p class="hint">Chọn một nhóm (quy tắc áp dụng cho nhóm đó) hoặc một danh mục (mọi nhóm đang chặn danh mục đó sẽ chặn thêm). Mỗi thay đổi tạo một phiên bản mới, được ký và gửi tới cổng lọc các trường trong vòng một phút.</p>
</section>`
    : '';
  return shell(
    'policy',
    'Chính sách chung',
    user,
    csrf,
    `${notice(input.notice)}<section><p>Phiên bản hiện tại: <b id="policy-version">v${input.version}</b>. Cổng lọc của trường hỏi phiên bản mới mỗi phút, kiểm tra chữ ký rồi áp dụng lên trên quy tắc của trường.</p>
<details><summary>Khóa công khai để cài vào cổng lọc (dấu vân tay <code>${escapeHtml(input.fingerprint)}</code>)</summary>
<p class="hint">Lưu nội dung dưới đây thành tệp trên cổng lọc của trường và chạy <code>lachan serve --central-key TỆP</code>. Đọc dấu vân tay cho cán bộ trường để kiểm tra.</p>
<pre>${escapeHtml(input.publicKeyPem)}</pre></details></section>
<section><h2>Quy tắc đang áp dụng</h2>
<table id="rules" class="cards"><thead><tr><th>#</th><th>Hành động</th><th>Loại</th><th>Giá trị</th><th>Áp dụng cho</th><th>Phạm vi</th><th>Ghi chú</th><th>Người tạo</th><th></th></tr></thead><tbody>
${rows || '<tr><td colspan="9">Chưa có quy tắc nào.</td></tr>'}
</tbody></table></section>
${addForm}
<section><h2>Lịch sử phiên bản</h2>
<table id="versions" class="cards"><thead><tr><th>Phiên bản</th><th>Lúc</th><th>Người thực hiện</th><th>Thay đổi</th></tr></thead><tbody>
${history || '<tr><td colspan="4">Chưa có thay đổi nào.</td></tr>'}
</tbody></table></section>`,
  );
}
