/**
 * How long lachan keeps personal data: the one place the defaults are stated
 * (docs/du-lieu-ca-nhan.md §3 shows them to parents; `lachan privacy dpia` writes them
 * into the impact assessment). Whoever prunes a table reads its period here, so the
 * notice, the assessment and the code cannot drift apart.
 */

export const DAY_MS = 86_400_000;

/** Block events and review requests in the gateway's events.db, once the collector has them (or at once without --central). */
export const GATEWAY_EVENT_RETENTION_DAYS = 30;
/**
 * Safeguarding alerts in the gateway's alerts.db, and the address or lab login behind
 * the pseudonym of a device that raised one, from the alert's last signal (unshipped
 * alerts wait until the collector has them). A mapping goes with its device's last alert.
 */
export const GATEWAY_ALERT_RETENTION_DAYS = 30;
/** Raw block events and decided review requests at the collector (a year's report needs a year; `central serve --retention-days`). */
export const COLLECTOR_EVENT_RETENTION_DAYS = 400;
/**
 * Safeguarding alerts at the collector, from their last signal, whatever their status: a
 * year and a month, so the yearly report counts a whole year (docs/safeguarding.md §4).
 */
export const COLLECTOR_ALERT_RETENTION_DAYS = 400;
/** An address in device-trust.json, from the last time the device was seen. */
export const DEVICE_TRUST_RETENTION_DAYS = 90;
/** Erasure requests queued for the collector, once it has acknowledged them (they hold a pseudonym, nothing else). */
export const ERASURE_QUEUE_RETENTION_DAYS = 30;

/** One row of the retention table, in Vietnamese for the notice and the assessment. */
export interface RetentionRow {
  readonly where: string;
  readonly what: string;
  readonly period: string;
}

/** The retention table as the notice and the assessment print it, from the constants above. */
export function retentionTable(collectorDays: number = COLLECTOR_EVENT_RETENTION_DAYS): readonly RetentionRow[] {
  return [
    {
      where: 'Máy chủ lọc tại trường (events.db)',
      what: 'sự kiện chặn, đề nghị xem lại, báo cáo trang có hại (mã thiết bị ẩn danh)',
      period: `${GATEWAY_EVENT_RETENTION_DAYS} ngày; những gì chưa gửi được lên Phòng được giữ đến khi gửi xong`,
    },
    {
      where: 'Máy chủ lọc tại trường (alerts.db)',
      what: 'cảnh báo an toàn (dấu hiệu tự hại, bị dụ dỗ, bắt nạt, đe doạ bạo lực) và địa chỉ IP hoặc tài khoản phòng máy của thiết bị đã gây ra cảnh báo',
      period: `${GATEWAY_ALERT_RETENTION_DAYS} ngày kể từ dấu hiệu cuối cùng; địa chỉ chỉ có ở máy chủ của trường, không bao giờ gửi đi`,
    },
    {
      where: 'Máy chủ lọc tại trường (device-trust.json)',
      what: 'địa chỉ IP của thiết bị và việc thiết bị đã cài chứng chỉ của trường hay chưa',
      period: `${DEVICE_TRUST_RETENTION_DAYS} ngày kể từ lần cuối thấy thiết bị; không bao giờ rời khỏi trường`,
    },
    {
      where: 'Máy chủ lọc tại trường (audit.jsonl)',
      what: 'nhật ký các lần trích xuất, xoá dữ liệu theo yêu cầu (mã thiết bị ẩn danh, số bản ghi)',
      period: 'lâu dài, để chứng minh yêu cầu đã được thực hiện',
    },
    {
      where: 'Máy chủ tập trung của Phòng GD&ĐT',
      what: 'sự kiện chặn và đề nghị đã xử lý (mã thiết bị ẩn danh)',
      period: `${collectorDays} ngày; đề nghị chưa xử lý được giữ đến khi xử lý`,
    },
    {
      where: 'Máy chủ tập trung của Phòng GD&ĐT',
      what: 'cảnh báo an toàn (nhóm, mức độ, nội dung kích hoạt, mã thiết bị ẩn danh, ghi chú của cán bộ tư vấn)',
      period: `${COLLECTOR_ALERT_RETENTION_DAYS} ngày kể từ tín hiệu cuối cùng`,
    },
    {
      where: 'Máy chủ tập trung của Phòng GD&ĐT',
      what: 'số liệu tổng hợp theo ngày (không có mã thiết bị, không có đường dẫn)',
      period: 'lâu dài, cho thống kê nhiều năm',
    },
  ];
}
