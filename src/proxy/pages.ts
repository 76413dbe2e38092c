/**
 * The pages the proxy itself serves, in Vietnamese: the block page, the review and
 * report forms and their thank-you pages, and the error pages. A child reads most of
 * them: plain words, no jargon or status codes. Plain HTML with inline CSS, readable on a phone, nothing fetched from
 * elsewhere (the network that shows them may be the one failing).
 */

import type { Reason } from '../policy/types.js';
import { DEFAULT_ORGANISATION, NATIONAL_HOTLINE, type Organisation } from '../rules/organisation.js';
import { categoryLabel } from '../util/labels.js';
import { TRUST_FOOTER } from './trust-probe.js';

export { categoryLabel };

/** Paths the proxy answers itself on any host, so that a block page's form reaches it. */
export const REVIEW_PATH = '/__lachan__/review';
export const REPORT_PATH = '/__lachan__/report';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:0;background:#f4f6f8;color:#1d2733;font-size:1.05rem;line-height:1.45}
main{max-width:36rem;margin:0 auto;padding:1.5rem 1rem}
h1{font-size:1.5rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:0 0 .5rem}
.card{background:#fff;border-radius:.6rem;padding:1rem 1.2rem;margin:0 0 1rem;box-shadow:0 1px 3px #0002}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:0}dt{color:#5a6877}dd{margin:0;overflow-wrap:anywhere}
.help{border-left:.4rem solid #0a7d4f}.help strong{font-size:1.25rem}
a.tel{display:block;margin:.4rem 0;padding:.6rem .8rem;border-radius:.4rem;background:#0a7d4f;color:#fff;text-decoration:none;font-weight:600}
a.tel b{font-size:1.3rem;margin-right:.4rem}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin:0 0 1rem}
.actions a{display:inline-block;padding:.55rem .9rem;border-radius:.4rem;background:#1d4f91;color:#fff;text-decoration:none;font-weight:600}
.actions a.plain{background:#fff;color:#1d4f91;border:1px solid #1d4f91}
textarea,input[type=url],select{width:100%;box-sizing:border-box;font-size:1rem;padding:.3rem}textarea{min-height:4rem}button{padding:.5rem 1rem;font-size:1rem}
.warn{color:#8a4b00}
.error{border-left:.4rem solid #b3261e}
small{color:#5a6877}`;

/** A whole page of the gateway's own (the CA install guide uses it too). `school`: the configured school name for the footer; error pages name no one. */
export function page(title: string, body: string, school: string | null = null): string {
  return `<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><main>${body}<p><small>Lá chắn — bộ lọc nội dung của ${school === null ? 'trường' : escapeHtml(school)}</small></p></main></body></html>`;
}

/** A way back for a child who followed a link: the browser's own history (no script needed to read the page). */
const BACK = '<a href="javascript:history.back()">← Quay lại trang trước</a>';

function hotlines(organisation: Organisation): string {
  const local = organisation.hotline;
  return `<h2>Cần người lắng nghe?</h2>
<p>Nếu em đang buồn, sợ hãi, bị bắt nạt hay bị ai đó làm phiền, hãy gọi. Gọi miễn phí, có người nghe máy cả ngày lẫn đêm:</p>
<p><a class="tel" href="tel:${NATIONAL_HOTLINE.number}"><b>${NATIONAL_HOTLINE.number}</b> ${escapeHtml(NATIONAL_HOTLINE.label)}</a>
<a class="tel" href="tel:${escapeHtml(local.number)}"><b>${escapeHtml(local.display)}</b> ${escapeHtml(local.label)}</a></p>
<p><small>Em cũng có thể kể với thầy cô, bố mẹ hoặc một người lớn mà em tin.</small></p>`;
}

/**
 * Categories in the words a primary-school child understands, for the block page's
 * "why" and the report form's choices. Categories not here (UT1 imports, the school's
 * own) fall back to the shared label table.
 */
const CHILD_WORDS: Readonly<Record<string, string>> = {
  adult: 'Nội dung người lớn, không dành cho trẻ em',
  gambling: 'Cờ bạc, cá cược ăn tiền',
  drugs: 'Ma túy, chất gây nghiện',
  violence: 'Bạo lực, đánh nhau, hình ảnh đáng sợ',
  'self-harm': 'Nội dung về tự làm đau bản thân',
  dating: 'Hẹn hò, làm quen người lạ',
  games: 'Trò chơi trực tuyến',
  'social-networks': 'Mạng xã hội',
  vpn: 'Cách vượt qua bộ lọc của trường',
  doh: 'Cách vượt qua bộ lọc của trường',
};

/** What the report form offers: harms a child can recognise on a page (no VPN, DoH or social networks). */
const REPORTABLE = ['adult', 'violence', 'self-harm', 'gambling', 'drugs', 'dating', 'games'] as const;

function childWords(category: string | null): string {
  return (category !== null ? CHILD_WORDS[category] : undefined) ?? categoryLabel(category);
}

/**
 * Search engines whose result pages carry the words searched for in the query: a
 * keyword block there is a blocked search, not a blocked site.
 */
const SEARCH_HOST = /(^|\.)(google\.[a-z]{2,3}(\.[a-z]{2})?|bing\.com|duckduckgo\.com|search\.yahoo\.com|coccoc\.com|youtube\.com|yandex\.[a-z]{2,3})$/;

export function isSearchBlock(host: string, reason: Reason): boolean {
  return reason === 'keyword' && SEARCH_HOST.test(host);
}

export interface BlockPageInput {
  readonly host: string;
  readonly category: string | null;
  readonly profileName: string;
  readonly profileId: string;
  readonly reference: string;
  /** Why the rule matched; a keyword on a search engine makes the page speak of the search. */
  readonly reason?: Reason;
  readonly organisation?: Organisation;
  /** A content block (docs/contract.md §8): the phrase that tipped it, and whether it was a search. */
  readonly content?: { readonly phrase: string; readonly search: boolean };
}

const HOST_SLOT = '\u0000H\u0000';
const REFERENCE_SLOT = '\u0000R\u0000';
const SLOT = /\u0000([HR])\u0000/;
const TEMPLATE_LIMIT = 1024;
/**
 * Pieces of rendered pages per organisation (a reload with new names starts afresh);
 * odd indexes are slots ('H' host, 'R' reference).
 */
const templates = new WeakMap<Organisation, Map<string, readonly string[]>>();

/**
 * The block page: 403 with the blocked host, why (the category), the age group, the
 * event reference, a way to ask for review and the hotlines. Rendered once per
 * (category, profile, search or site) and filled with the host and reference by
 * concatenation.
 */
export function blockPage(input: BlockPageInput): string {
  const organisation = input.organisation ?? DEFAULT_ORGANISATION;
  const search = input.content?.search ?? isSearchBlock(input.host, input.reason ?? 'domain');
  const key = `${input.category ?? ''}\u0000${input.profileId}\u0000${input.profileName}\u0000${search ? 's' : ''}\u0000${input.content?.phrase ?? ''}`;
  let cache = templates.get(organisation);
  if (cache === undefined) templates.set(organisation, (cache = new Map()));
  let pieces = cache.get(key);
  if (pieces === undefined) {
    pieces = renderBlockPage({ ...input, host: HOST_SLOT, reference: REFERENCE_SLOT }, organisation, search).split(SLOT);
    if (cache.size >= TEMPLATE_LIMIT) cache.clear();
    cache.set(key, pieces);
  }
  const host = escapeHtml(input.host);
  const reference = escapeHtml(input.reference);
  let html = pieces[0]!;
  for (let i = 1; i < pieces.length; i += 2) html += (pieces[i] === 'H' ? host : reference) + pieces[i + 1]!;
  return html;
}

/**
 * Written for a ten-year-old: what happened in plain words, that it is not their
 * fault, a way back, then the details a teacher asks for. Self-harm puts help first:
 * the child may be at risk.
 */
function renderBlockPage(input: BlockPageInput, organisation: Organisation, search: boolean): string {
  const host = escapeHtml(input.host);
  const why = escapeHtml(childWords(input.category));
  const selfHarm = input.category === 'self-harm';
  const help = `<section class="card help">${selfHarm ? '<p><strong>Có người sẵn sàng lắng nghe em.</strong></p>' : ''}${hotlines(organisation)}</section>`;
  const details = `<section class="card"><h2>Thông tin để thầy cô tra cứu</h2><dl>
<dt>${search ? 'Trang tìm kiếm' : 'Trang web'}</dt><dd>${host}</dd>
<dt>Lý do</dt><dd>${why}</dd>
${input.content === undefined ? '' : `<dt>Cụm từ</dt><dd>${escapeHtml(input.content.phrase)}</dd>\n`}<dt>Mạng dành cho</dt><dd>${escapeHtml(input.profileName)}</dd>
<dt>Mã số</dt><dd>${escapeHtml(input.reference)}</dd>
</dl></section>`;
  const review = `<section class="card"><form method="post" action="${REVIEW_PATH}">
<h2>${search ? 'Em cần tìm điều này cho bài học?' : 'Em cần trang này cho bài học?'}</h2>
<p>Hãy nhờ thầy cô xem lại. Thầy cô sẽ quyết định có mở hay không.</p>
<input type="hidden" name="ref" value="${escapeHtml(input.reference)}">
<input type="hidden" name="host" value="${host}">
<input type="hidden" name="category" value="${escapeHtml(input.category ?? '')}">
<input type="hidden" name="profile" value="${escapeHtml(input.profileId)}">
<p><label>Em cần ${search ? 'tìm' : 'trang này'} để làm gì? (không bắt buộc)<br><textarea name="note" maxlength="500"></textarea></label><br>
<small class="warn">Đừng ghi họ tên, lớp hay số điện thoại của em vào đây.</small></p>
<button type="submit">Nhờ thầy cô xem lại</button></form>
<p><small><a href="${REPORT_PATH}">Báo cho thầy cô một trang xấu khác chưa bị chặn</a></small></p>${TRUST_FOOTER}</section>`;
  let title: string;
  let intro: string;
  if (selfHarm) {
    title = 'Em không một mình';
    intro = `<h1>Em không một mình</h1><p>Trang này đã được tắt vì nó có thể làm em đau lòng hơn. Nếu em đang rất buồn hoặc nghĩ đến việc làm đau bản thân, hãy gọi ngay một trong hai số dưới đây.</p>`;
  } else if (search) {
    title = 'Tìm kiếm này đã bị chặn';
    intro = `<h1>Tìm kiếm này đã bị chặn</h1><p>Từ em vừa tìm có thể dẫn tới nội dung không dành cho học sinh, nên mạng của trường không hiện kết quả. Em không làm gì sai cả. Hãy thử tìm bằng từ khác.</p>
<p class="actions"><a href="//${host}/">Tìm bằng từ khác</a><a class="plain" href="javascript:history.back()">← Quay lại</a></p>`;
  } else {
    title = 'Trang này đã bị chặn';
    intro = `<h1>Trang này đã bị chặn</h1><p>Mạng của trường không mở trang <b>${host}</b> vì trang có nội dung không dành cho học sinh. Em không làm gì sai cả.</p>
<p class="actions"><a href="javascript:history.back()">← Quay lại trang trước</a></p>`;
  }
  const body = selfHarm ? `${intro}${help}<p class="actions">${BACK}</p>${details}${review}` : `${intro}${details}${review}${help}`;
  return page(title, body, organisation.school);
}

/**
 * Exam mode (docs/classroom.md): the device's room is in an exam, and this site is
 * not on the exam's list. No review form: the teacher in the room decides, not the office.
 */
export function examBlockPage(host: string, reference: string, organisation: Organisation = DEFAULT_ORGANISATION): string {
  return page(
    'Đang trong giờ kiểm tra',
    `<h1>Đang trong giờ kiểm tra</h1><p>Trong giờ kiểm tra, máy của phòng này chỉ mở được các trang học tập mà thầy cô cho phép. Trang <b>${escapeHtml(host)}</b> sẽ mở lại khi hết giờ kiểm tra.</p>
<p class="actions"><a href="javascript:history.back()">← Quay lại trang trước</a></p>
<section class="card"><p>Nếu em cần trang này cho bài kiểm tra, hãy giơ tay hỏi thầy cô coi thi.</p><dl><dt>Mã số</dt><dd>${escapeHtml(reference)}</dd></dl></section>`,
    organisation.school,
  );
}

export interface ReviewThanksInput {
  readonly reference: string;
  readonly host: string;
  readonly organisation?: Organisation;
}

/** After "ask for review": the reference to quote, and what happens next. */
export function reviewThanksPage(input: ReviewThanksInput): string {
  const organisation = input.organisation ?? DEFAULT_ORGANISATION;
  const reference = input.reference === '' ? '' : `<p>Mã số đề nghị của em: <b>${escapeHtml(input.reference)}</b>. Nếu thầy cô hỏi, em đọc mã số này.</p>`;
  return page(
    'Đã gửi đề nghị',
    `<h1>Đã gửi đề nghị xem lại</h1><section class="card">${reference}
<h2>Điều gì xảy ra tiếp theo?</h2>
<p>Thầy cô phụ trách mạng của trường hoặc ${escapeHtml(organisation.office.name)} sẽ xem trang <b>${escapeHtml(input.host)}</b>, thường trong vài ngày làm việc.</p>
<p>Nếu trang cần cho việc học, trang sẽ được mở: em chỉ cần mở lại trang. Nếu không, trang vẫn bị chặn. Em không cần gửi lại đề nghị.</p>
<p class="actions"><a href="javascript:history.go(-2)">← Quay lại</a></p>
<p><small><a href="${REPORT_PATH}">Báo cho thầy cô một trang xấu khác chưa bị chặn</a></small></p></section>`,
    organisation.school,
  );
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
  readonly organisation?: Organisation;
}

/**
 * "Report a harmful page that was not blocked": the URL, an optional category and
 * note. It goes to the office's review queue, where an administrator can block the
 * host in a category.
 */
export function reportPage(input: ReportFormInput = {}): string {
  const organisation = input.organisation ?? DEFAULT_ORGANISATION;
  const chosen = input.category ?? '';
  const options = ['<option value="">Em không chắc / loại khác</option>']
    .concat(REPORTABLE.map((id) => `<option value="${id}"${id === chosen ? ' selected' : ''}>${escapeHtml(CHILD_WORDS[id]!)}</option>`))
    .join('');
  const error = input.error === undefined ? '' : `<section class="card error" role="alert"><p>${escapeHtml(input.error)}</p></section>`;
  const body = `<h1>Báo một trang xấu</h1>
<p>Em thấy một trang web có nội dung không phù hợp mà mạng của trường chưa chặn? Hãy gửi địa chỉ trang để thầy cô và ${escapeHtml(organisation.office.name)} xem xét.</p>
${error}<section class="card"><form method="post" action="${escapeHtml(input.action ?? REPORT_PATH)}">
<p><label>Địa chỉ trang web<br><input type="url" name="url" required maxlength="2000" placeholder="https://…" value="${escapeHtml(input.url ?? '')}"></label></p>
<p><label>Trang có gì không tốt?<br><select name="category">${options}</select></label></p>
<p><label>Ghi chú (không bắt buộc)<br><textarea name="note" maxlength="500">${escapeHtml(input.note ?? '')}</textarea></label><br>
<small class="warn">Đừng ghi họ tên, lớp, số điện thoại của em hay của người khác.</small></p>
<button type="submit">Gửi cho thầy cô</button></form></section>
<section class="card help">${hotlines(organisation)}</section>`;
  return page('Báo một trang xấu', body, organisation.school);
}

export function reportThanksPage(organisation: Organisation = DEFAULT_ORGANISATION): string {
  return page(
    'Đã gửi báo cáo',
    `<h1>Đã gửi. Cảm ơn em!</h1><section class="card">
<h2>Điều gì xảy ra tiếp theo?</h2>
<p>Thầy cô và ${escapeHtml(organisation.office.name)} sẽ xem trang em gửi. Nếu trang có hại, trang sẽ bị chặn cho mọi học sinh. Em không cần gửi lại.</p>
<p class="actions"><a href="javascript:history.go(-2)">← Quay lại</a></p></section>`,
    organisation.school,
  );
}

export type ErrorKind =
  | 'bad-request'
  | 'too-many-requests'
  | 'auth-required'
  | 'headers-too-large'
  | 'port'
  | 'forbidden-destination'
  | 'dns'
  | 'refused'
  | 'connect'
  | 'timeout'
  | 'upstream-certificate';

/**
 * What went wrong, told so a child knows whether to wait, retry or check the address:
 * a site that refuses connections is down (try later), one that does not answer in
 * time may be slow or far (reload in a minute), a name that does not exist is a typo.
 */
const ERRORS: Readonly<Record<ErrorKind, { status: number; title: string; text: string }>> = {
  'bad-request': {
    status: 400,
    title: 'Trình duyệt gửi yêu cầu lạ',
    text: 'Bộ lọc của trường không hiểu yêu cầu này. Hãy tải lại trang; nếu vẫn lỗi, hãy báo thầy cô.',
  },
  'too-many-requests': { status: 429, title: 'Em gửi hơi nhiều rồi', text: 'Em đã gửi nhiều đề nghị trong thời gian ngắn. Hãy đợi vài phút rồi thử lại.' },
  'auth-required': { status: 407, title: 'Cần đăng nhập', text: 'Máy tính này dùng chung: hãy đăng nhập bằng tài khoản phòng máy mà thầy cô đã cấp cho em.' },
  'headers-too-large': { status: 431, title: 'Yêu cầu quá lớn', text: 'Phần đầu của yêu cầu quá lớn. Hãy thử xóa cookie của trang rồi tải lại.' },
  port: { status: 403, title: 'Kết nối này không được phép', text: 'Mạng của trường chỉ cho phép kết nối bảo mật qua các cổng thông thường.' },
  'forbidden-destination': { status: 403, title: 'Địa chỉ không được phép', text: 'Không thể mở địa chỉ nội bộ của máy chủ lọc qua mạng học sinh.' },
  dns: { status: 502, title: 'Không tìm thấy trang web', text: 'Không có trang web nào tên như vậy. Hãy kiểm tra lại địa chỉ, có thể gõ nhầm một chữ.' },
  refused: {
    status: 502,
    title: 'Trang web đang tắt',
    text: 'Máy chủ của trang web không nhận kết nối: trang có thể đang tắt hoặc đang sửa chữa. Đây không phải lỗi của em; hãy thử lại sau.',
  },
  connect: { status: 502, title: 'Trang web bị lỗi', text: 'Trang web gửi về dữ liệu hỏng hoặc ngắt kết nối giữa chừng. Hãy thử lại sau.' },
  timeout: {
    status: 504,
    title: 'Trang web trả lời quá chậm',
    text: 'Trang web không trả lời kịp: mạng hoặc trang đang chậm. Hãy đợi một chút rồi tải lại trang.',
  },
  'upstream-certificate': {
    status: 502,
    title: 'Trang web không an toàn',
    text: 'Trang web dùng chứng chỉ bảo mật không đáng tin cậy, nên bộ lọc không mở trang để bảo vệ em.',
  },
};

export function errorStatus(kind: ErrorKind): number {
  return ERRORS[kind].status;
}

export function errorPage(kind: ErrorKind, host: string | null): string {
  const { title, text } = ERRORS[kind];
  const where = host === null ? '' : `<p><small>Trang: ${escapeHtml(host)}</small></p>`;
  return page(title, `<h1>${title}</h1><section class="card"><p>${text}</p>${where}</section><p class="actions">${BACK}</p>`);
}
