/**
 * `lachan alerts …` (docs/safeguarding.md): the safeguarding alerts this gateway raised,
 * for IT staff, and `resolve`, which names the device behind an alert's pseudonym for
 * the counsellor who must find the child, and records who asked in the audit log.
 */
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { appendAudit } from '../privacy/audit.js';
import { formatVietnamTime } from '../privacy/vietnam-time.js';
import { CATEGORY_LABELS, SEVERITY_LABELS, type StoredAlert } from '../safeguarding/types.js';
import type { SqliteDatabase } from '../storage/sqlite.js';
import { CliError, EXIT_USAGE } from './errors.js';

interface AlertsOptions {
  data: string;
  json?: boolean;
}

export function registerAlerts(program: Command): void {
  const alerts = program.command('alerts').description('cảnh báo an toàn (tự hại, bị dụ dỗ, bắt nạt, đe doạ bạo lực) mà máy chủ lọc đã phát hiện');

  alerts
    .command('list')
    .description('liệt kê các cảnh báo lưu tại máy chủ của trường, mới nhất trước (chỉ mã ẩn danh, không có địa chỉ)')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ trường', './var')
    .option('--json', 'in dạng JSON')
    .action(async (options: AlertsOptions) => {
      const list = (await withAlerts(options.data, (db, { listAlerts }) => listAlerts(db))) ?? [];
      if (options.json === true) return void process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      if (list.length === 0) return void process.stdout.write('Chưa có cảnh báo nào.\n');
      for (const alert of list) process.stdout.write(`${alertLine(alert)}\n`);
    });

  alerts
    .command('resolve')
    .description('cho biết địa chỉ IP (hoặc tài khoản phòng máy) của thiết bị đã gây ra cảnh báo; lần tra cứu được ghi vào nhật ký kiểm tra')
    .argument('<ref>', 'mã cảnh báo (AL-…), như trên trang của cán bộ tư vấn')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ trường', './var')
    .action(async (ref: string, options: AlertsOptions) => {
      const wanted = ref.trim();
      const found = await withAlerts(options.data, (db, { addressOf, findAlert }) => {
        const alert = findAlert(db, wanted);
        return alert === null ? null : { alert, address: addressOf(db, alert.device) };
      });
      if (found === null || found === undefined)
        throw new CliError(`không có cảnh báo mã ${wanted} trong ${options.data} (cảnh báo quá hạn lưu đã được xoá; kiểm tra lại mã và --data)`, EXIT_USAGE);
      const { alert, address } = found;
      if (address === null) throw new CliError(`cảnh báo ${wanted} không còn địa chỉ của thiết bị (đã xoá theo yêu cầu của cha mẹ)`, EXIT_USAGE);
      appendAudit(options.data, 'alerts.resolve', alert.device, { ref: alert.ref, category: alert.category, severity: alert.severity });
      process.stdout.write(`${address}\n`);
      process.stderr.write(
        `${isIP(address) === 0 ? 'tài khoản phòng máy' : 'địa chỉ IP'} của thiết bị ${alert.device} (cảnh báo ${alert.ref}); lần tra cứu này đã được ghi vào nhật ký kiểm tra (audit.jsonl)\n`,
      );
    });
}

type AlertsDatabase = typeof import('../safeguarding/database.js');

/** Runs `read` on the alert file, or undefined when no alert was ever raised in `dataDir`. */
async function withAlerts<T>(dataDir: string, read: (db: SqliteDatabase, alerts: AlertsDatabase) => T): Promise<T | undefined> {
  const alerts = await import('../safeguarding/database.js');
  const { openAlertsReadOnly } = alerts;
  let db: SqliteDatabase | null;
  try {
    db = openAlertsReadOnly(dataDir);
  } catch (error) {
    throw new CliError(`không đọc được cảnh báo trong ${dataDir}: ${(error as Error).message}`);
  }
  if (db === null) return undefined;
  try {
    return read(db, alerts);
  } finally {
    db.close();
  }
}

function alertLine(alert: StoredAlert): string {
  const shipped = alert.shippedVersion >= alert.version ? 'đã gửi' : alert.shippedAt === null ? 'chưa gửi' : 'chờ gửi bản mới';
  return [
    alert.ref,
    formatVietnamTime(alert.lastTime),
    `mức ${SEVERITY_LABELS[alert.severity]}`,
    CATEGORY_LABELS[alert.category] ?? alert.category,
    `${alert.count} lần`,
    `"${alert.trigger}"`,
    alert.host,
    `thiết bị ${alert.device}`,
    `nhóm ${alert.profile}`,
    shipped,
  ].join('  ');
}
