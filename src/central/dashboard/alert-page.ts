import type { Principal } from '../accounts.js';
import { ALERT_CATEGORY_LABELS, type CentralAlert, SEVERITY_LABELS, severityRank, STATUS_LABELS } from '../alerts.js';
import { escapeHtml, shell } from './pages.js';
import { vnDateTime } from './vn-time.js';

/** Open alerts first; among them the most severe, then the most recent. */
export function queueOrder(a: CentralAlert, b: CentralAlert): number {
  const closed = Number(a.status === 'closed') - Number(b.status === 'closed');
  if (closed !== 0) return closed;
  const severity = severityRank(b.severity) - severityRank(a.severity);
  return severity !== 0 ? severity : b.lastTime - a.lastTime;
}

function actions(alert: CentralAlert, csrf: string): string {
  const target = `/alerts/${encodeURIComponent(alert.school)}/${encodeURIComponent(alert.ref)}`;
  const button = (status: string, label: string) => `<button type="submit" name="status" value="${status}">${label}</button>`;
  const buttons =
    alert.status === 'new'
      ? button('acknowledged', 'Tiếp nhận') + button('closed', 'Đóng')
      : alert.status === 'acknowledged'
        ? button('closed', 'Đóng')
        : button('acknowledged', 'Mở lại');
  return `<form method="post" action="${target}" class="alert-action">
<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">
<label>Ghi chú <textarea name="note" maxlength="2000" rows="2" placeholder="Việc đã làm; không ghi tên học sinh">${escapeHtml(alert.note ?? '')}</textarea></label>
${buttons}
</form>`;
}

/**
 * The counsellor's queue: each alert with when (Vietnam time), how severe, what kind,
 * what raised it and the device's pseudonym, which only the school's gateway can
 * resolve (`lachan alerts resolve`); a form to acknowledge or close it with a note.
 */
export function alertsPage(user: Principal, csrf: string, alerts: readonly CentralAlert[], done: string | null): string {
  const everySchool = user.school === null;
  const rows = [...alerts].sort(queueOrder).map(
    (a) => `<tr data-ref="${escapeHtml(a.ref)}" data-status="${a.status}" class="severity-${a.severity}">
<td>${vnDateTime(a.lastTime)}${a.lastTime === a.time ? '' : `<br><small>từ ${vnDateTime(a.time)}</small>`}</td>
${everySchool ? `<td>${escapeHtml(a.schoolName ?? a.school)}</td>` : ''}
<td class="severity">${SEVERITY_LABELS[a.severity]}</td>
<td>${ALERT_CATEGORY_LABELS[a.category]}</td>
<td class="trigger">${escapeHtml(a.trigger)}${a.host === '' ? '' : `<br><small>${escapeHtml(a.host)}</small>`}</td>
<td><code class="device">${escapeHtml(a.device)}</code></td>
<td class="signals">${a.count}</td>
<td class="status">${STATUS_LABELS[a.status]}${a.note === null || a.note === '' ? '' : `<br><small class="note">${escapeHtml(a.note)}</small>`}</td>
<td>${actions(a, csrf)}</td>
</tr>`,
  );
  const notice =
    done === null
      ? ''
      : `<p class="notice done" role="status">${done === 'closed' ? 'Đã đóng cảnh báo.' : done === 'acknowledged' ? 'Đã tiếp nhận cảnh báo.' : 'Đã lưu.'}</p>`;
  return shell(
    'alerts',
    'Cảnh báo an toàn',
    user,
    csrf,
    `${notice}
<p>Máy chủ huyện không biết học sinh là ai: mã thiết bị là mã ẩn danh; cán bộ CNTT của trường tra ra thiết bị bằng lệnh <code>lachan alerts resolve MÃ</code> trên máy chủ lọc của trường, và lần tra đó được ghi lại.</p>
${
  rows.length === 0
    ? '<p class="empty">Chưa có cảnh báo nào.</p>'
    : `<div class="scroll"><table class="alerts">
<thead><tr><th>Thời gian</th>${everySchool ? '<th>Trường</th>' : ''}<th>Mức độ</th><th>Nhóm</th><th>Nội dung kích hoạt</th><th>Mã thiết bị</th><th>Số tín hiệu</th><th>Trạng thái</th><th>Xử lý</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table></div>`
}`,
  );
}
