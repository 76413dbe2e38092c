import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CertificateAuthority } from '../tls/index.js';
import { escapeHtml, page } from './pages.js';
import { TRUST_PROBE_URL } from './trust-probe.js';

/**
 * The school CA as devices fetch it from the gateway, and the Vietnamese install
 * guide: on the proxy's own address (`/ca`, `/ca.pem`, `/ca/huong-dan`) and, for the
 * link on block pages, under `/__lachan__/` on any proxied host.
 */
export type CaResource = 'der' | 'pem' | 'guide';

/** Where the guide's download buttons point, relative to the page's own origin. */
export interface CaLinks {
  readonly der: string;
  readonly pem: string;
}

export const GATEWAY_CA_LINKS: CaLinks = { der: '/ca', pem: '/ca.pem' };

/** `/ca`, `/ca.pem`, `/ca/huong-dan` on the proxy's own address. */
export function gatewayCaResource(path: string): CaResource | null {
  return path === '/ca' ? 'der' : path === '/ca.pem' ? 'pem' : path === '/ca/huong-dan' || path === '/ca/huong-dan/' ? 'guide' : null;
}

/**
 * Answers a CA resource. 404 while the gateway has no CA: nothing to install, and
 * the guide would only mislead. `gatewayAddress` is what a person types on another
 * device (`http://10.0.0.1:3128`).
 */
export function serveCaResource(
  req: IncomingMessage,
  res: ServerResponse,
  resource: CaResource,
  ca: CertificateAuthority | null,
  links: CaLinks,
  gatewayAddress: string,
): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-length': 0 });
    res.end();
    return;
  }
  req.resume();
  if (ca === null) {
    const body = page(
      'Chưa có chứng chỉ',
      '<h1>Trường chưa tạo chứng chỉ</h1><section class="card"><p>Máy chủ lọc của trường chưa có chứng chỉ gốc (CA), nên thiết bị không cần cài gì. Bộ phận CNTT tạo chứng chỉ bằng lệnh <code>lachan ca init</code>.</p></section>',
    );
    return send(req, res, 404, 'text/html; charset=utf-8', Buffer.from(body));
  }
  if (resource === 'der') {
    return send(req, res, 200, 'application/x-x509-ca-cert', ca.certificate.raw, { 'content-disposition': 'attachment; filename="lachan-ca.cer"' });
  }
  if (resource === 'pem') {
    return send(req, res, 200, 'application/x-pem-file', Buffer.from(ca.certPem), { 'content-disposition': 'attachment; filename="lachan-ca.crt"' });
  }
  send(
    req,
    res,
    200,
    'text/html; charset=utf-8',
    Buffer.from(caGuidePage({ schoolName: schoolNameOf(ca), fingerprint: ca.fingerprint256, links, gatewayAddress })),
  );
}

function send(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: Buffer, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': body.length, 'cache-control': 'no-store', ...extra });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function schoolNameOf(ca: CertificateAuthority): string {
  const line = ca.certificate.subject.split('\n').find((entry) => entry.startsWith('CN='));
  return line === undefined ? ca.certificate.subject : line.slice(3);
}

export interface CaGuideInput {
  readonly schoolName: string;
  readonly fingerprint: string;
  readonly links: CaLinks;
  readonly gatewayAddress: string;
}

const GUIDE_STYLE = `<style>
.check{border-left:.4rem solid #5a6877}.check.ok{border-left-color:#0a7d4f}.check.no{border-left-color:#b3261e}
.check .state{font-size:1.15rem;font-weight:600;margin:.2rem 0}
a.button{display:inline-block;margin:.2rem .4rem .2rem 0;padding:.55rem .9rem;border-radius:.4rem;background:#1d4f91;color:#fff;text-decoration:none;font-weight:600}
code,.fp{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem;word-break:break-all;background:#eef1f4;padding:0 .2rem;border-radius:.2rem}
details{margin:.4rem 0}summary{cursor:pointer;font-weight:600;padding:.3rem 0}ol{padding-left:1.3rem;margin:.3rem 0}li{margin:.25rem 0}
</style>`;

/**
 * The install guide. Its first card is a live check: the probe image loads only if
 * this device trusts the school CA, and loading it is also how the gateway learns so.
 */
