import type { DeviceData, ErasureCounts } from './device-data.js';
import { GATEWAY_ALERT_RETENTION_DAYS, GATEWAY_EVENT_RETENTION_DAYS } from './retention.js';
import { CATEGORY_LABELS, SEVERITY_LABELS } from '../safeguarding/types.js';
import { formatVietnamTime } from './vietnam-time.js';

/**
 * The receipts a school hands a parent (Vietnamese, plain text to print): what the
 * gateway holds for one device, and what an erasure did. docs/du-lieu-ca-nhan.md §7.
 */

const LAW = 'Luật Bảo vệ dữ liệu cá nhân số 91/2025/QH15 (Điều 4 về quyền của chủ thể dữ liệu; Điều 24 về dữ liệu cá nhân của trẻ em)';
const NEVER_HELD =
  'Máy chủ lọc KHÔNG lưu: họ tên, lớp, tài khoản, mật khẩu, nội dung trang web, tin nhắn, từ khoá tìm kiếm (phần sau dấu "?"; trừ từ khoá đã gây ra cảnh báo an toàn, mục 3), hình ảnh, vị trí; các trang được phép truy cập không được ghi.';

function deviceLine(data: Pick<DeviceData, 'device'>): string {
  const { address, pseudonym } = data.device;
  return address === null ? `Thiết bị: mã ẩn danh ${pseudonym}` : `Thiết bị: địa chỉ ${address} (mã ẩn danh ${pseudonym})`;
}

function shipped(at: number | null): string {
  return at === null ? 'chưa gửi' : `đã gửi ${formatVietnamTime(at)}`;
}

export function exportReceipt(data: DeviceData, school: string | null, now: number): string {
  const lines = [
    'BIÊN NHẬN: DỮ LIỆU MÁY CHỦ LỌC NỘI DUNG ĐANG LƯU VỀ MỘT THIẾT BỊ',
    `Trường: ${school ?? '……………………'}`,
    `Lập lúc: ${formatVietnamTime(now)} (giờ Việt Nam)`,
    deviceLine(data),
    '',
    `1. Sự kiện chặn (lần truy cập bị chặn): ${data.events.length}`,
  ];
  for (const e of data.events) {
    lines.push(
      `   - ${formatVietnamTime(e.time)}  ${e.host}${e.path}  danh mục ${e.category ?? '(không)'}  nhóm lọc ${e.profile}  mã tham chiếu ${e.reference}${e.count > 1 ? `  (${e.count} lần)` : ''}  [${shipped(e.shippedAt)} lên Phòng GD&ĐT]`,
    );
  }
  lines.push('', `2. Đề nghị xem lại và báo cáo trang có hại: ${data.reviews.length}`);
  for (const r of data.reviews) {
    const kind = r.kind === 'report' ? 'báo cáo trang có hại' : 'đề nghị xem lại';
    lines.push(
      `   - ${formatVietnamTime(r.time)}  ${kind}  ${r.host}${r.path}  trạng thái ${r.status}  ghi chú: "${r.note}"  [${shipped(r.shippedAt)} lên Phòng GD&ĐT]`,
    );
  }
  lines.push('', `3. Cảnh báo an toàn (dấu hiệu em có thể đang gặp nguy, gửi cho cán bộ tư vấn của trường): ${data.alerts.length}`);
  for (const a of data.alerts) {
    lines.push(
      `   - ${formatVietnamTime(a.time)}  mã ${a.ref}  mức ${SEVERITY_LABELS[a.severity]}  ${CATEGORY_LABELS[a.category]}  "${a.trigger}"  (${a.count} lần)  [${shipped(a.shippedAt)} lên Phòng GD&ĐT, chỉ với mã ẩn danh]`,
    );
  }
  if (data.alertAddress !== null)
    lines.push(
      `   Địa chỉ/tài khoản của thiết bị được giữ kèm cảnh báo (chỉ tại trường): ${data.alertAddress}; giữ ${GATEWAY_ALERT_RETENTION_DAYS} ngày kể từ dấu hiệu cuối.`,
    );
  if (data.device.address !== null) {
    lines.push(
      '',
      `4. Địa chỉ trong device-trust.json (thiết bị đã cài chứng chỉ của trường hay chưa): ${data.trust === null ? 'không có' : `có, lần cuối thấy ${formatVietnamTime(data.trust.seen)}`}`,
    );
  }
  lines.push(
    '',
    `Thời hạn lưu tại trường: ${GATEWAY_EVENT_RETENTION_DAYS} ngày sau khi đã gửi lên Phòng GD&ĐT. Những gì "đã gửi" cũng có tại máy chủ của Phòng, chỉ với mã ẩn danh.`,
    NEVER_HELD,
    `Căn cứ: ${LAW}. Cha mẹ (người đại diện theo pháp luật) thay mặt con thực hiện các quyền này.`,
  );
  return `${lines.join('\n')}\n`;
}

export function erasureReceipt(
  data: Pick<DeviceData, 'device'>,
  counts: ErasureCounts,
  queued: boolean,
  sent: boolean | null,
  school: string | null,
  now: number,
): string {
  const lines = [
    'BIÊN NHẬN: ĐÃ XOÁ DỮ LIỆU CỦA MỘT THIẾT BỊ',
    `Trường: ${school ?? '……………………'}`,
    `Lập lúc: ${formatVietnamTime(now)} (giờ Việt Nam)`,
    deviceLine(data),
    '',
    `- Đã xoá ${counts.events} sự kiện chặn và ${counts.reviews} đề nghị xem lại/báo cáo tại máy chủ của trường.`,
    `- Đã xoá ${counts.alerts} cảnh báo an toàn${counts.alertAddress ? ' và địa chỉ/tài khoản giữ kèm cảnh báo' : ''} tại máy chủ của trường.`,
  ];
  if (data.device.address !== null)
    lines.push(`- device-trust.json: ${counts.trust ? 'đã xoá địa chỉ (khởi động lại máy chủ lọc để nó quên cả bản trong bộ nhớ)' : 'không có địa chỉ này'}.`);
  if (queued) {
    lines.push(
      sent === true
        ? '- Đã gửi yêu cầu xoá (theo mã ẩn danh) lên máy chủ của Phòng GD&ĐT và Phòng đã xác nhận.'
        : '- Yêu cầu xoá theo mã ẩn danh đã được xếp hàng; máy chủ lọc gửi lên Phòng GD&ĐT khi kết nối được (lachan privacy erase --central … để gửi ngay).',
    );
  }
  lines.push(
    '- Việc xoá đã được ghi vào nhật ký kiểm tra của máy chủ (audit.jsonl): chỉ mã ẩn danh và số bản ghi, không có dữ liệu đã xoá.',
    `Căn cứ: ${LAW}.`,
  );
  return `${lines.join('\n')}\n`;
}
