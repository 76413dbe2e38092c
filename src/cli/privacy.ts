import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { PolicyConfig } from '../rules/policy-file.js';
import { formatProblem, ProblemList } from '../rules/problems.js';
import { appendAudit } from '../privacy/audit.js';
import type { DeviceSelector } from '../privacy/device-data.js';
import { dpiaHtml, renderDpia } from '../privacy/dpia.js';
import { erasureReceipt, exportReceipt } from '../privacy/receipt.js';
import { CliError } from './errors.js';

interface DeviceOptions {
  device: string;
  data: string;
  rules: string;
  json?: boolean;
  central?: string;
  school?: string;
  tokenFile?: string;
}

/** Shown for an address when the gateway has no key yet (it never recorded anything). */
const NO_PSEUDONYM = '(chưa có)';

interface DpiaOptions {
  rules: string;
  central?: string;
  retentionDays?: string;
  out?: string;
}

/** `lachan privacy …`: a parent's requests about a child's device, and the impact assessment (docs/du-lieu-ca-nhan.md). */
export function registerPrivacy(program: Command): void {
  const privacy = program.command('privacy').description('dữ liệu cá nhân: trả lời yêu cầu của cha mẹ về một thiết bị, lập hồ sơ đánh giá tác động');

  privacy
    .command('export')
    .description('liệt kê những gì máy chủ lọc đang lưu về một thiết bị (biên nhận tiếng Việt để in)')
    .requiredOption('--device <addr>', 'địa chỉ IP của thiết bị, hoặc mã ẩn danh 16 ký tự')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ trường', './var')
    .option('--rules <dir>', 'thư mục quy tắc (tên trường lấy từ policy.yaml)', './rules')
    .option('--json', 'in dữ liệu dạng JSON thay cho biên nhận')
    .action(async (options: DeviceOptions) => {
      const device = await deviceOf(options);
      const { findDeviceData } = await import('../privacy/device-data.js');
      const data = findDeviceData(options.data, device);
      appendAudit(options.data, 'privacy.export', device.pseudonym, {
        byAddress: device.address !== null,
        events: data.events.length,
        reviews: data.reviews.length,
        alerts: data.alerts.length,
      });
      process.stdout.write(options.json ? `${JSON.stringify(data, null, 2)}\n` : exportReceipt(data, await schoolName(options.rules), Date.now()));
    });

  privacy
    .command('erase')
    .description('xoá dữ liệu của một thiết bị tại máy chủ trường, ghi nhật ký kiểm tra và chuyển yêu cầu xoá lên máy chủ huyện')
    .requiredOption('--device <addr>', 'địa chỉ IP của thiết bị, hoặc mã ẩn danh 16 ký tự')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ trường', './var')
    .option('--rules <dir>', 'thư mục quy tắc (tên trường lấy từ policy.yaml)', './rules')
    .option('--central <url>', 'gửi ngay yêu cầu xoá tới máy chủ huyện này (như serve --central)')
    .option('--school <id>', 'mã của trường ở máy chủ huyện')
    .option('--token-file <file>', 'tệp chứa token của trường')
    .action(async (options: DeviceOptions) => {
      const target = collectorOf(options);
      const device = await deviceOf(options);
      const [{ eraseDeviceData }, { ErasureQueue, sendErasures }] = await Promise.all([
        import('../privacy/device-data.js'),
        import('../privacy/erasure-queue.js'),
      ]);
      const counts = eraseDeviceData(options.data, device);
      // Without a pseudonym (no key yet) nothing was ever shipped: there is nothing to ask the collector.
      const known = device.pseudonym !== NO_PSEUDONYM;
      const queue = new ErasureQueue(options.data);
      let sent: boolean | null = null;
      try {
        const request = known ? queue.add(device.pseudonym) : null;
        appendAudit(options.data, 'privacy.erase', device.pseudonym, {
          byAddress: device.address !== null,
          events: counts.events,
          reviews: counts.reviews,
          alerts: counts.alerts,
          deviceTrust: counts.trust,
          erasureRequest: request?.id ?? null,
        });
        if (target !== null && known) {
          try {
            sent = (await sendErasures(queue, target)) > 0;
          } catch (error) {
            sent = false;
            process.stderr.write(`cảnh báo: chưa gửi được yêu cầu xoá lên máy chủ huyện (${(error as Error).message}); yêu cầu vẫn nằm trong hàng chờ\n`);
          }
        }
      } finally {
        queue.close();
      }
      process.stdout.write(erasureReceipt({ device }, counts, known, sent, await schoolName(options.rules), Date.now()));
    });

  privacy
    .command('dpia')
    .description('lập bản nháp hồ sơ đánh giá tác động xử lý dữ liệu cá nhân từ cấu hình của trường (Markdown; .html: trang HTML)')
    .option('--rules <dir>', 'thư mục quy tắc', './rules')
    .option('--central <url>', 'máy chủ huyện mà serve gửi sự kiện tới (bỏ trống: dữ liệu không rời khỏi trường)')
    .option('--retention-days <days>', 'số ngày máy chủ huyện giữ sự kiện gốc (central serve --retention-days)')
    .option('--out <file>', 'ghi vào tệp này thay vì in ra')
    .action(async (options: DpiaOptions) => {
      const policy = await readPolicy(options.rules);
      const days = options.retentionDays === undefined ? undefined : Number(options.retentionDays);
      if (days !== undefined && !(Number.isInteger(days) && days > 0)) throw new CliError(`--retention-days: "${options.retentionDays}" không phải số ngày`);
      const markdown = renderDpia({
        policy,
        central: options.central ?? null,
        now: Date.now(),
        ...(days === undefined ? {} : { collectorRetentionDays: days }),
      });
      const text = options.out !== undefined && /\.html?$/i.test(options.out) ? dpiaHtml(markdown) : markdown;
      if (options.out === undefined) process.stdout.write(text);
      else writeFileSync(options.out, text);
    });
}