export function caGuidePage(input: CaGuideInput): string {
  const school = escapeHtml(input.schoolName);
  const der = escapeHtml(input.links.der);
  const pem = escapeHtml(input.links.pem);
  const gateway = escapeHtml(input.gatewayAddress);
  const ok =
    "this.closest('section').className='card check ok';this.parentNode.querySelector('.state').textContent='✓ Thiết bị này đã tin cậy chứng chỉ của trường.'";
  const no =
    "this.closest('section').className='card check no';this.parentNode.querySelector('.state').textContent='✗ Thiết bị này chưa tin cậy chứng chỉ của trường: hãy làm theo hướng dẫn bên dưới.'";
  const body = `${GUIDE_STYLE}<h1>Cài chứng chỉ của trường</h1>
<p>Mạng của trường kiểm tra các trang HTTPS để chặn nội dung không phù hợp với học sinh. Để trình duyệt không báo lỗi “Kết nối không riêng tư”, mỗi thiết bị cần cài và tin cậy <b>chứng chỉ gốc (CA) của ${school}</b>.</p>
<section class="card check" id="kiem-tra"><p class="state">Đang kiểm tra thiết bị này…</p>
<img src="${TRUST_PROBE_URL}" alt="" width="1" height="1" style="position:absolute;opacity:0" onload="${ok}" onerror="${no}">
<p><small>Tải lại trang này sau khi cài để kiểm tra lần nữa. Máy chủ lọc chỉ giải mã HTTPS của thiết bị đã tin cậy chứng chỉ (trừ khi bộ phận CNTT bật “luôn giải mã” cho cả dải máy).</small></p></section>
<section class="card"><h2>1. Tải chứng chỉ</h2>
<p><a class="button" href="${der}" download="lachan-ca.cer">Tải lachan-ca.cer</a><a class="button" href="${pem}" download="lachan-ca.crt">Tải lachan-ca.crt (PEM)</a></p>
<p>Trên thiết bị khác, mở <code>${gateway}/ca/huong-dan</code> (trang này) hoặc tải thẳng <code>${gateway}/ca</code>.</p>
<p>Trước khi bấm “tin cậy”, so <b>dấu vân tay SHA-256</b> thiết bị hiển thị với dấu vân tay này:</p>
<p class="fp">${escapeHtml(input.fingerprint)}</p></section>
<section class="card"><h2>2. Cài và tin cậy</h2>
<details><summary>Windows 10 / 11</summary><ol>
<li>Nhấp đúp <code>lachan-ca.cer</code> → <b>Cài đặt chứng chỉ</b> (<i>Install Certificate</i>) → <b>Máy cục bộ</b> (<i>Local Machine</i>).</li>
<li>Chọn <b>Đặt tất cả chứng chỉ vào kho sau</b> → Duyệt → <b>Tổ chức chứng nhận gốc đáng tin cậy</b> (<i>Trusted Root Certification Authorities</i>) → Tiếp → Hoàn tất.</li>
<li>Hoặc, với quyền quản trị: <code>certutil -addstore -f Root lachan-ca.cer</code>. Chrome, Edge và Firefox bản mới dùng kho này.</li></ol></details>
<details><summary>macOS</summary><ol>
<li>Nhấp đúp <code>lachan-ca.crt</code>, chọn chuỗi khoá <b>Hệ thống</b> (<i>System</i>).</li>
<li>Trong <b>Truy cập Chuỗi khoá</b>, nhấp đúp chứng chỉ của trường → <b>Tin cậy</b> → <b>Luôn tin cậy</b> (<i>Always Trust</i>).</li></ol></details>
<details><summary>Chromebook (ChromeOS)</summary><ol>
<li>Mở <code>chrome://certificate-manager</code> (bản cũ: <code>chrome://settings/certificates</code>) → <b>Tổ chức phát hành</b> → <b>Nhập</b> → chọn <code>lachan-ca.cer</code>.</li>
<li>Đánh dấu <b>Tin cậy chứng chỉ này để nhận dạng trang web</b>.</li></ol></details>
<details><summary>Android</summary><ol>
<li>Tải <code>lachan-ca.cer</code> bằng nút ở trên.</li>
<li>Cài đặt → <b>Bảo mật</b> → Cài đặt bảo mật khác → <b>Mã hoá và thông tin xác thực</b> → <b>Cài đặt chứng chỉ</b> → <b>Chứng chỉ CA</b> → “Vẫn cài đặt” → chọn tệp (máy phải có khoá màn hình).</li>
<li><b>Firefox trên Android</b> mặc định <b>không</b> tin chứng chỉ người dùng cài: mở Firefox → Cài đặt → <b>Giới thiệu về Firefox</b> → chạm biểu tượng Firefox 5 lần; quay lại Cài đặt → <b>Cài đặt bí mật</b> (<i>Secret Settings</i>) → bật <b>Sử dụng chứng chỉ CA của bên thứ ba</b> (<i>Use third party CA certificates</i>).</li>
<li>Chrome, Edge trên Android tin chứng chỉ này ngay; các ứng dụng khác (YouTube, trò chơi…) thì không.</li></ol></details>
<details><summary>iPhone / iPad</summary><ol>
<li>Mở trang này bằng <b>Safari</b>, bấm <b>Tải lachan-ca.cer</b> → “Cho phép”.</li>
<li>Cài đặt → Cài đặt chung → <b>Quản lý VPN &amp; thiết bị</b> → chọn hồ sơ của trường → <b>Cài đặt</b>.</li>
<li><b>Bước hay bị quên:</b> Cài đặt → Cài đặt chung → Giới thiệu → <b>Cài đặt tin cậy chứng nhận</b> → bật tin cậy hoàn toàn cho chứng chỉ của trường.</li></ol></details>
<details><summary>Máy tính Linux trong phòng máy (Ubuntu, Debian)</summary><ol>
<li>Hệ thống: <code>sudo cp lachan-ca.crt /usr/local/share/ca-certificates/ &amp;&amp; sudo update-ca-certificates</code></li>
<li>Chrome / Chromium (mỗi tài khoản): <code>certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n "Lá chắn" -i lachan-ca.crt</code> (gói <code>libnss3-tools</code>), hoặc <code>chrome://certificate-manager</code> → Nhập.</li>
<li>Firefox: tệp <code>/etc/firefox/policies/policies.json</code> chứa <code>{"policies":{"Certificates":{"Install":["/usr/local/share/ca-certificates/lachan-ca.crt"]}}}</code>, rồi mở lại Firefox.</li></ol></details></section>
<section class="card"><h2>3. Kiểm tra thiết bị</h2>
<p>Mở lại trang này: ô đầu trang báo “✓ đã tin cậy” là xong. Hoặc mở một trang HTTPS, xem chứng chỉ: người cấp là “${school}”.</p>
<p><small>Bộ phận CNTT xem các thiết bị đã tin cậy bằng lệnh <code>lachan ca status</code> trên máy chủ lọc.</small></p></section>`;
  return page('Cài chứng chỉ của trường', body);
}
