/**
 * The pages the proxy itself serves, in Vietnamese: the block page (SPEC §4) and the
 * error pages. Plain HTML with inline CSS, readable on a phone, nothing fetched from
 * elsewhere (the network that shows them may be the one failing).
 */

import { categoryLabel, SHIPPED_CATEGORIES } from '../util/labels.js';
import { TRUST_FOOTER } from './trust-probe.js';

export { categoryLabel };

/** Paths the proxy answers itself on any host, so that a block page's form reaches it. */
export const REVIEW_PATH = '/__lachan__/review';
export const REPORT_PATH = '/__lachan__/report';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:0;background:#f4f6f8;color:#1d2733}
main{max-width:36rem;margin:0 auto;padding:1.5rem 1rem}
h1{font-size:1.5rem;margin:.2rem 0 1rem}
.card{background:#fff;border-radius:.6rem;padding:1rem 1.2rem;margin:0 0 1rem;box-shadow:0 1px 3px #0002}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:0}dt{color:#5a6877}dd{margin:0;word-break:break-all}
.help{border-left:.4rem solid #0a7d4f}.help strong{font-size:1.25rem}
a.tel{display:inline-block;margin:.2rem .4rem .2rem 0;padding:.5rem .8rem;border-radius:.4rem;background:#0a7d4f;color:#fff;text-decoration:none;font-weight:600}
textarea,input[type=url],select{width:100%;box-sizing:border-box;font-size:1rem;padding:.3rem}textarea{min-height:4rem}button{padding:.5rem 1rem;font-size:1rem}
.error{border-left:.4rem solid #b3261e}
small{color:#5a6877}`;

/** A whole page of the gateway's own: the other gateway pages (install guide) use it too. */
export function page(status: number, title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><main>${body}<p><small>Lá chắn — bộ lọc nội dung của trường · mã ${status}</small></p></main></body></html>`;
}

const HOTLINES = `<p>Nếu em đang gặp chuyện buồn, bị bắt nạt hay cần người lắng nghe, hãy gọi miễn phí:</p>
<p><a class="tel" href="tel:111">111 — Tổng đài quốc gia bảo vệ trẻ em</a>
<a class="tel" href="tel:18001776">1800 1776 — Đường dây hỗ trợ Yên Bái</a></p>
<p><small>Cả hai số đều miễn phí, hoạt động cả ngày lẫn đêm.</small></p>`;

export interface BlockPageInput {
  readonly host: string;
  readonly category: string | null;
  readonly profileName: string;
  readonly profileId: string;
  readonly reference: string;
}

const HOST_SLOT = '\u0000H\u0000';
const REFERENCE_SLOT = '\u0000R\u0000';
const SLOT = /\u0000([HR])\u0000/;
const TEMPLATE_LIMIT = 1024;
/** Pieces of a rendered page; odd indexes are slots ('H' host, 'R' reference). */
const templates = new Map<string, readonly string[]>();

/**
 * The block page of SPEC §4, from a template rendered once per (category, profile)
 * and filled with the host and the event reference by concatenation.
 */
export function blockPage(input: BlockPageInput): string {
  const key = `${input.category ?? ''}\u0000${input.profileId}\u0000${input.profileName}`;
  let pieces = templates.get(key);
  if (pieces === undefined) {
    pieces = renderBlockPage({ ...input, host: HOST_SLOT, reference: REFERENCE_SLOT }).split(SLOT);
    if (templates.size >= TEMPLATE_LIMIT) templates.clear();
    templates.set(key, pieces);
  }
  const host = escapeHtml(input.host);
  const reference = escapeHtml(input.reference);
  let html = pieces[0]!;
  for (let i = 1; i < pieces.length; i += 2) html += (pieces[i] === 'H' ? host : reference) + pieces[i + 1]!;
  return html;
}

/** Self-harm puts help first: the child may be at risk. */
function renderBlockPage(input: BlockPageInput): string {
  const host = escapeHtml(input.host);
  const category = escapeHtml(categoryLabel(input.category));
  const selfHarm = input.category === 'self-harm';
  const help = `<section class="card help">${selfHarm ? '<p><strong>Em không một mình. Có người sẵn sàng lắng nghe em.</strong></p>' : ''}${HOTLINES}</section>`;
  const details = `<section class="card"><dl>
<dt>Trang web</dt><dd>${host}</dd>
<dt>Lý do</dt><dd>${category}</dd>
<dt>Nhóm truy cập</dt><dd>${escapeHtml(input.profileName)}</dd>
<dt>Mã tham chiếu</dt><dd>${escapeHtml(input.reference)}</dd>
</dl></section>`;
  const review = `<section class="card"><form method="post" action="${REVIEW_PATH}">
<p>Nếu em nghĩ trang này cần cho việc học, hãy đề nghị thầy cô xem lại:</p>
<input type="hidden" name="ref" value="${escapeHtml(input.reference)}">
<input type="hidden" name="host" value="${host}">
<input type="hidden" name="category" value="${escapeHtml(input.category ?? '')}">
<input type="hidden" name="profile" value="${escapeHtml(input.profileId)}">
<p><label>Ghi chú (không bắt buộc)<br><textarea name="note" maxlength="500"></textarea></label></p>
<button type="submit">Đề nghị xem lại</button></form>
<p><small><a href="${REPORT_PATH}">Báo cáo một trang có hại khác chưa bị chặn</a></small></p>${TRUST_FOOTER}</section>`;
  const title = selfHarm ? 'Em có thể cần được giúp đỡ' : 'Trang này đã bị chặn';
  const intro = selfHarm
    ? '<h1>Em có thể cần được giúp đỡ</h1>'
    : `<h1>Trang này đã bị chặn</h1><p>Mạng của trường không cho phép mở <b>${host}</b> vì nội dung không phù hợp với lứa tuổi học sinh.</p>`;
  return page(403, title, selfHarm ? `${intro}${help}${details}${review}` : `${intro}${details}${review}${help}`);
}

export function reviewThanksPage(): string {
  return page(200, 'Đã gửi đề nghị', `<h1>Đã gửi đề nghị xem lại</h1><section class="card"><p>Thầy cô phụ trách sẽ xem xét. Cảm ơn em.</p>
<p><small><a href="${REPORT_PATH}">Báo cáo một trang có hại chưa bị chặn</a></small></p></section>`);
}

export interface ReportFormInput {
  /** What the person typed, shown again after an error. */
  readonly url?: string;
  readonly category?: string;
  readonly note?: string;
  /** Why the last submission was refused, in Vietnamese. */
  readonly error?: string;
  /** Where the form posts: REPORT_PATH on a proxied host, the origin-form path on the proxy itself. */
  readonly action?: string;
}

/**
 * "Report a harmful page that was not blocked" (issue 6): the URL, an optional
 * category and note. It goes to the district's review queue, where an administrator
 * can block the host in a category.
 */
export function reportPage(input: ReportFormInput = {}): string {
  const chosen = input.category ?? '';
  const options = ['<option value="">Không rõ / khác</option>']
    .concat(SHIPPED_CATEGORIES.map((id) => `<option value="${escapeHtml(id)}"${id === chosen ? ' selected' : ''}>${escapeHtml(categoryLabel(id))}</option>`))
    .join('');
  const error = input.error === undefined ? '' : `<section class="card error" role="alert"><p>${escapeHtml(input.error)}</p></section>`;
  const body = `<h1>Báo cáo trang có hại</h1>
<p>Em thấy một trang web có nội dung không phù hợp mà mạng của trường chưa chặn? Hãy gửi địa chỉ trang để thầy cô và Phòng Giáo dục xem xét.</p>
${error}<section class="card"><form method="post" action="${escapeHtml(input.action ?? REPORT_PATH)}">
<p><label>Địa chỉ trang web<br><input type="url" name="url" required maxlength="2000" placeholder="https://…" value="${escapeHtml(input.url ?? '')}"></label></p>
<p><label>Loại nội dung<br><select name="category">${options}</select></label></p>
<p><label>Ghi chú (không bắt buộc)<br><textarea name="note" maxlength="500">${escapeHtml(input.note ?? '')}</textarea></label></p>
<p><small>Không ghi họ tên, số điện thoại hay thông tin cá nhân của em hoặc của người khác.</small></p>
<button type="submit">Gửi báo cáo</button></form></section>
<section class="card help">${HOTLINES}</section>`;
  return page(input.error === undefined ? 200 : 400, 'Báo cáo trang có hại', body);
}

export function reportThanksPage(): string {
  return page(200, 'Đã gửi báo cáo', '<h1>Đã gửi báo cáo</h1><section class="card"><p>Cảm ơn em. Thầy cô và Phòng Giáo dục sẽ xem xét trang này.</p></section>');
}

export type ErrorKind = 'bad-request' | 'too-many-requests' | 'auth-required' | 'headers-too-large' | 'port' | 'forbidden-destination' | 'dns' | 'connect' | 'timeout' | 'upstream-certificate';

const ERRORS: Readonly<Record<ErrorKind, { status: number; title: string; text: string }>> = {
  'bad-request': { status: 400, title: 'Yêu cầu không hợp lệ', text: 'Trình duyệt đã gửi một yêu cầu mà bộ lọc không hiểu được.' },
  'too-many-requests': { status: 429, title: 'Gửi quá nhiều lần', text: 'Em đã gửi nhiều đề nghị trong thời gian ngắn. Hãy đợi vài phút rồi thử lại.' },
  'auth-required': { status: 407, title: 'Cần đăng nhập', text: 'Máy tính này dùng chung: hãy đăng nhập bằng tài khoản phòng máy mà thầy cô đã cấp cho em.' },
  'headers-too-large': { status: 431, title: 'Yêu cầu quá lớn', text: 'Phần đầu của yêu cầu quá lớn. Hãy thử xóa cookie của trang rồi tải lại.' },
  port: { status: 403, title: 'Cổng kết nối không được phép', text: 'Mạng của trường chỉ cho phép kết nối bảo mật qua các cổng thông thường.' },
  'forbidden-destination': { status: 403, title: 'Địa chỉ không được phép', text: 'Không thể truy cập địa chỉ nội bộ của máy chủ lọc qua mạng học sinh.' },
  dns: { status: 502, title: 'Không tìm thấy trang web', text: 'Không tìm thấy tên miền này. Hãy kiểm tra lại địa chỉ.' },
  connect: { status: 502, title: 'Không kết nối được', text: 'Không kết nối được tới trang web. Trang có thể đang gặp sự cố; hãy thử lại sau.' },
  timeout: { status: 504, title: 'Trang web không phản hồi', text: 'Trang web không trả lời kịp. Đường truyền có thể đang chậm; hãy thử lại sau ít phút.' },
  'upstream-certificate': { status: 502, title: 'Chứng chỉ bảo mật không hợp lệ', text: 'Trang web dùng chứng chỉ bảo mật không đáng tin cậy, nên bộ lọc không mở trang để bảo vệ em.' },
};

export function errorStatus(kind: ErrorKind): number {
  return ERRORS[kind].status;
}

export function errorPage(kind: ErrorKind, host: string | null): string {
  const { status, title, text } = ERRORS[kind];
  const where = host === null ? '' : `<p><small>Trang: ${escapeHtml(host)}</small></p>`;
  return page(status, title, `<h1>${title}</h1><section class="card"><p>${text}</p>${where}</section>`);
}
