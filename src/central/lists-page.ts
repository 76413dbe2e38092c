import { escapeHtml } from './dashboard/pages.js';
import type { MirroredList, SchoolListStatus } from './lists-mirror.js';

function when(time: number | null, now: number): string {
  if (time === null) return 'chưa bao giờ';
  const minutes = Math.floor((now - time) / 60_000);
  if (minutes < 1) return 'vừa xong';
  if (minutes < 60) return `${minutes} phút trước`;
  const hours = Math.floor(minutes / 60);
  return hours < 48 ? `${hours} giờ trước` : `${Math.floor(hours / 24)} ngày trước`;
}

/**
 * `/lists` on the district dashboard: the lists the collector mirrors, and every
 * school's version of each, stale ones flagged (a school whose lists lag filters with
 * old lists: IT staff call the school).
 */
export function listsPage(
  lists: readonly MirroredList[],
  schools: readonly { id: string; name: string; lists: readonly SchoolListStatus[] }[],
  now = Date.now(),
): string {
  const listRows = lists
    .map(
      (l) =>
        `<tr><th scope="row">${escapeHtml(l.name)}</th><td>${escapeHtml(l.category)}</td><td><code>${escapeHtml(l.version ?? '—')}</code></td><td>${l.entries}</td><td>${when(l.checkedAt, now)}</td><td>${escapeHtml(l.refresh)}</td><td>${l.lastError === null ? '' : `<span class="error">${escapeHtml(`[${l.lastError.code}] ${l.lastError.message}`)}</span>`}</td></tr>`,
    )
    .join('\n');
  const staleCount = schools.filter((s) => s.lists.some((l) => l.stale)).length;
  const schoolRows = schools
    .map((s) => {
      const cells = s.lists
        .map(
          (l) =>
            `<td${l.stale ? ' class="stale" data-stale="1"' : ''}><code>${escapeHtml(l.version ?? '—')}</code> ${l.stale ? '<strong>CŨ</strong> ' : ''}<small>${when(l.seenAt, now)}</small></td>`,
        )
        .join('');
      return `<tr data-school="${escapeHtml(s.id)}"><th scope="row">${escapeHtml(s.name)}</th>${cells}</tr>`;
    })
    .join('\n');
  return `<!DOCTYPE html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Danh sách chặn đăng ký — Lá chắn</title>
<link rel="stylesheet" href="/assets/app.css">
<style>td.stale{background:#fde8e8}.error{color:#b00020}.scroll{overflow-x:auto}</style>
</head>
<body data-page="lists">
<header><strong>Lá chắn</strong><nav><a href="/">← Tổng quan</a></nav></header>
<main>
<h1>Danh sách chặn đăng ký</h1>
<p>Máy chủ quận/huyện tải mỗi danh sách một lần rồi cấp cho các trường; trường chỉ tải phần thay đổi.</p>
<div class="scroll"><table>
<thead><tr><th>Danh sách</th><th>Danh mục</th><th>Phiên bản</th><th>Số mục</th><th>Kiểm tra</th><th>Làm mới</th><th>Lỗi gần nhất</th></tr></thead>
<tbody>
${listRows || '<tr><td colspan="7">Chưa đăng ký danh sách nào (lists.yaml của máy chủ).</td></tr>'}
</tbody></table></div>
<h2>Phiên bản tại các trường</h2>
<p>${staleCount === 0 ? 'Mọi trường đều có danh sách mới.' : `<strong>${staleCount} trường</strong> có danh sách cũ (không hỏi lại sau hai chu kỳ làm mới, hoặc chưa nhận được phiên bản mới).`}</p>
<div class="scroll"><table>
<thead><tr><th>Trường</th>${lists.map((l) => `<th>${escapeHtml(l.name)}</th>`).join('')}</tr></thead>
<tbody>
${schoolRows}
</tbody></table></div>
</main>
</body>
</html>`;
}