async function deviceOf(options: DeviceOptions): Promise<DeviceSelector> {
  if (!existsSync(options.data)) throw new CliError(`không có thư mục dữ liệu ${options.data} (--data: thư mục mà lachan serve dùng)`);
  const { PrivacyError, resolveDevice } = await import('../privacy/device-data.js');
  try {
    // No key: this gateway never wrote an event, so no address has a pseudonym yet.
    return resolveDevice(options.data, options.device) ?? { address: options.device.trim(), pseudonym: NO_PSEUDONYM };
  } catch (error) {
    if (error instanceof PrivacyError) throw new CliError(`--device: "${options.device}" không phải địa chỉ IP hay mã ẩn danh 16 ký tự`);
    throw error;
  }
}

function collectorOf(options: DeviceOptions): { centralUrl: string; schoolId: string; tokenFile: string } | null {
  const given = [options.central, options.school, options.tokenFile].filter((v) => v !== undefined).length;
  if (given === 0) return null;
  if (given !== 3) throw new CliError('--central, --school và --token-file phải đi cùng nhau');
  return { centralUrl: options.central!, schoolId: options.school!, tokenFile: options.tokenFile! };
}

async function readPolicy(rulesDir: string): Promise<PolicyConfig> {
  const file = path.join(rulesDir, 'policy.yaml');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new CliError(`không đọc được ${file} (--rules)`);
  }
  const { parsePolicyFile } = await import('../rules/policy-file.js');
  const problems = new ProblemList();
  const policy = parsePolicyFile(text, file, problems);
  const first = problems.items.find((p) => p.severity === 'error');
  if (policy === null || first !== undefined)
    throw new CliError(`policy.yaml có lỗi: ${first === undefined ? file : formatProblem(first)}; xem: lachan rules lint --rules ${rulesDir}`);
  return policy;
}

/** The school's name for a receipt; a receipt is still worth printing without one. */
async function schoolName(rulesDir: string): Promise<string | null> {
  try {
    return (await readPolicy(rulesDir)).organisation.school;
  } catch {
    return null;
  }
}
