import { formatVietnamTime } from '../privacy/vietnam-time.js';
import { escapeHtml, page } from '../proxy/pages.js';
import { OVERRIDE_DEFAULT_MINUTES, OVERRIDE_MAX_MINUTES, EXAM_MAX_MINUTES } from './service.js';
import type { ExamEntry, OverrideEntry } from './store.js';

/**
 * The staff page's HTML (docs/classroom.md), in Vietnamese, for teachers: the login
 * form, and the page that starts and ends exams and overrides. Every form posts to
 * the path the page was reached on; every form after login carries the CSRF token.
 */

export const CLASSROOM_TITLE = 'Lớp học: giờ kiểm tra và mở trang';

/** Text fields as wide as the card, large enough to type in on a phone (the shared style sizes only URL fields). */
const FIELDS_STYLE = '<style>input:not([type=hidden]){width:100%;box-sizing:border-box;font-size:1rem;padding:.3rem}</style>';

export function loginPage(action: string, error: string | null, school: string | null): string {
  return page(
    CLASSROOM_TITLE,
    `${FIELDS_STYLE}<h1>Đăng nhập cho thầy cô</h1>
${notice(error, true)}<section class="card"><form method="post" action="${escapeHtml(action)}">
<input type="hidden" name="do" value="login">
<p><label>Tên tài khoản<br><input name="name" required maxlength="64" autocomplete="username"></label></p>
<p><label>Mật khẩu<br><input name="password" type="password" required maxlength="200" autocomplete="current-password"></label></p>
<button type="submit">Đăng nhập</button></form>
<p><small>Tài khoản do cán bộ tin học của trường tạo (<code>lachan users add</code>).</small></p></section>`,
    school,
  );
}

export function forbiddenPage(school: string | null): string {
  return page(
    'Trang dành cho thầy cô',
    '<h1>Trang này dành cho thầy cô</h1><section class="card"><p>Chỉ máy của thầy cô mới mở được trang quản lý lớp học.</p></section>',
    school,
  );
}

export interface ClassroomView {
  readonly action: string;
  readonly user: string;
  readonly csrf: string;
  readonly exams: readonly ExamEntry[];
  readonly overrides: readonly OverrideEntry[];
  /** Profiles a teacher may open a host for: [id, name]. */
  readonly profiles: readonly (readonly [string, string])[];
  readonly message: string | null;
  readonly isError: boolean;
  readonly school: string | null;
}

export function classroomPage(view: ClassroomView): string {
  const action = escapeHtml(view.action);
  const hidden = (what: string): string => `<input type="hidden" name="do" value="${what}"><input type="hidden" name="csrf" value="${escapeHtml(view.csrf)}">`;
  const endButton = (id: string, label: string): string =>
    `<form method="post" action="${action}" style="display:inline">${hidden('end')}<input type="hidden" name="id" value="${escapeHtml(id)}"><button type="submit">${label}</button></form>`;
  const exams = view.exams.map(
    (e) => `<li>Phòng <b>${escapeHtml(e.room)}</b>: đến ${until(e.endsAt)} (${escapeHtml(e.by)}) ${endButton(e.id, 'Kết thúc sớm')}</li>`,
  );
  const overrides = view.overrides.map((o) => {
    const scope = 'profile' in o.scope ? `nhóm ${escapeHtml(nameOf(view.profiles, o.scope.profile))}` : `phòng ${escapeHtml(o.scope.room)}`;
    return `<li><b>${escapeHtml(o.host)}</b> cho ${scope}: đến ${until(o.endsAt)}, lý do: ${escapeHtml(o.reason)} (${escapeHtml(o.by)}) ${endButton(o.id, 'Đóng lại')}</li>`;
  });
  const options = view.profiles.map(([id, name]) => `<option value="${escapeHtml(id)}">${escapeHtml(name)}</option>`).join('');
  const body = `<h1>${CLASSROOM_TITLE}</h1>
${FIELDS_STYLE}<p>Thầy cô: <b>${escapeHtml(view.user)}</b></p>
<form method="post" action="${action}">${hidden('logout')}<button type="submit">Đăng xuất</button></form>
${notice(view.message, view.isError)}<section class="card"><h2>Đang có hiệu lực</h2>
${exams.length === 0 && overrides.length === 0 ? '<p>Không có giờ kiểm tra hay trang nào đang được mở.</p>' : ''}
${exams.length === 0 ? '' : `<p>Giờ kiểm tra:</p><ul>${exams.join('')}</ul>`}
${overrides.length === 0 ? '' : `<p>Trang được mở:</p><ul>${overrides.join('')}</ul>`}</section>
<section class="card"><h2>Bắt đầu giờ kiểm tra</h2>
<p>Trong giờ kiểm tra, máy trong phòng chỉ mở được các trang học tập của danh sách thi (rules/exam-allow). Giờ kiểm tra tự kết thúc khi hết giờ.</p>
<form method="post" action="${action}">${hidden('exam-start')}
<p><label>Dải địa chỉ của phòng<br><input name="room" required placeholder="10.1.2.0/24" maxlength="64"></label></p>
<p><label>Thời gian (phút, tối đa ${EXAM_MAX_MINUTES})<br><input name="minutes" inputmode="numeric" value="45" maxlength="4"></label></p>
<button type="submit">Bắt đầu giờ kiểm tra</button></form></section>
<section class="card"><h2>Mở một trang bị chặn cho tiết học</h2>
<form method="post" action="${action}">${hidden('override-start')}
<p><label>Trang web<br><input name="host" required placeholder="youtube.com" maxlength="253"></label></p>
<p><label>Cho nhóm học sinh<br><select name="profile">${options}</select></label></p>
<p><label>hoặc chỉ cho một phòng (dải địa chỉ, bỏ trống nếu mở cho cả nhóm)<br><input name="room" placeholder="10.1.2.0/24" maxlength="64"></label></p>
<p><label>Thời gian (phút, tối đa ${OVERRIDE_MAX_MINUTES})<br><input name="minutes" inputmode="numeric" value="${OVERRIDE_DEFAULT_MINUTES}" maxlength="4"></label></p>
<p><label>Lý do (bắt buộc)<br><textarea name="reason" required maxlength="200"></textarea></label><br>
<small class="warn">Không ghi họ tên học sinh: lý do được gửi lên Phòng GD&amp;ĐT.</small></p>
<button type="submit">Mở trang</button></form></section>`;
  return page(CLASSROOM_TITLE, body, view.school);
}

function notice(message: string | null, isError: boolean): string {
  if (message === null) return '';
  return `<section class="card${isError ? ' error' : ''}" role="${isError ? 'alert' : 'status'}"><p>${escapeHtml(message)}</p></section>`;
}

function until(ms: number): string {
  return `${escapeHtml(formatVietnamTime(ms).slice(11))} (giờ Việt Nam)`;
}

function nameOf(profiles: readonly (readonly [string, string])[], id: string): string {
  return profiles.find(([candidate]) => candidate === id)?.[1] ?? id;
}
